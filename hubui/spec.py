"""The dataclasses that describe *which* model to load and the model once loaded.

They cross module boundaries: catalog and loading produce them, export and parity consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

Library = str
"""A registered source library's name (:func:`hubui.libraries.source_names`)."""
Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelSpec:
    """What to load, and what to override. Exactly one source: ``pretrained``, ``checkpoint``,
    ``hf_hub_id``, or none of them (random weights, seeded by ``seed``; for tests and dry runs).

    Args:
        library: A registered library (:func:`hubui.libraries.source_names`).
        architecture: The library's model name, e.g. ``"resnet50"`` or ``"ViT-B-32"``.
        pretrained: A pretrained tag, e.g. ``"a1_in1k"`` (timm) or ``"laion2b_s34b_b79k"`` (open_clip).
        checkpoint: A local checkpoint file.
        hf_hub_id: An existing Hub repo to start from (``hf-hub:`` for open_clip).
        num_classes: New classifier size (timm). Requires ``label_names`` of that length, or none.
        label_names: Class names, stored in the config and the card.
        mean: Image mean override.
        std: Image std override.
        interpolation: Resize interpolation override (``"bicubic"``, ``"bilinear"``...).
        crop_pct: Center-crop fraction override (timm).
        resize_mode: open_clip resize mode override (``"shortest"``, ``"longest"``, ``"squash"``).
        seed: Seed for random weights when no source is given.
    """

    library: Library
    architecture: str
    pretrained: str | None = None
    checkpoint: str | None = None
    hf_hub_id: str | None = None
    num_classes: int | None = None
    label_names: tuple[str, ...] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    resize_mode: str | None = None
    seed: int = 0


@dataclass
class LoadedModel:
    """A model in memory, in eval mode, fp32, on CPU, with what is needed to export and test it.

    Args:
        spec: What was asked for.
        model: The module.
        pretrained_cfg: timm's pretrained_cfg (with overrides applied), or open_clip's preprocess cfg.
        data_config: Preprocessing: ``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct``,
            ``crop_mode`` (timm) / ``resize_mode`` (open_clip).
        label_names: Class names where known.
        source: A human-readable origin, e.g. ``"hf-hub:timm/resnet18.a1_in1k"`` or a checkpoint path.
        extra: Library-specific state (open_clip: ``model_cfg``, tokenizer info).
    """

    spec: ModelSpec
    model: torch.nn.Module
    pretrained_cfg: dict[str, Any]
    data_config: dict[str, Any]
    label_names: list[str] | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportResult:
    """A finished export.

    Args:
        folder: The Hub folder.
        files: ``(name, size_bytes)`` of every file in it, sorted by name.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``: the dtype of every floating tensor saved.
        library: The format's registry name (:func:`hubui.libraries.format_names`).
        config: The config written (config.json or open_clip_config.json), as a dict.
    """

    folder: Path
    files: tuple[tuple[str, int], ...]
    precision: str
    library: str
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (the CLI prints it)."""
        return {
            "folder": str(self.folder),
            "files": [{"name": n, "size_bytes": s} for n, s in self.files],
            "precision": self.precision,
            "library": self.library,
        }


def check_label_count(spec: ModelSpec, num_classes: int | None) -> None:
    """Refuse ``label_names`` whose count differs from the classifier's.

    Raises:
        InvalidInputError: ``len(spec.label_names) != num_classes`` (both given).
    """
    from hubui.errors import InvalidInputError

    if spec.label_names is not None and num_classes is not None and len(spec.label_names) != num_classes:
        raise InvalidInputError(
            f"{len(spec.label_names)} label_names given for a model with {num_classes} classes.",
            hint="Give one name per class, or set num_classes to the number of names.",
        )
