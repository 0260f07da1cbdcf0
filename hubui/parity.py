"""Prove that an exported model computes what the original computes.

Parity runs the original model and the model rebuilt by the library's own loader on the same deterministic
inputs (the photographs in ``hubui/data/images``, seeded synthetic images, and any images the user gives),
compares every output, compares the saved weights tensor by tensor, and, when the outputs disagree, names the
first module whose output diverged.

It streams: :func:`iter_parity` yields a partial :class:`ParityReport` after every batch so a UI can show
progress, then a final one with the verdict. :func:`run_parity` returns only the final one.

What "pass" means depends on the precision (see :func:`tolerance_preset`): fp32 exports must reproduce the
original's outputs to float32 rounding, fp16/bf16 exports are measured against the fp32 original and must
stay above a cosine-similarity and top-1 agreement floor.

Library specifics (how to preprocess, which outputs to compare, which weights file to read) live in one
small adapter per library, chosen by ``loaded.spec.library``; only timm has one so far.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hubui.errors import ExportError, InvalidInputError, ParityFailedError
from hubui.export import SAFE_WEIGHTS_NAME, check_precision, read_export_precision, rebuild_from_folder
from hubui.spec import LoadedModel

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

REAL_IMAGES_DIR = Path(__file__).parent / "data" / "images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
PARITY_FILENAME = "parity.json"
SCHEMA_VERSION = 1
_MAX_LISTED_NAMES = 20  # tensor names listed per category in WeightComparison; counts are always exact


# --- tolerances -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """What an export must achieve to pass. ``None`` disables a check.

    Args:
        max_abs_diff: An output passes the closeness test if its largest absolute difference is at most
            this, or (like ``numpy.isclose``'s atol/rtol) if ``max_rel_diff`` passes.
        max_rel_diff: Largest per-sample ``max|a-b| / max|a|`` allowed (scale-free, so it means the same
            for logits of size 1 and of size 50).
        cosine_min: Smallest per-sample cosine similarity allowed.
        top1_agreement_min: Smallest fraction of samples whose argmax must agree.
        weights_exact: Every saved floating tensor must equal the original cast to the export precision,
            bit for bit, with that dtype (integer tensors: equal and same dtype).
    """

    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    cosine_min: float | None = None
    top1_agreement_min: float | None = None
    weights_exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tolerance:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


# Calibrated on random-weight models (seeded; no pretrained weights are reachable here) with the 8 default
# inputs, on CPU, torch 2.15 / timm 1.0.31, rebuilt by timm from the exported file. Norm scales were drawn
# in [0.5, 1.5] (timm zero-inits the last norm of ResNet branches and ConvNeXt layer scales, which would
# hide most of the network). Measured per-sample worst cosine, max |diff| of the logits, top-1 agreement:
#   fp16: test_resnet 0.9999996 / 3.9e-4 / 1.0, test_vit 0.9999996 / 4.5e-4 / 1.0,
#         resnet50 0.9999998 / 0.20 / 1.0, vit_base_patch16_224 0.9999995 / 2.2e-3 / 1.0,
#         convnext_tiny 0.9999997 / 1.5e-3 / 1.0
#   bf16: test_resnet 0.99998 / 4.1e-3 / 1.0, test_vit 0.99997 / 3.5e-3 / 1.0,
#         resnet50 0.99998 / 2.3 / 1.0, vit_base_patch16_224 0.99997 / 1.8e-2 / 1.0,
#         convnext_tiny 0.99998 / 1.4e-2 / 1.0
# Absolute differences scale with the logits (resnet50's reach ~400 here), so halves are judged by cosine.
# The cosine floors leave a wide margin (1 - cosine measured ~5e-7 fp16, ~3.5e-5 bf16) for trained models,
# whose activations drift more, and still fail a single corrupted layer (cosine < 0.99 in the tests).
# Top-1 is the noisiest number: on noise images a trained model's top classes can be near-ties, so one
# flip in 8 inputs is allowed for fp16 and two for bf16; cosine is the primary guard.
_PRESETS: dict[str, Tolerance] = {
    # Same fp32 weights, same kernels, same inputs: outputs are normally bit-identical. 1e-6 absolute, or
    # 1e-6 of the output's own scale (about 8 float32 ulps of the largest logit), lets through only
    # benign reordering of float32 sums (e.g. a different thread count) and nothing a weight change makes.
    "fp32": Tolerance(max_abs_diff=1e-6, max_rel_diff=1e-6, cosine_min=0.999999, top1_agreement_min=1.0),
    "fp16": Tolerance(cosine_min=0.999, top1_agreement_min=0.85),
    "bf16": Tolerance(cosine_min=0.99, top1_agreement_min=0.75),
}


def tolerance_preset(precision: str) -> Tolerance:
    """The default tolerance for an export precision.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.

    Returns:
        The preset; change fields with ``dataclasses.replace(preset, cosine_min=...)``.

    Raises:
        InvalidInputError: For an unknown precision.
    """
    check_precision(precision)
    return _PRESETS[precision]


# --- inputs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParityInputs:
    """Preprocessed parity inputs.

    Args:
        pixels: ``(N, C, H, W)`` float32, preprocessed with the model's data config.
        names: One name per sample (file name, or ``synthetic-noise-0``...).
        kinds: One of ``"real"``, ``"synthetic"``, ``"user"`` per sample.
    """

    pixels: torch.Tensor
    names: tuple[str, ...]
    kinds: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def describe(self) -> dict[str, Any]:
        """``{"count", "real", "synthetic", "user"}`` (counts), plus ``names`` and ``input_size``."""
        return {
            "count": len(self.names),
            "real": self.kinds.count("real"),
            "synthetic": self.kinds.count("synthetic"),
            "user": self.kinds.count("user"),
            "names": list(self.names),
            "input_size": list(self.pixels.shape[1:]),
        }


def real_image_paths() -> list[Path]:
    """The photographs shipped with hubui (see ``hubui/data/images/NOTICE.md``), sorted by name."""
    return sorted(p for p in REAL_IMAGES_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def synthetic_images(count: int = 4, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """Deterministic synthetic RGB images: alternating uniform noise and colour gradients.

    Sizes differ (square and not) so the resize and crop of the transform are exercised too.

    Args:
        count: How many.
        seed: Seed for the noise.

    Returns:
        ``(name, image)`` pairs.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = ((256, 256), (320, 240), (224, 300), (288, 288))
    out: list[tuple[str, Image.Image]] = []
    for i in range(count):
        w, h = sizes[i % len(sizes)]
        if i % 2 == 0:
            arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            out.append((f"synthetic-noise-{i // 2}", Image.fromarray(arr, "RGB")))
        else:
            y, x = np.mgrid[0:h, 0:w].astype(np.float32)
            phase = rng.uniform(0, 2 * np.pi, size=3)
            arr = np.stack(
                [
                    x / max(w - 1, 1),
                    y / max(h - 1, 1),
                    0.5 + 0.5 * np.sin((x + y) / (w + h) * 4 * np.pi + phase[2]),
                ],
                axis=-1,
            )
            arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
            out.append((f"synthetic-gradient-{i // 2}", Image.fromarray(arr, "RGB")))
    return out


def load_image(item: Any) -> tuple[str, Image.Image]:
    """Open a user image, as RGB.

    Args:
        item: A path, or a PIL image.

    Returns:
        ``(name, image)``: the file name, or ``user-image`` for a PIL image.

    Raises:
        InvalidInputError: The path does not exist or is not an image PIL can read.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, Image.Image):
        return "user-image", item.convert("RGB")
    if not isinstance(item, (str, os.PathLike)):
        raise InvalidInputError(
            f"Parity images must be file paths or PIL images, not {type(item).__name__}",
            hint="Pass image file paths.",
        )
    path = Path(item)
    if not path.is_file():
        raise InvalidInputError(f"Image file not found: {str(path)!r}", hint="Check the path.")
    try:
        with Image.open(path) as img:
            img.load()
            return path.name, img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidInputError(
            f"{str(path)!r} is not an image that can be read",
            hint="Pass PNG, JPEG or WebP files.",
        ) from exc


def build_parity_inputs(
    data_config: dict[str, Any],
    images: Iterable[Any] = (),
    *,
    include_real: bool = True,
    synthetic: int = 4,
    seed: int = 0,
    library: str = "timm",
) -> ParityInputs:
    """Load and preprocess the parity inputs with the model's own eval transform.

    Args:
        data_config: The model's data config (``LoadedModel.data_config``).
        images: Extra user images (paths or PIL images).
        include_real: Include the photographs shipped with hubui.
        synthetic: How many synthetic images.
        seed: Seed for the synthetic images.
        library: Selects the preprocessing.

    Returns:
        The inputs, in the order real, synthetic, user.

    Raises:
        InvalidInputError: A user image can't be read, no inputs are left, or the library is unknown.
    """
    adapter = _adapter(library)
    named: list[tuple[str, str, Image.Image]] = []
    # Open user images first: a bad path should fail before any other work.
    user = [load_image(item) for item in images]
    if include_real:
        named += [("real", *load_image(p)) for p in real_image_paths()]
    named += [("synthetic", name, img) for name, img in synthetic_images(synthetic, seed)]
    named += [("user", name, img) for name, img in user]
    if not named:
        raise InvalidInputError("No parity inputs", hint="Include the real or synthetic images, or pass images.")
    transform = adapter.make_transform(data_config)
    pixels = torch.stack([transform(img) for _, _, img in named]).float()
    return ParityInputs(pixels=pixels, names=tuple(n for _, n, _ in named), kinds=tuple(k for k, _, _ in named))


# --- library adapters -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Adapter:
    make_transform: Callable[[dict[str, Any]], Callable[[Any], torch.Tensor]]
    forward: Callable[[torch.nn.Module, torch.Tensor], dict[str, torch.Tensor]]
    weights_file: str
    version_modules: tuple[str, ...]


_TIMM_TRANSFORM_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def _timm_transform(data_config: dict[str, Any]) -> Callable[[Any], torch.Tensor]:
    import timm.data

    kwargs = {k: data_config[k] for k in _TIMM_TRANSFORM_KEYS if data_config.get(k) is not None}
    return timm.data.create_transform(**kwargs, is_training=False)


def _timm_forward(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"logits": model(pixels)}


_ADAPTERS: dict[str, _Adapter] = {
    "timm": _Adapter(_timm_transform, _timm_forward, SAFE_WEIGHTS_NAME, ("timm",)),
}


def _adapter(library: str) -> _Adapter:
    adapter = _ADAPTERS.get(library)
    if adapter is None:
        raise InvalidInputError(
            f"Parity for library {library!r} is not supported yet",
            hint=f"Supported: {', '.join(sorted(_ADAPTERS))}.",
        )
    return adapter


# --- output metrics ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputMetrics:
    """How far one output of the rebuilt model is from the original's, over all inputs so far.

    Args:
        name: ``"logits"`` for timm.
        shape: Full shape over the inputs compared, e.g. ``(8, 1000)``.
        max_abs_diff: Largest ``|a - b|``.
        mean_abs_diff: Mean ``|a - b|``.
        max_rel_diff: Largest per-sample ``max|a - b| / max|a|``.
        cosine_min: Smallest per-sample cosine similarity.
        top1_agreement: Fraction of samples with the same argmax.
        top5_overlap: Mean fraction of shared top-5 indices (top-k with k = min(5, classes)).
        nonfinite: Number of NaN/inf values in the rebuilt output where the original has none.
    """

    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    mean_abs_diff: float
    max_rel_diff: float
    cosine_min: float
    top1_agreement: float
    top5_overlap: float
    nonfinite: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return {k: _json_float(v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputMetrics:
        def f(key: str) -> float:
            value = data.get(key)
            return float("nan") if value is None else float(value)

        return cls(
            name=str(data["name"]),
            shape=tuple(int(x) for x in data.get("shape", ())),
            max_abs_diff=f("max_abs_diff"),
            mean_abs_diff=f("mean_abs_diff"),
            max_rel_diff=f("max_rel_diff"),
            cosine_min=f("cosine_min"),
            top1_agreement=f("top1_agreement"),
            top5_overlap=f("top5_overlap"),
            nonfinite=int(data.get("nonfinite", 0)),
        )


def _json_float(value: Any) -> Any:
    # JSON has no NaN/inf; None says "not measurable" (the ``nonfinite`` count says why).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sample_stats(ref: torch.Tensor, test: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample statistics of two ``(N, ...)`` tensors, computed in float64."""
    r = ref.detach().to("cpu", torch.float64).flatten(1)
    t = test.detach().to("cpu", torch.float64).flatten(1)
    d = (r - t).abs()
    dmax = d.amax(dim=1)
    scale = r.abs().amax(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    cos = torch.nn.functional.cosine_similarity(r, t, dim=1, eps=1e-30)
    # Two identical all-zero rows have cosine 0 by the formula, but they are a perfect match.
    cos = torch.where(dmax == 0, torch.ones_like(cos), cos)
    return {"r": r, "t": t, "d": d, "dmax": dmax, "rel": dmax / scale, "cos": cos}


class _OutputAccumulator:
    """Running metrics for one named output across batches."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.sample_shape: tuple[int, ...] = ()
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.elements = 0
        self.max_rel = 0.0
        self.cos_min = 1.0
        self.top1 = 0
        self.top5 = 0.0
        self.nonfinite = 0

    def update(self, ref: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
        """Add a batch; returns the per-sample cosine (used to pick the worst sample)."""
        if ref.shape != test.shape:
            raise _ShapeMismatch(self.name, tuple(ref.shape), tuple(test.shape))
        s = _sample_stats(ref, test)
        self.nonfinite += int((~torch.isfinite(s["t"]) & torch.isfinite(s["r"])).sum())
        self.count += ref.shape[0]
        self.sample_shape = tuple(ref.shape[1:])
        self.max_abs = max(self.max_abs, float(s["dmax"].max()))
        self.sum_abs += float(s["d"].sum())
        self.elements += s["d"].numel()
        self.max_rel = max(self.max_rel, float(s["rel"].max()))
        self.cos_min = min(self.cos_min, float(s["cos"].min()))
        r, t = s["r"], s["t"]
        self.top1 += int((r.argmax(dim=1) == t.argmax(dim=1)).sum())
        k = min(5, r.shape[1])
        rk = r.topk(k, dim=1).indices
        tk = t.topk(k, dim=1).indices
        self.top5 += float((rk.unsqueeze(2) == tk.unsqueeze(1)).any(dim=2).sum(dim=1).double().div(k).sum())
        # Python's max/min silently drop NaN; make an inf/NaN output impossible to miss in the metrics.
        if self.nonfinite:
            self.max_abs = self.max_rel = self.cos_min = float("nan")
        return s["cos"]

    def result(self) -> OutputMetrics:
        n = max(self.count, 1)
        return OutputMetrics(
            name=self.name,
            shape=(self.count, *self.sample_shape),
            max_abs_diff=self.max_abs,
            mean_abs_diff=self.sum_abs / max(self.elements, 1),
            max_rel_diff=self.max_rel,
            cosine_min=self.cos_min,
            top1_agreement=self.top1 / n,
            top5_overlap=self.top5 / n,
            nonfinite=self.nonfinite,
        )


class _ShapeMismatch(Exception):
    def __init__(self, name: str, ref: tuple[int, ...], test: tuple[int, ...]) -> None:
        super().__init__(f"output {name!r} has shape {test} after export, {ref} before")
        self.name, self.ref, self.test = name, ref, test


def check_output(metrics: OutputMetrics, tolerance: Tolerance) -> list[str]:
    """Why an output fails its tolerance (empty when it passes).

    Args:
        metrics: Measured metrics.
        tolerance: The thresholds.

    Returns:
        Human-readable reasons, e.g. ``"logits: cosine_min 0.981 < 0.99"``.
    """
    reasons: list[str] = []
    n = metrics.name
    if metrics.nonfinite:
        reasons.append(f"{n}: {metrics.nonfinite} NaN/inf values")
        return reasons
    abs_ok = tolerance.max_abs_diff is not None and metrics.max_abs_diff <= tolerance.max_abs_diff
    rel_ok = tolerance.max_rel_diff is not None and metrics.max_rel_diff <= tolerance.max_rel_diff
    if (tolerance.max_abs_diff is not None or tolerance.max_rel_diff is not None) and not (abs_ok or rel_ok):
        reasons.append(
            f"{n}: max_abs_diff {metrics.max_abs_diff:.3g} > {tolerance.max_abs_diff} "
            f"and max_rel_diff {metrics.max_rel_diff:.3g} > {tolerance.max_rel_diff}"
        )
    if tolerance.cosine_min is not None and not metrics.cosine_min >= tolerance.cosine_min:
        reasons.append(f"{n}: cosine_min {metrics.cosine_min:.6g} < {tolerance.cosine_min}")
    if tolerance.top1_agreement_min is not None and not metrics.top1_agreement >= tolerance.top1_agreement_min:
        reasons.append(f"{n}: top1_agreement {metrics.top1_agreement:.4g} < {tolerance.top1_agreement_min}")
    return reasons


# --- weights ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightComparison:
    """The saved weights against the original's, tensor by tensor.

    Args:
        file: The weights file read.
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
        weights_file: The exported ``model.safetensors``.
        precision: The precision the export was asked for.
        cancel: Stops early when set (the comparison then covers only the tensors read).

    Returns:
        The comparison.

    Raises:
        InvalidInputError: Unknown precision, or the file is missing or not safetensors.
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

    def note(kind: str, name: str) -> None:
        counts[kind] += 1
        if len(names[kind]) < _MAX_LISTED_NAMES:
            names[kind].append(name)

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            saved_keys = list(f.keys())
            saved_set = set(saved_keys)
            for key in original:
                if key not in saved_set:
                    note("missing", key)
            for key in saved_keys:
                if cancel is not None and cancel.is_set():
                    break
                if key not in original:
                    note("extra", key)
                    continue
                saved = f.get_tensor(key)
                orig = original[key].detach().to("cpu")
                if saved.shape != orig.shape:
                    note("shape_mismatch", key)
                    continue
                expected_dtype = dtype if orig.is_floating_point() else orig.dtype
                if saved.dtype != expected_dtype:
                    note("dtype_mismatch", key)
                else:
                    expected = orig.to(expected_dtype)
                    same = (
                        (saved == expected) | (saved.isnan() & expected.isnan()) if saved.is_floating_point() else None
                    )
                    if not (bool(same.all()) if same is not None else torch.equal(saved, expected)):
                        note("value_mismatch", key)
                diff = (saved.double() - orig.double()).abs()
                per_tensor[key] = float(diff.max()) if diff.numel() else 0.0
    except (OSError, SafetensorError) as exc:
        raise InvalidInputError(f"Cannot read weights file {str(path)!r}: {exc}", hint="Export again.") from exc

    worst = max(per_tensor, key=lambda k: (not math.isfinite(per_tensor[k]), per_tensor[k]), default=None)
    worst_value = per_tensor[worst] if worst is not None else 0.0
    return WeightComparison(
        file=str(path),
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


# --- divergence -------------------------------------------------------------------------------------
def _first_weight_owner(model: torch.nn.Module, weights: WeightComparison) -> str | None:
    """The module owning the first differing tensor, in the model's own state_dict order."""
    bad = {
        n for k in ("value_mismatch", "shape_mismatch", "dtype_mismatch", "missing") for n in weights.names.get(k, [])
    }
    for name in model.state_dict():
        if name in bad:
            return name.rsplit(".", 1)[0] if "." in name else name
    return None


class _StopForward(Exception):
    """Raised inside a hook to abandon a forward pass once the first divergence is known."""


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            t = _first_tensor(item)
            if t is not None:
                return t
    if isinstance(out, dict):
        for item in out.values():
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _module_diverges(ref: torch.Tensor, test: torch.Tensor, tolerance: Tolerance) -> bool:
    if ref.shape != test.shape:
        return True
    if not ref.is_floating_point():
        return not torch.equal(ref, test)
    if ref.ndim == 0:
        ref, test = ref.reshape(1, 1), test.reshape(1, 1)
    elif ref.ndim == 1:
        ref, test = ref.unsqueeze(0), test.unsqueeze(0)
    s = _sample_stats(ref, test)
    if not bool(torch.isfinite(s["t"]).all()) and bool(torch.isfinite(s["r"]).all()):
        return True
    if tolerance.max_abs_diff is not None or tolerance.max_rel_diff is not None:
        abs_ok = tolerance.max_abs_diff is not None and float(s["dmax"].max()) <= tolerance.max_abs_diff
        rel_ok = tolerance.max_rel_diff is not None and float(s["rel"].max()) <= tolerance.max_rel_diff
        if not (abs_ok or rel_ok):
            return True
    return tolerance.cosine_min is not None and float(s["cos"].min()) < tolerance.cosine_min


def find_diverging_module(
    original: torch.nn.Module,
    rebuilt: torch.nn.Module,
    pixels: torch.Tensor,
    tolerance: Tolerance,
    forward: Callable[[torch.nn.Module, torch.Tensor], Any] | None = None,
) -> str | None:
    """Name the first module, in execution order, whose output differs beyond ``tolerance``.

    Forward hooks record every module's output in the original (cloned, because later in-place ops
    such as ``ReLU(inplace=True)`` would change it), then the rebuilt model runs with hooks that compare
    each module's output as it completes and stop at the first divergence. Hooks fire when a module
    *finishes*, so a leaf (``layer2.0.conv1``) is reported before the block that contains it.
    A module called several times is matched call by call.

    Args:
        original: The reference model.
        rebuilt: The model under test (same architecture, so the same module names).
        pixels: A small batch (one sample is enough).
        tolerance: Thresholds; the closeness and cosine checks apply to every module output.
        forward: How to call a model; ``model(pixels)`` by default.

    Returns:
        The dotted module name, or None if no module output is beyond tolerance.
    """
    call = forward or (lambda m, x: m(x))
    recorded: dict[tuple[str, int], torch.Tensor] = {}
    calls: dict[str, int] = {}
    found: list[str] = []

    def record(name: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, _args: Any, output: Any) -> None:
            t = _first_tensor(output)
            idx = calls.get(name, 0)
            calls[name] = idx + 1
            if t is not None:
                recorded[(name, idx)] = t.detach().clone()

        return hook

    def compare(name: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, _args: Any, output: Any) -> None:
            idx = calls.get(name, 0)
            calls[name] = idx + 1
            t = _first_tensor(output)
            ref = recorded.get((name, idx))
            if t is None or ref is None:
                return
            if _module_diverges(ref, t.detach(), tolerance):
                found.append(name)
                raise _StopForward

        return hook

    def run(model: torch.nn.Module, make_hook: Callable[[str], Callable[..., None]]) -> None:
        handles = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if n]
        calls.clear()
        try:
            with torch.inference_mode():
                call(model, pixels)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()

    run(original, record)
    run(rebuilt, compare)
    return found[0] if found else None


# --- report -----------------------------------------------------------------------------------------
def library_versions(library: str = "timm") -> dict[str, str]:
    """Versions that parity results depend on: python, torch, the library, safetensors, hubui."""
    from importlib.metadata import PackageNotFoundError, version

    from hubui import __version__

    out = {"python": platform.python_version(), "torch": torch.__version__, "hubui": __version__}
    for dist in (*_adapter(library).version_modules, "safetensors"):
        try:
            out[dist] = version(dist.replace("_", "-"))
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


@dataclass(frozen=True)
class ParityReport:
    """The state of a parity run: partial while ``status == "running"``, final otherwise.

    Args:
        verdict: ``"pending"`` (running), ``"pass"``, ``"fail"`` or ``"cancelled"``.
        status: ``"running"``, ``"done"`` or ``"cancelled"``.
        precision: The export precision under test.
        tolerance: The thresholds applied.
        outputs: One OutputMetrics per compared output.
        weights: The saved-weights comparison, when a folder was given.
        inputs: ``{"count", "real", "synthetic", "user", "names", "input_size"}``.
        batches_done: Batches compared so far.
        batches_total: Batches in the run.
        diverging_module: On failure, the first module whose output diverged.
        versions: Library versions (see :func:`library_versions`).
        elapsed_s: Seconds since the run started.
        library: ``"timm"``.
        architecture: The model's architecture name.
        reasons: Why it failed (empty when it passed).
        device: Where the forward passes ran.
    """

    verdict: str
    status: str
    precision: str
    tolerance: Tolerance
    outputs: tuple[OutputMetrics, ...]
    weights: WeightComparison | None
    inputs: dict[str, Any]
    batches_done: int
    batches_total: int
    diverging_module: str | None
    versions: dict[str, str]
    elapsed_s: float
    library: str = "timm"
    architecture: str = ""
    reasons: tuple[str, ...] = ()
    device: str = "cpu"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def done(self) -> bool:
        return self.status != "running"

    def raise_for_verdict(self) -> None:
        """Raise ParityFailedError unless the verdict is ``"pass"``.

        Raises:
            ParityFailedError: Listing the reasons and the diverging module.
        """
        if self.passed:
            return
        detail = "; ".join(self.reasons) or self.verdict
        where = f" (first diverging module: {self.diverging_module})" if self.diverging_module else ""
        raise ParityFailedError(f"Parity {self.verdict} for {self.precision} export: {detail}{where}")

    def to_dict(self) -> dict[str, Any]:
        """The ``parity.json`` schema (``schema_version`` 1)."""
        return {
            "verdict": self.verdict,
            "status": self.status,
            "precision": self.precision,
            "tolerance": self.tolerance.to_dict(),
            "outputs": [o.to_dict() for o in self.outputs],
            "weights": self.weights.to_dict() if self.weights is not None else None,
            "inputs": dict(self.inputs),
            "diverging_module": self.diverging_module,
            "versions": dict(self.versions),
            "batches_done": self.batches_done,
            "batches_total": self.batches_total,
            "elapsed_s": round(self.elapsed_s, 3),
            "library": self.library,
            "architecture": self.architecture,
            "reasons": list(self.reasons),
            "device": self.device,
            "schema_version": SCHEMA_VERSION,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        """Read a report back from :meth:`to_dict` output (e.g. a ``parity.json``).

        Raises:
            InvalidInputError: A required key is missing.
        """
        try:
            return cls(
                verdict=str(data["verdict"]),
                status=str(data["status"]),
                precision=str(data["precision"]),
                tolerance=Tolerance.from_dict(data.get("tolerance") or {}),
                outputs=tuple(OutputMetrics.from_dict(o) for o in data.get("outputs") or ()),
                weights=WeightComparison.from_dict(data["weights"]) if data.get("weights") else None,
                inputs=dict(data.get("inputs") or {}),
                batches_done=int(data.get("batches_done", 0)),
                batches_total=int(data.get("batches_total", 0)),
                diverging_module=data.get("diverging_module"),
                versions=dict(data.get("versions") or {}),
                elapsed_s=float(data.get("elapsed_s", 0.0)),
                library=str(data.get("library", "timm")),
                architecture=str(data.get("architecture", "")),
                reasons=tuple(data.get("reasons") or ()),
                device=str(data.get("device", "cpu")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"Not a parity report: {exc}", hint="Pass the parity.json hubui wrote.") from exc

    @classmethod
    def from_json(cls, text: str) -> ParityReport:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"Not a parity report: {exc}", hint="Pass the parity.json hubui wrote.") from exc
        return cls.from_dict(data)


def write_parity_json(report: ParityReport, folder: str | Path) -> Path:
    """Write ``parity.json`` into ``folder`` atomically.

    Args:
        report: A final report.
        folder: The export folder.

    Returns:
        The file written.

    Raises:
        ExportError: The file can't be written.
    """
    folder = Path(folder)
    path = folder / PARITY_FILENAME
    text = report.to_json()
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".parity-", suffix=".json", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ExportError(f"Could not write {str(path)!r}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def read_parity_json(folder: str | Path) -> ParityReport:
    """Read ``parity.json`` from an export folder.

    Raises:
        InvalidInputError: Missing or malformed.
    """
    path = Path(folder) / PARITY_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"Cannot read {str(path)!r}: {exc}", hint="Run parity first.") from exc
    return ParityReport.from_json(text)


# --- running ----------------------------------------------------------------------------------------
def _device_of(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def iter_parity(
    original: LoadedModel,
    rebuilt: torch.nn.Module,
    precision: str,
    tolerance: Tolerance | None = None,
    images: Sequence[Any] = (),
    batch_size: int = 4,
    cancel: threading.Event | None = None,
    folder: str | Path | None = None,
    *,
    inputs: ParityInputs | None = None,
) -> Iterator[ParityReport]:
    """Compare ``rebuilt`` with ``original`` batch by batch, yielding a report after each batch.

    Yields a ``status="running"`` report after every batch but the last (``batches_done`` of
    ``batches_total``, always less than the total), then a final one: ``verdict`` ``"pass"`` or ``"fail"``
    (``status="done"``), or ``"cancelled"`` as soon as ``cancel`` is seen set between batches. Forward
    passes run under ``torch.inference_mode()``, entered per batch so the caller's code between yields is
    not affected. Both models are put in eval mode.

    For fp16/bf16 the rebuilt model is the fp32 module timm builds from the half-precision file (what a
    user of ``timm.create_model`` gets); the drift measured is the rounding of the weights.

    Args:
        original: The model as loaded (fp32).
        rebuilt: The model rebuilt from the export by the library's own loader.
        precision: The export precision; picks the tolerance preset.
        tolerance: Overrides the preset.
        images: Extra user images (paths or PIL images).
        batch_size: Samples per forward pass.
        cancel: Set it from another thread to stop between batches.
        folder: The export folder; when given, its weights file is compared tensor by tensor.
        inputs: Pre-built inputs (skips :func:`build_parity_inputs`; ``images`` is then ignored).

    Yields:
        ParityReport, partial then final.

    Raises:
        InvalidInputError: Unknown precision or library, a bad image, or ``batch_size < 1``.
    """
    start = time.perf_counter()
    check_precision(precision)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, not {batch_size!r}")
    tol = tolerance or tolerance_preset(precision)
    library = original.spec.library
    adapter = _adapter(library)
    if inputs is None:
        inputs = build_parity_inputs(original.data_config, images, library=library)
    original.model.eval()
    rebuilt.eval()
    device = _device_of(original.model)
    rebuilt_device = _device_of(rebuilt)
    total = math.ceil(len(inputs) / batch_size)
    accumulators: dict[str, _OutputAccumulator] = {}
    worst: tuple[float, int] = (2.0, 0)  # (cosine, sample index) of the least similar sample
    weights: WeightComparison | None = None
    described = inputs.describe()
    versions = library_versions(library)

    def report(
        verdict: str, status: str, done: int, reasons: tuple[str, ...] = (), diverging_module: str | None = None
    ) -> ParityReport:
        return ParityReport(
            verdict=verdict,
            status=status,
            precision=precision,
            tolerance=tol,
            outputs=tuple(a.result() for a in accumulators.values()),
            weights=weights,
            inputs=dict(described),
            batches_done=done,
            batches_total=total,
            diverging_module=diverging_module,
            versions=dict(versions),
            elapsed_s=time.perf_counter() - start,
            library=library,
            architecture=original.spec.architecture,
            reasons=reasons,
            device=str(device),
        )

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    if folder is not None:
        weights = compare_weights(original.model, Path(folder) / adapter.weights_file, precision, cancel)

    reasons: list[str] = []
    for b in range(total):
        if cancelled():
            logger.info("parity cancelled after %d/%d batches", b, total)
            yield report("cancelled", "cancelled", b, reasons=("cancelled",))
            return
        lo = b * batch_size
        x = inputs.pixels[lo : lo + batch_size]
        with torch.inference_mode():
            ref = adapter.forward(original.model, x.to(device))
            test = adapter.forward(rebuilt, x.to(rebuilt_device))
            for name, ref_out in ref.items():
                acc = accumulators.get(name) or _OutputAccumulator(name)
                test_out = test.get(name)
                problem = None
                if test_out is None:
                    problem = f"{name}: missing from the rebuilt model's outputs"
                else:
                    try:
                        cos = acc.update(ref_out, test_out)
                    except _ShapeMismatch as exc:
                        problem = str(exc)
                    else:
                        # Only outputs that could be compared get metrics; the others fail by reason.
                        accumulators[name] = acc
                if problem is not None:
                    if problem not in reasons:  # once, not once per batch
                        reasons.append(problem)
                    continue
                i = int(torch.nan_to_num(cos, nan=-2.0).argmin())
                c = float(torch.nan_to_num(cos, nan=-2.0)[i])
                if c < worst[0]:
                    worst = (c, lo + i)
        if b + 1 < total:
            # After the last batch the final report follows at once; a partial with done == total would
            # only say "running" about a finished run.
            yield report("pending", "running", b + 1)

    if cancelled():
        yield report("cancelled", "cancelled", total, reasons=("cancelled",))
        return

    outputs = tuple(a.result() for a in accumulators.values())
    for metrics in outputs:
        reasons += check_output(metrics, tol)
    outputs_ok = not reasons
    if weights is not None:
        reasons += check_weights(weights, tol)
    diverging: str | None = None
    if reasons and outputs_ok and weights is not None:
        # Outputs within tolerance, weights not: the owner of the first differing tensor is the answer.
        # A hook search would report whichever later module happens to amplify the tiny difference.
        diverging = _first_weight_owner(original.model, weights)
    if reasons and diverging is None:
        # Also when only the weights differ: a changed tensor can leave the logits untouched (timm zero-inits
        # the last norm of each residual branch), yet its module's own output still shows where it is.
        sample = inputs.pixels[worst[1] : worst[1] + 1].to(device)
        try:
            diverging = find_diverging_module(
                original.model,
                rebuilt,
                sample,
                tol,
                forward=lambda m, px: adapter.forward(m, px.to(_device_of(m))),
            )
        except RuntimeError as exc:  # e.g. architectures that differ so much the rebuilt forward fails
            logger.warning("could not locate the diverging module: %s", exc)
    verdict = "fail" if reasons else "pass"
    logger.info("parity %s for %s (%s): %s", verdict, original.spec.architecture, precision, reasons or "ok")
    yield report(verdict, "done", total, reasons=tuple(reasons), diverging_module=diverging)


def run_parity(
    original: LoadedModel,
    rebuilt: torch.nn.Module,
    precision: str,
    tolerance: Tolerance | None = None,
    images: Sequence[Any] = (),
    batch_size: int = 4,
    cancel: threading.Event | None = None,
    folder: str | Path | None = None,
    *,
    inputs: ParityInputs | None = None,
) -> ParityReport:
    """Run :func:`iter_parity` to the end and return the final report.

    Args and Raises: as :func:`iter_parity`.

    Returns:
        The final report (check ``report.passed`` or call ``report.raise_for_verdict()``).
    """
    last: ParityReport | None = None
    for report in iter_parity(
        original, rebuilt, precision, tolerance, images, batch_size, cancel, folder, inputs=inputs
    ):
        last = report
    if last is None:  # pragma: no cover - iter_parity always yields a final report
        raise RuntimeError("parity produced no report")
    return last


def verify_export(
    loaded: LoadedModel,
    folder: str | Path,
    precision: str | None = None,
    tolerance: Tolerance | None = None,
    images: Sequence[Any] = (),
    batch_size: int = 4,
    cancel: threading.Event | None = None,
) -> Iterator[ParityReport]:
    """Rebuild an export folder with the library's own loader, then stream parity against ``loaded``.

    Args:
        loaded: The original model.
        folder: The folder :func:`hubui.export.export_model` wrote.
        precision: Defaults to the precision recorded in the folder's config.json.
        tolerance: Overrides the preset.
        images: Extra user images.
        batch_size: Samples per forward pass.
        cancel: Set to stop between batches.

    Yields:
        ParityReport, partial then final.

    Raises:
        InvalidInputError: ``precision`` disagrees with the folder, or no precision is known.
        CheckpointMismatchError, ModelError: The folder can't be rebuilt.
    """
    recorded = read_export_precision(folder)
    if precision is None:
        precision = recorded or "fp32"
    elif recorded is not None and recorded != precision:
        raise InvalidInputError(
            f"{str(folder)!r} holds a {recorded} export, not {precision}",
            hint=f"Verify with precision={recorded!r}, or export again.",
        )
    rebuilt = rebuild_from_folder(folder, library=loaded.spec.library)
    yield from iter_parity(loaded, rebuilt, precision, tolerance, images, batch_size, cancel, folder)


__all__ = [
    "PARITY_FILENAME",
    "OutputMetrics",
    "ParityInputs",
    "ParityReport",
    "Tolerance",
    "WeightComparison",
    "build_parity_inputs",
    "check_output",
    "check_weights",
    "compare_weights",
    "find_diverging_module",
    "iter_parity",
    "library_versions",
    "load_image",
    "read_parity_json",
    "real_image_paths",
    "run_parity",
    "synthetic_images",
    "tolerance_preset",
    "verify_export",
    "write_parity_json",
]
