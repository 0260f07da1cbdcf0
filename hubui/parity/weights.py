"""The tensor-by-tensor comparison of an export's weights file with the original model's state dict.

Streamed: the file (each shard of a sharded export) is memory-mapped and compared in chunks, so the comparison's
scratch stays at a few MB whatever the tensor's size.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from hubui.errors import InvalidInputError
from hubui.export_folder import check_precision
from hubui.parity.metrics import Tolerance, _json_float

_MAX_LISTED_NAMES = 20  # tensor names listed per category in WeightComparison; counts are always exact


@dataclass(frozen=True)
class WeightComparison:
    """The saved weights against the original's, tensor by tensor.

    Args:
        file: The weights file read (its name only: the report is published).
        precision: The precision the file should hold.
        compared: Tensors present in both.
        missing: Count of original tensors absent from the file.
        extra: Count of file tensors the original does not have.
        dtype_mismatch: Tensors whose dtype is not what the precision implies.
        value_mismatch: Tensors that differ from the original cast to the precision (bit for bit).
        shape_mismatch: Tensors with a different shape.
        max_abs_diff: Largest ``|saved - original|`` over all tensors, against the fp32 original (so it is
            the rounding drift for fp16/bf16, and 0 for an exact fp32 export).
        worst_tensor: The tensor with that largest difference (None if all are 0).
        per_tensor_max_abs_diff: Name to max abs diff, for every compared tensor.
        names: Up to 20 tensor names per category (``missing``, ``extra``, ``dtype_mismatch``,
            ``value_mismatch``, ``shape_mismatch``).
    """

    file: str
    precision: str
    compared: int
    missing: int
    extra: int
    dtype_mismatch: int
    value_mismatch: int
    shape_mismatch: int
    max_abs_diff: float
    worst_tensor: str | None
    per_tensor_max_abs_diff: dict[str, float] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """True when the file holds exactly the original's tensors, cast as asked."""
        return not (self.missing or self.extra or self.dtype_mismatch or self.value_mismatch or self.shape_mismatch)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["identical"] = self.identical
        d["max_abs_diff"] = _json_float(self.max_abs_diff)
        d["per_tensor_max_abs_diff"] = {k: _json_float(v) for k, v in self.per_tensor_max_abs_diff.items()}
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WeightComparison:
        mad = data.get("max_abs_diff")
        return cls(
            file=str(data.get("file", "")),
            precision=str(data.get("precision", "")),
            compared=int(data.get("compared", 0)),
            missing=int(data.get("missing", 0)),
            extra=int(data.get("extra", 0)),
            dtype_mismatch=int(data.get("dtype_mismatch", 0)),
            value_mismatch=int(data.get("value_mismatch", 0)),
            shape_mismatch=int(data.get("shape_mismatch", 0)),
            max_abs_diff=float("nan") if mad is None else float(mad),
            worst_tensor=data.get("worst_tensor"),
            per_tensor_max_abs_diff={
                k: float("nan") if v is None else float(v)
                for k, v in (data.get("per_tensor_max_abs_diff") or {}).items()
            },
            names={k: list(v) for k, v in (data.get("names") or {}).items()},
        )


_REMAP_BYTES = 32 * 1024 * 1024  # file bytes compared before compare_weights reopens the file (see there)


_DIFF_CHUNK = 1 << 18  # elements per chunk: the comparison's scratch stays at a few MB whatever the tensor


class _Scratch:
    """Chunk buffers reused across chunks and tensors. Fresh chunk-sized temporaries for every tensor (a cast copy,
    two float64 copies, their difference) left the C heap fragmented: comparing resnet50's fp16 file peaked 76 MB
    above the model and kept 60 MB of it; with these buffers, under 10 MB."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, role: str, dtype: torch.dtype, n: int) -> torch.Tensor:
        buf = self._buffers.get(role)
        if buf is None or buf.dtype != dtype or buf.numel() < n:
            buf = self._buffers[role] = torch.empty(max(n, _DIFF_CHUNK), dtype=dtype)
        return buf[:n]


def _bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal element for element, NaN matching NaN; the cheap ``torch.equal`` settles the usual case."""
    if torch.equal(a, b):
        return True
    if not a.is_floating_point():
        return False
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


def _compare_chunked(
    saved: torch.Tensor, orig: torch.Tensor, cast_to: torch.dtype | None, scratch: _Scratch
) -> tuple[bool, float]:
    """Compare a saved tensor with the original, a chunk at a time through ``scratch``.

    Returns:
        Whether ``saved`` is bitwise equal to ``orig`` cast to ``cast_to`` (True when ``cast_to`` is None), and
        ``max |saved - orig|`` computed in float64 (NaN when either holds a NaN).
    """
    flat_a, flat_b = saved.reshape(-1), orig.reshape(-1)
    equal, worst = True, 0.0
    for start in range(0, flat_a.numel(), _DIFF_CHUNK):
        a, b = flat_a[start : start + _DIFF_CHUNK], flat_b[start : start + _DIFF_CHUNK]
        n = a.numel()
        if cast_to is not None and equal:
            cast = scratch.get("cast", cast_to, n)
            cast.copy_(b)
            equal = _bitwise_equal(a, cast)
        if math.isnan(worst):
            continue
        da, db = scratch.get("a", torch.float64, n), scratch.get("b", torch.float64, n)
        da.copy_(a)
        db.copy_(b)
        chunk = float(da.sub_(db).abs_().max())
        worst = math.nan if math.isnan(chunk) else max(worst, chunk)
    return equal, worst


def compare_weights(
    model: torch.nn.Module,
    weights_file: str | Path,
    precision: str,
    cancel: threading.Event | None = None,
) -> WeightComparison:
    """Compare a saved safetensors file with a model's state dict, one tensor at a time.

    Tensors are read lazily (``safe_open``), so memory stays at about one tensor beyond the model.

    Args:
        model: The original model.
        weights_file: The exported ``model.safetensors``, or a sharded export's index
            (``model.safetensors.index.json``): then every shard it names is read.
        precision: The precision the export was asked for.
        cancel: Stops early when set (the comparison then covers only the tensors read).

    Returns:
        The comparison.

    Raises:
        InvalidInputError: Unknown precision, or the file (a shard, the index) is missing or not safetensors.
    """
    from safetensors import SafetensorError, safe_open

    dtype = check_precision(precision)
    path = Path(weights_file)
    original = model.state_dict()
    names: dict[str, list[str]] = {
        k: [] for k in ("missing", "extra", "dtype_mismatch", "value_mismatch", "shape_mismatch")
    }
    counts = dict.fromkeys(names, 0)
    per_tensor: dict[str, float] = {}
    scratch = _Scratch()

    def note(kind: str, name: str) -> None:
        counts[kind] += 1
        if len(names[kind]) < _MAX_LISTED_NAMES:
            names[kind].append(name)

    try:
        files = _weight_files(path)
        saved_keys: list[tuple[Path, list[str]]] = []
        for file in files:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                saved_keys.append((file, list(f.keys())))
        saved_set = {k for _, keys in saved_keys for k in keys}
        for key in original:
            if key not in saved_set:
                note("missing", key)
        for file, keys in saved_keys:
            if cancel is not None and cancel.is_set():
                break
            with contextlib.ExitStack() as stack:
                f = stack.enter_context(safe_open(str(file), framework="pt", device="cpu"))
                mapped = 0
                for key in keys:
                    if cancel is not None and cancel.is_set():
                        break
                    if key not in original:
                        note("extra", key)
                        continue
                    if mapped >= _REMAP_BYTES:
                        # safe_open maps the whole file and its tensors are views of that mapping: every page read
                        # stays in this process's RSS until the file is closed. Reopening it now and then keeps
                        # that to a few tens of MB instead of the whole file next to two resident models.
                        stack.close()
                        f = stack.enter_context(safe_open(str(file), framework="pt", device="cpu"))
                        mapped = 0
                    saved = f.get_tensor(key)
                    mapped += saved.numel() * saved.element_size()
                    orig = original[key].detach().to("cpu")
                    if saved.shape != orig.shape:
                        note("shape_mismatch", key)
                        del saved
                        continue
                    expected_dtype = dtype if orig.is_floating_point() else orig.dtype
                    # Same dtype (every fp32 tensor, every integer buffer): one comparison settles both questions,
                    # and an equal tensor has no difference to measure.
                    same = saved.dtype == orig.dtype and torch.equal(saved, orig)
                    if saved.dtype != expected_dtype:
                        note("dtype_mismatch", key)
                    if same:
                        per_tensor[key] = 0.0
                    else:
                        cast_to = expected_dtype if saved.dtype == expected_dtype else None
                        equal, per_tensor[key] = _compare_chunked(saved, orig, cast_to, scratch)
                        if not equal:
                            note("value_mismatch", key)
                    del saved  # one file tensor at a time
    except (OSError, SafetensorError) as exc:
        raise InvalidInputError(f"Cannot read weights file {str(path)!r}: {exc}", hint="Export again.") from exc

    worst = max(per_tensor, key=lambda k: (not math.isfinite(per_tensor[k]), per_tensor[k]), default=None)
    worst_value = per_tensor[worst] if worst is not None else 0.0
    return WeightComparison(
        file=path.name,  # never the local path: parity.json and the card are published
        precision=precision,
        compared=len(per_tensor),
        missing=counts["missing"],
        extra=counts["extra"],
        dtype_mismatch=counts["dtype_mismatch"],
        value_mismatch=counts["value_mismatch"],
        shape_mismatch=counts["shape_mismatch"],
        max_abs_diff=worst_value,
        worst_tensor=worst if worst_value != 0.0 else None,
        per_tensor_max_abs_diff=per_tensor,
        names=names,
    )


def _weight_files(path: Path) -> list[Path]:
    """The safetensors files to read: ``path`` itself, or every shard an index names, in the index's order."""
    from hubui.shards import is_index, read_index

    if not is_index(path):
        return [path]
    return list(dict.fromkeys(read_index(path).values()))


def check_weights(weights: WeightComparison, tolerance: Tolerance) -> list[str]:
    """Why a weight comparison fails (empty when it passes)."""
    if not tolerance.weights_exact or weights.identical:
        return []
    parts = [
        f"{getattr(weights, k)} {k.replace('_', ' ')}"
        for k in ("missing", "extra", "dtype_mismatch", "value_mismatch", "shape_mismatch")
        if getattr(weights, k)
    ]
    first = next((v[0] for v in weights.names.values() if v), None)
    return [f"weights: {', '.join(parts)} tensor(s)" + (f", e.g. {first!r}" if first else "")]


__all__ = ["WeightComparison", "check_weights", "compare_weights"]
