"""The catalog's dataclasses: one searchable name, one pretrained tag, a model's facts, and a zoo's index.

Sources (:mod:`hubui.libraries`) produce them and :mod:`hubui.catalog` searches them; this module imports no
library, so both may import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogEntry:
    """One searchable name of a model zoo.

    Args:
        name: The full name: ``"resnet50"`` or, for a pretrained tag, ``"resnet50.a1_in1k"`` (timm) /
            ``"ViT-B-32:laion2b_s34b_b79k"`` (open_clip).
        architecture: The architecture part (``"resnet50"``, ``"ViT-B-32"``).
        tag: The pretrained tag (``"a1_in1k"``), or None for a bare architecture.
        library: The source library (:func:`hubui.libraries.source_names`).
    """

    name: str
    architecture: str
    tag: str | None
    library: str


@dataclass(frozen=True)
class PretrainedTag:
    """One pretrained tag of an open_clip architecture, as ``open_clip.get_pretrained_cfg`` describes it.

    Args:
        tag: The tag (``"laion2b_s34b_b79k"``).
        hf_hub_id: The Hub repo holding the weights, or None when they are only at ``url``.
        hf_hub_filename: The weights file named in the config, or None for open_clip's default
            (``open_clip_model.safetensors``, else ``open_clip_pytorch_model.bin``).
        url: Where the original weights are published outside the Hub, where known.
        quick_gelu: Whether the weights were trained with QuickGELU (load them with the
            ``-quickgelu`` architecture).
        license: The weights' license where the config names one.
        mean: Normalisation mean the weights were trained with.
        std: Normalisation standard deviation.
        interpolation: Resize interpolation.
        resize_mode: Resize mode (``"shortest"``, ``"longest"``, ``"squash"``).
    """

    tag: str
    hf_hub_id: str | None
    hf_hub_filename: str | None
    url: str | None
    quick_gelu: bool
    license: str | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    resize_mode: str


# ModelFacts fields that only open_clip fills; left out of ``to_dict`` when None so timm's output is unchanged.
_OPEN_CLIP_FIELDS = (
    "embed_dim", "context_length", "tokenizer", "hf_tokenizer_name", "resize_mode", "quick_gelu",
    "model_class", "built_on", "tag_details",
)  # fmt: skip


@dataclass(frozen=True)
class ModelFacts:
    """What is known about a model before any weights are downloaded.

    Preprocessing, license and origin come from the library's pretrained config: for an
    ``arch.tag`` (timm) / ``arch:tag`` (open_clip) name that tag's config; for a bare timm architecture
    the default tag's (named in ``tag``), or the architecture's defaults when it has no pretrained
    weights (``tag`` is None). open_clip has no default tag: a bare open_clip architecture reports
    open_clip's defaults (what random weights get) and ``tag`` is None.

    For open_clip, ``num_classes`` is 0 (an embedding model has no classifier), ``crop_pct`` is 1.0
    (the inference transform crops nothing beyond what ``resize_mode`` does) and ``crop_mode`` is the
    timm equivalent of ``resize_mode`` (shortest -> ``"center"``, squash -> ``"squash"``, longest ->
    ``"border"``); the open_clip-only fields below are None for timm.

    Args:
        library: The source library (:func:`hubui.libraries.source_names`).
        name: The name asked for.
        architecture: The architecture.
        tag: The pretrained tag the config describes, or None.
        num_params: Number of parameters (shared parameters counted once).
        input_size: ``(channels, height, width)``.
        mean: Normalisation mean, one value per channel.
        std: Normalisation standard deviation, one value per channel.
        interpolation: Resize interpolation (``"bicubic"``...).
        crop_pct: Center-crop fraction.
        crop_mode: Crop mode (``"center"``...).
        num_classes: Classifier outputs (0 for a headless model).
        license: The weights' license where known.
        paper_name: Paper title where known.
        paper_ids: Paper ids (``"arXiv:..."``) where known.
        origin_url: Where the weights or the architecture come from, where known.
        hf_hub_id: Hub repo holding the pretrained weights, where known.
        pretrained_tags: Every pretrained tag of the architecture, sorted by name.
        size_fp32_bytes: Size of the weights in fp32 (floating tensors 4 bytes each, others as stored).
        size_fp16_bytes: The same in fp16.
        embed_dim: open_clip: size of the joint image-text embedding.
        context_length: open_clip: text context length in tokens.
        tokenizer: open_clip: ``"clip_bpe"`` (open_clip's built-in BPE) or ``"hf"`` (a Hugging Face tokenizer).
        hf_tokenizer_name: open_clip: the Hugging Face tokenizer's repo, when ``tokenizer`` is ``"hf"``.
        resize_mode: open_clip: resize mode (``"shortest"``, ``"longest"``, ``"squash"``).
        quick_gelu: open_clip: whether the architecture uses QuickGELU.
        model_class: open_clip: ``"CLIP"``, ``"CustomTextCLIP"`` or ``"CoCa"``.
        built_on: open_clip: where the parameter count was taken: ``"meta"`` (no memory used) or
            ``"cpu"`` (the architecture cannot be built on the meta device).
        tag_details: open_clip: every pretrained tag of the architecture with its config, sorted by tag.
    """

    library: str
    name: str
    architecture: str
    tag: str | None
    num_params: int
    input_size: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    crop_mode: str
    num_classes: int
    license: str | None
    paper_name: str | None
    paper_ids: tuple[str, ...]
    origin_url: str | None
    hf_hub_id: str | None
    pretrained_tags: tuple[str, ...]
    size_fp32_bytes: int
    size_fp16_bytes: int
    embed_dim: int | None = None
    context_length: int | None = None
    tokenizer: str | None = None
    hf_tokenizer_name: str | None = None
    resize_mode: str | None = None
    quick_gelu: bool | None = None
    model_class: str | None = None
    built_on: str | None = None
    tag_details: tuple[PretrainedTag, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The facts as a JSON-ready dict (tuples become lists); open_clip-only fields only where set."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
            if not (key in _OPEN_CLIP_FIELDS and value is None)
        }


@dataclass(frozen=True)
class CatalogIndex:
    """Every name of one library, built once per process."""

    architectures: tuple[CatalogEntry, ...]
    pretrained: tuple[CatalogEntry, ...]
    tags: dict[str, tuple[str, ...]]  # architecture -> its pretrained tags, sorted


def tensor_sizes(tensors: Any) -> tuple[int, int]:
    """Bytes of a state dict's tensors in fp32 and in fp16 (non-float tensors keep their dtype)."""
    fp32 = fp16 = 0
    for tensor in tensors:
        n = tensor.numel()
        if tensor.is_floating_point():
            fp32, fp16 = fp32 + 4 * n, fp16 + 2 * n
        else:
            size = n * tensor.element_size()
            fp32, fp16 = fp32 + size, fp16 + size
    return fp32, fp16


def paper_ids(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


__all__ = ["CatalogEntry", "CatalogIndex", "ModelFacts", "PretrainedTag", "paper_ids", "tensor_sizes"]
