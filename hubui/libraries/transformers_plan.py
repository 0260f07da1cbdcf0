"""What the ``transformers`` target accepts, and the plan that turns one timm model into a transformers model.

A timm model whose topology transformers' ``ResNetForImageClassification`` or ``ViTForImageClassification`` can
express (see :mod:`hubui.libraries.transformers_map`) gets a plan: the transformers config (labels included), the
key map, and the ``preprocessor_config.json`` of transformers' ``ConvNextImageProcessor`` (resize the shortest
edge to ``floor(size / crop_pct)``, center crop ``size``, rescale, normalize), which is timm's eval transform for
``crop_mode="center"`` below 384 px.

transformers is an optional dependency (``pip install 'hubui[transformers]'``); this module imports it (and timm)
lazily.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from hubui.errors import InvalidInputError, NotConvertibleError
from hubui.libraries.base import FolderFiles
from hubui.libraries.transformers_map import (
    TransformersPlan,
    check_key_map,
    hf_key_names,
    refuse,
    resnet_plan,
    vit_plan,
)
from hubui.spec import LoadedModel, ModelSpec

TARGETS: tuple[str, ...] = ("native", "transformers")
"""Conversion targets: ``native`` writes the library's own format, ``transformers`` a transformers model."""
INSTALL_HINT = (
    "Install it with: pip install 'hubui[transformers]', or run bash scripts/start.sh with HUBUI_EXTRAS unset "
    "(it installs that extra)"
)
CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"  # the shards' index, as transformers names it
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
PREPROCESSOR_NAME = "preprocessor_config.json"
FILES = FolderFiles(CONFIG_NAME, SAFE_WEIGHTS_NAME, PICKLE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
"""The files of a transformers folder (``preprocessor_config.json`` is written with the config); weights over
``ExportOptions.max_shard_size`` become ``model-0000k-of-0000n.safetensors`` shards and the index."""
_CONVERTIBLE_FAMILIES = ("resnet", "vit_")
PIL_RESAMPLE = {"nearest": 0, "bilinear": 2, "bicubic": 3}


# --- availability --------------------------------------------------------------------------------------
def transformers_available() -> bool:
    """Whether transformers is installed (the ``transformers`` target needs it).

    Looked up, not imported: the CLI asks while it builds its parser, and importing transformers there would
    cost seconds and import huggingface_hub before ``hubui demo`` has pointed it at the embedded Hub.
    """
    return importlib.util.find_spec("transformers") is not None


def available_targets() -> tuple[str, ...]:
    """The conversion targets this installation offers: ``native``, plus ``transformers`` when installed."""
    return TARGETS if transformers_available() else ("native",)


def check_target(target: str) -> str:
    """Validate a conversion target name.

    Args:
        target: ``"native"`` or ``"transformers"``.

    Returns:
        ``target``.

    Raises:
        InvalidInputError: An unknown target, or ``transformers`` without transformers installed.
    """
    if target not in TARGETS:
        raise InvalidInputError(f"Unknown conversion target {target!r}", hint=f"Use one of: {', '.join(TARGETS)}.")
    if target == "transformers" and not transformers_available():
        raise InvalidInputError(
            "The transformers target needs the transformers package, which is not installed", hint=INSTALL_HINT
        )
    return target


def check_convertible_name(spec: ModelSpec) -> None:
    """Refuse, before anything is loaded, a model that cannot be a transformers model whatever its weights.

    Args:
        spec: The model asked for.

    Raises:
        NotConvertibleError: Not a timm model, or not of a family transformers can express (ResNet, ViT).
    """
    arch = spec.architecture.split(".")[0]
    if spec.library != "timm":
        raise NotConvertibleError(
            f"{spec.library} model {spec.architecture!r} is not convertible to transformers",
            hint="The transformers target takes timm ResNets and ViTs; use the native target for this model.",
        )
    if not arch.startswith(_CONVERTIBLE_FAMILIES):
        raise NotConvertibleError(
            f"timm {arch!r} is not convertible to transformers: only ResNets (resnet18...resnet152) and "
            "vit_*_patch16_224 ViTs map onto transformers' image-classification models",
            hint="Use the native target for this model.",
        )


def _label_names(loaded: LoadedModel, num_classes: int) -> list[str] | None:
    if loaded.label_names and len(loaded.label_names) == num_classes:
        return list(loaded.label_names)
    try:  # timm knows the ImageNet labels of the models trained on it
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(loaded.pretrained_cfg) or infer_imagenet_subset(loaded.model)
        if subset:
            names = list(ImageNetInfo(subset).label_descriptions())
            return names if len(names) == num_classes else None
    except (ImportError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def preprocessor_config(data_config: dict[str, Any], architecture: str = "") -> dict[str, Any]:
    """The ``preprocessor_config.json`` that reproduces timm's eval transform with transformers'
    ``ConvNextImageProcessor``.

    Args:
        data_config: timm's data config (``input_size``, ``interpolation``, ``mean``, ``std``, ``crop_pct``,
            ``crop_mode``).
        architecture: For messages.

    Returns:
        The processor config.

    Raises:
        NotConvertibleError: A transform transformers' processor cannot express (non-square input, 384 px or
            more, a crop mode other than ``center``, an unsupported interpolation).
    """
    _, h, w = (int(v) for v in data_config["input_size"])
    crop_mode = data_config.get("crop_mode") or "center"
    interp = data_config.get("interpolation") or "bilinear"
    crop_pct = float(data_config.get("crop_pct") or 0.875)
    if h != w or h >= 384:
        raise refuse(
            architecture,
            f"its input size {h}x{w} is not square below 384 px, the only size "
            "transformers' ConvNextImageProcessor resizes and crops like timm",
        )
    if crop_mode != "center":
        raise refuse(architecture, f"its crop mode {crop_mode!r} is not 'center'")
    if interp not in PIL_RESAMPLE:
        raise refuse(architecture, f"its interpolation {interp!r} is not one of {sorted(PIL_RESAMPLE)}")
    if math.floor(h / crop_pct) != int(h / crop_pct):  # pragma: no cover - equal for positive values
        raise refuse(architecture, f"crop_pct {crop_pct} resizes differently in timm and transformers")
    return {
        "image_processor_type": "ConvNextImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": h},
        "crop_pct": crop_pct,
        "resample": PIL_RESAMPLE[interp],
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [float(v) for v in data_config["mean"]],
        "image_std": [float(v) for v in data_config["std"]],
    }


def plan_transformers(loaded: LoadedModel) -> TransformersPlan:
    """Check that ``loaded`` converts to transformers and decide how: config, key map, image processor.

    Nothing is written and no transformers model is allocated (its shapes come from the meta device).

    Args:
        loaded: A timm model.

    Returns:
        The plan.

    Raises:
        NotConvertibleError: The model (or its preprocessing) is one transformers cannot express, or the key
            map leaves a tensor unused on either side or pairs tensors of different shapes.
        InvalidInputError: transformers is not installed.
    """
    check_target("transformers")
    check_convertible_name(loaded.spec)
    arch = loaded.spec.architecture
    model: Any = loaded.model
    kind = type(model).__name__
    if kind == "ResNet":
        model_type, (config, pairs) = "resnet", resnet_plan(arch, model)
    elif kind == "VisionTransformer":
        model_type, (config, pairs) = "vit", vit_plan(arch, model)
    else:
        raise refuse(arch, f"its timm class {kind} has no transformers counterpart")
    num_classes = int(model.num_classes)
    labels = _label_names(loaded, num_classes)
    id2label = (
        {str(i): name for i, name in enumerate(labels)}
        if labels
        else {str(i): f"LABEL_{i}" for i in range(num_classes)}
    )
    label2id: dict[str, int] = {}
    for i, name in id2label.items():
        label2id.setdefault(name, int(i))  # ImageNet repeats a few descriptions ("crane"); the first wins
    config.update(num_labels=num_classes, id2label=id2label, label2id=label2id)
    check_key_map(arch, model, pairs, hf_key_names(model_type, config))
    preprocessor = preprocessor_config(loaded.data_config, arch)
    tag = loaded.spec.pretrained
    base = f"timm/{arch}.{tag}" if tag and "/" not in tag else None
    return TransformersPlan(model_type, config, tuple(pairs), preprocessor, base)


__all__ = [
    "CONFIG_NAME",
    "FILES",
    "INSTALL_HINT",
    "PICKLE_WEIGHTS_NAME",
    "PIL_RESAMPLE",
    "PREPROCESSOR_NAME",
    "SAFE_WEIGHTS_INDEX_NAME",
    "SAFE_WEIGHTS_NAME",
    "TARGETS",
    "available_targets",
    "check_convertible_name",
    "check_target",
    "plan_transformers",
    "preprocessor_config",
    "transformers_available",
]
