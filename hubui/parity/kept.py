"""The original's outputs on the parity inputs, computed before the rebuild and kept beside ``parity.json``.

A conversion runs the original once over the parity inputs, keeps its outputs batch by batch (they are small:
logits or embeddings, not activations) and then releases the original, so the rebuilt model is compared with
these kept outputs and the two models are never in memory together. The same outputs, with the inputs that
produced them, are written into the export folder as :data:`KEPT_NAME`, so that a push made later from the folder
(``hubui push --from FOLDER``) verifies the re-downloaded model against the original's outputs without the
original. The file is hidden: it never travels to the Hub (:mod:`hubui.push_files` leaves hidden files out).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from hubui.errors import InvalidInputError
from hubui.outdir import REFERENCE_NAME
from hubui.parity.inputs import ParityInputs
from hubui.parity.pairs import Pair
from hubui.spec import LoadedModel, ModelSpec

if TYPE_CHECKING:
    from hubui.parity.metrics import Tolerance
    from hubui.parity.report import ParityReport
    from hubui.parity.weights import WeightComparison

KEPT_NAME = REFERENCE_NAME
"""The kept reference outputs' file in an export folder (hidden: never pushed; ``--overwrite`` replaces it)."""

_META_KEY = "hubui"
_FORMAT_VERSION = 1


@dataclass
class KeptReference:
    """The original's outputs on the parity inputs, batch by batch.

    Args:
        library: The original's library (whose format's pair named the outputs).
        architecture: The original's architecture.
        pixels: The parity inputs, ``(N, C, H, W)``.
        batch_size: Samples per batch; batch ``b`` covers ``pixels[b * batch_size:(b + 1) * batch_size]``.
        batches: One ``{output name: tensor}`` per batch, as the pair's reference side returned them.
        describe: The report's ``inputs`` (the inputs' and the pair's description).
        device: Where the original ran.
        data_config: The original's preprocessing.
        label_names: The original's label names.
    """

    library: str
    architecture: str
    pixels: torch.Tensor
    batch_size: int
    batches: list[dict[str, torch.Tensor]] = field(default_factory=list)
    describe: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    data_config: dict[str, Any] = field(default_factory=dict)
    label_names: list[str] | None = None

    @property
    def total(self) -> int:
        """How many batches the inputs make."""
        return math.ceil(len(self.pixels) / self.batch_size)

    def as_loaded(self) -> LoadedModel:
        """What the original was, without its module, for a parity run against these outputs."""
        from hubui.released import released

        spec = ModelSpec(self.library, self.architecture)  # type: ignore[arg-type]
        placeholder = LoadedModel(spec, torch.nn.Identity(), {}, dict(self.data_config), self.label_names)
        return released(placeholder)


class _FileTensors(Mapping[str, torch.Tensor]):
    """The tensors of a safetensors file (or of every shard of an index), read one at a time on access."""

    def __init__(self, path: Path) -> None:
        from safetensors import safe_open

        from hubui.shards import is_index, read_index

        if is_index(path):
            self._where = read_index(path)
        else:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                self._where = dict.fromkeys(f.keys(), path)

    def __getitem__(self, key: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self._where[key]), framework="pt", device="cpu") as f:
            return f.get_tensor(key)  # a copy: the file is closed again at once

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


class FileWeights(torch.nn.Module):
    """A stand-in whose ``state_dict()`` is a weights file, read lazily: a push's re-downloaded weights are
    checked against the folder's own file (already checked against the original) without loading a model.

    Args:
        path: The weights file, or a sharded export's index.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self._tensors = _FileTensors(Path(path))

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self._tensors


def iter_reference(
    original: LoadedModel,
    pair: Pair,
    inputs: ParityInputs,
    batch_size: int,
    device: torch.device,
    cancel: threading.Event | None = None,
) -> Iterator[KeptReference]:
    """Run the original over the parity inputs, yielding the kept outputs after every batch.

    Args:
        original: The model as loaded.
        pair: Its format's pair (only ``ref`` is called).
        inputs: The parity inputs.
        batch_size: Samples per forward pass.
        device: The original's device.
        cancel: Stops between batches when set (the last yielded reference is then incomplete).

    Yields:
        The same :class:`KeptReference`, one more batch each time.
    """
    kept = KeptReference(
        library=original.spec.library,
        architecture=original.spec.architecture,
        pixels=inputs.pixels,
        batch_size=batch_size,
        describe={**inputs.describe(), **pair.describe},
        device=str(device),
        data_config=dict(original.data_config),
        label_names=list(original.label_names) if original.label_names is not None else None,
    )
    original.model.eval()
    for b in range(kept.total):
        if cancel is not None and cancel.is_set():
            return
        x = inputs.pixels[b * batch_size : (b + 1) * batch_size]
        with torch.inference_mode():
            out = pair.ref(x.to(device), b == 0)
        # Detached CPU copies: the kept outputs must hold nothing of the original (no autograd graph, no views).
        kept.batches.append({k: v.detach().to("cpu").clone() for k, v in out.items()})
        del out
        yield kept


def cancelled_report(
    kept: KeptReference, precision: str, tolerance: Tolerance | None, weights: WeightComparison | None
) -> ParityReport:
    """The report of a run cancelled after the reference outputs and before the rebuild: nothing was compared.

    Args:
        kept: The reference outputs computed so far (they say what the inputs were).
        precision: The export precision.
        tolerance: The thresholds the run would have applied (None: the precision's preset).
        weights: The weights check, when it ran.
    """
    from hubui.parity.metrics import tolerance_preset
    from hubui.parity.report import ParityReport, library_versions

    return ParityReport(
        verdict="cancelled",
        status="cancelled",
        precision=precision,
        tolerance=tolerance or tolerance_preset(precision),
        outputs=(),
        weights=weights,
        inputs=dict(kept.describe),
        batches_done=0,
        batches_total=kept.total,
        diverging_module=None,
        versions=dict(library_versions(kept.library)),
        elapsed_s=0.0,
        library=kept.library,
        architecture=kept.architecture,
        reasons=("cancelled",),
        device=kept.device,
    )


def write_kept(kept: KeptReference, folder: str | Path) -> Path:
    """Write ``kept`` as :data:`KEPT_NAME` in ``folder``.

    Returns:
        The file written.
    """
    from safetensors.torch import save_file

    tensors = {"pixels": kept.pixels.contiguous()}
    names: list[list[str]] = []
    for b, outputs in enumerate(kept.batches):
        names.append(list(outputs))
        for name, tensor in outputs.items():
            tensors[f"batch{b}/{name}"] = tensor.contiguous()
    meta = {
        "version": _FORMAT_VERSION,
        "library": kept.library,
        "architecture": kept.architecture,
        "batch_size": kept.batch_size,
        "outputs": names,
        "describe": kept.describe,
        "device": kept.device,
        "data_config": kept.data_config,
        "label_names": kept.label_names,
    }
    path = Path(folder) / KEPT_NAME
    save_file(tensors, str(path), metadata={_META_KEY: json.dumps(meta, default=str)})
    return path


def read_kept(folder: str | Path) -> KeptReference | None:
    """The kept reference outputs of an export folder, or None when it has none (an export made before them).

    Raises:
        InvalidInputError: The file is there but unreadable.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / KEPT_NAME
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {})[_META_KEY])
            pixels = f.get_tensor("pixels")
            batches = [{n: f.get_tensor(f"batch{b}/{n}") for n in names} for b, names in enumerate(meta["outputs"])]
    except (OSError, SafetensorError, KeyError, ValueError, TypeError) as exc:
        raise InvalidInputError(
            f"{str(path)!r} holds no readable reference outputs: {exc}",
            "Convert the model again (it writes the file), or delete the file to verify against the folder.",
        ) from exc
    return KeptReference(
        library=meta["library"],
        architecture=meta["architecture"],
        pixels=pixels,
        batch_size=int(meta["batch_size"]),
        batches=batches,
        describe=meta.get("describe") or {},
        device=meta.get("device") or "cpu",
        data_config=meta.get("data_config") or {},
        label_names=meta.get("label_names"),
    )


__all__ = ["KEPT_NAME", "FileWeights", "KeptReference", "iter_reference", "read_kept", "write_kept"]
