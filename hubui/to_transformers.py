"""The ``transformers`` conversion target: timm ResNets and ViTs as transformers models.

A timm model whose topology transformers' ``ResNetForImageClassification`` or ``ViTForImageClassification``
can express is written as a transformers folder (``config.json``, ``model.safetensors``,
``preprocessor_config.json``) that ``AutoModelForImageClassification.from_pretrained`` and
``AutoImageProcessor.from_pretrained`` load, then checked against the timm original like any other export.

How the weights are mapped: by structure. :func:`plan_transformers` first checks, module by module, that the timm
model is one transformers can express (a plain 7x7 stem, Basic/Bottleneck blocks without attention, anti-aliasing
or grouped convs, 1x1 shortcuts; a class-token ViT with fused qkv, no layer scale, no register tokens...). It then
pairs every timm module with its transformers counterpart in forward order and expands the pairs into tensors:
``(transformers key, timm key, chunk)``, where ``chunk`` picks one third of timm's fused ``qkv`` for the
separate query/key/value projections. The plan is checked against the state dict of a transformers model
built from the derived config (on the meta device, so nothing is allocated): every transformers tensor is filled
exactly once with a tensor of its shape, and every timm tensor (every third of a fused one) is used exactly once.
A leftover on either side is a :class:`~hubui.errors.NotConvertibleError`, raised before any file is written.

The image processor is transformers' ``ConvNextImageProcessor`` (resize the shortest edge to
``floor(size / crop_pct)``, center crop ``size``, rescale, normalize), which is timm's eval transform for
``crop_mode="center"`` below 384 px. One difference remains and is measured, not hidden: transformers floors
the center-crop offset while torchvision (timm) rounds half to even, so when the resized image overshoots the
crop by an odd number of pixels ``2k + 1`` with ``k`` odd the two crops sit one pixel apart.
:func:`check_preprocessing` compares the processor with timm's transform on the parity images, and explains each
image that differs by re-cropping timm's resized image at transformers' offset: an image whose only difference
is that offset is recorded as ``crop_offset``; anything else beyond two 8-bit levels fails the verdict.

transformers is an optional dependency (``pip install 'hubui[transformers]'``); this module imports it lazily.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch

from hubui.errors import (
    CheckpointMismatchError,
    HubUnreachableError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
    NotConvertibleError,
)
from hubui.export import (
    CONFIG_NAME,
    HUBUI_CONFIG_KEY,
    PICKLE_WEIGHTS_NAME,
    SAFE_WEIGHTS_NAME,
    ExportResult,
    check_precision,
    staged_folder,
)
from hubui.outdir import check_out_dir, export_files
from hubui.spec import LoadedModel, ModelSpec

logger = logging.getLogger(__name__)

TRANSFORMERS_PARITY_BATCH = 4
"""The parity batch size of the transformers target when none is given (see :func:`iter_transformers_parity`)."""

TARGETS: tuple[str, ...] = ("native", "transformers")
"""Conversion targets: ``native`` writes the library's own format, ``transformers`` a transformers model."""
INSTALL_HINT = "Install it with: pip install 'hubui[transformers]'"
PREPROCESSOR_NAME = "preprocessor_config.json"
PREPROCESSING_LEVELS = 2
"""The preprocessing check allows this many 8-bit levels per pixel: torchvision's and PIL's resamplers round
differently by one level, two on noise images; a wrong mean, std, size or interpolation moves far more."""
_CONVERTIBLE_FAMILIES = ("resnet", "vit_")
_PIL_RESAMPLE = {"nearest": 0, "bilinear": 2, "bicubic": 3}


# --- availability --------------------------------------------------------------------------------------
def transformers_available() -> bool:
    """Whether transformers can be imported (the ``transformers`` target needs it)."""
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


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


# --- structure checks and the key map ------------------------------------------------------------------
@dataclass(frozen=True)
class TransformersPlan:
    """How one timm model becomes a transformers model, decided before anything is written.

    Args:
        model_type: ``"resnet"`` or ``"vit"``.
        config: The transformers config (``ResNetConfig`` / ``ViTConfig`` keyword arguments, labels included).
        key_map: ``(transformers key, timm key, chunk)``; ``chunk`` is ``None`` or the index of the third of
            a fused ``qkv`` tensor.
        preprocessor: The ``preprocessor_config.json`` content.
        base_model: The timm repo the weights came from (``timm/<arch>.<tag>``), when from a pretrained tag.
    """

    model_type: str
    config: dict[str, Any]
    key_map: tuple[tuple[str, str, int | None], ...]
    preprocessor: dict[str, Any]
    base_model: str | None = None


def _refuse(arch: str, why: str) -> NotConvertibleError:
    return NotConvertibleError(
        f"timm {arch!r} is not convertible to transformers: {why}",
        hint="Use the native target for this model (transformers cannot express this topology).",
    )


def _module_pairs(prefix_hf: str, prefix_timm: str, module: torch.nn.Module) -> list[tuple[str, str, int | None]]:
    """Every tensor of ``module`` (a leaf the two libraries share: Conv2d, BatchNorm2d, Linear, LayerNorm)."""
    return [(f"{prefix_hf}.{k}", f"{prefix_timm}.{k}", None) for k in module.state_dict()]


def _is_type(module: Any, name: str) -> bool:
    return type(module).__name__ == name


def _resnet_plan(arch: str, model: Any) -> tuple[dict[str, Any], list[tuple[str, str, int | None]]]:
    nn = torch.nn
    if not isinstance(getattr(model, "conv1", None), nn.Conv2d):
        raise _refuse(arch, "its stem is not a single 7x7 convolution (deep stems, e.g. resnet*d / *t, are not)")
    conv1 = model.conv1
    if conv1.kernel_size != (7, 7) or conv1.stride != (2, 2) or conv1.padding != (3, 3) or conv1.bias is not None:
        raise _refuse(arch, f"its stem convolution is {conv1}, transformers' is 7x7 stride 2 padding 3, no bias")
    if not _is_type(getattr(model, "maxpool", None), "MaxPool2d"):
        raise _refuse(arch, "its stem does not end in a 3x3 stride-2 max pool")
    mp = model.maxpool
    if (mp.kernel_size, mp.stride, mp.padding) not in ((3, 2, 1), ((3, 3), (2, 2), (1, 1))):
        raise _refuse(arch, f"its stem pool is {mp}, transformers' is MaxPool2d(3, 2, 1)")
    pool = getattr(model, "global_pool", None)
    if getattr(pool, "pool_type", None) != "avg" or not isinstance(getattr(model, "fc", None), nn.Linear):
        raise _refuse(arch, "it has no average pool and linear classifier (num_classes=0 or another head)")
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d) and (m.eps != 1e-5 or not m.affine or not m.track_running_stats):
            raise _refuse(arch, f"{name} is a BatchNorm2d with eps {m.eps}; transformers' ResNet uses 1e-5")
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1)):
            raise _refuse(arch, f"{name} is a grouped or dilated convolution (ResNeXt / output_stride)")
        if _is_type(m, "ReLU") or isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.Identity, nn.MaxPool2d)):
            continue
        if isinstance(m, nn.Sequential) or _is_type(m, "SelectAdaptivePool2d") or _is_type(m, "AdaptiveAvgPool2d"):
            continue
        if _is_type(m, "Flatten") or m is model or _is_type(m, "BasicBlock") or _is_type(m, "Bottleneck"):
            continue
        raise _refuse(
            arch,
            f"{name or 'the model'} is a {type(m).__name__} (attention, anti-aliasing, avg-down "
            "shortcuts and other activations have no transformers ResNet counterpart)",
        )
    pairs = _module_pairs("resnet.embedder.embedder.convolution", "conv1", conv1)
    pairs += _module_pairs("resnet.embedder.embedder.normalization", "bn1", model.bn1)
    block_types: set[str] = set()
    depths: list[int] = []
    hidden: list[int] = []
    in_ch = conv1.out_channels
    for s in range(4):
        stage = getattr(model, f"layer{s + 1}", None)
        if not isinstance(stage, nn.Sequential) or len(stage) == 0:
            raise _refuse(arch, f"it has no layer{s + 1} of blocks")
        depths.append(len(stage))
        block: Any
        for b, block in enumerate(stage):
            kind = type(block).__name__
            block_types.add(kind)
            stride = 2 if (s > 0 and b == 0) else 1
            convs = ["conv1", "conv2"] + (["conv3"] if kind == "Bottleneck" else [])
            out_ch = getattr(block, convs[-1]).out_channels
            if kind == "Bottleneck":
                c1, c2, c3 = block.conv1, block.conv2, block.conv3
                if c1.out_channels != out_ch // 4 or c2.out_channels != out_ch // 4 or c2.stride != (stride, stride):
                    raise _refuse(
                        arch,
                        f"layer{s + 1}.{b} is not a bottleneck of width out/4 with the stride on its "
                        "3x3 conv (wide ResNets, ResNeXts and stride-on-1x1 variants are not)",
                    )
                if c1.kernel_size != (1, 1) or c2.kernel_size != (3, 3) or c3.kernel_size != (1, 1):
                    raise _refuse(arch, f"layer{s + 1}.{b} does not have 1x1, 3x3, 1x1 convolutions")
            else:
                c1, c2 = block.conv1, block.conv2
                if c1.out_channels != out_ch or c1.stride != (stride, stride) or c1.kernel_size != (3, 3):
                    raise _refuse(arch, f"layer{s + 1}.{b} is not a basic block of two 3x3 convolutions")
            for i, conv in enumerate(convs):
                hf = f"resnet.encoder.stages.{s}.layers.{b}.layer.{i}"
                pairs += _module_pairs(f"{hf}.convolution", f"layer{s + 1}.{b}.{conv}", getattr(block, conv))
                bn = getattr(block, f"bn{i + 1}")
                pairs += _module_pairs(f"{hf}.normalization", f"layer{s + 1}.{b}.bn{i + 1}", bn)
            down = getattr(block, "downsample", None)
            needs_shortcut = in_ch != out_ch or stride != 1
            if down is None and needs_shortcut:
                raise _refuse(arch, f"layer{s + 1}.{b} changes shape without a shortcut convolution")
            if down is not None:
                ok = (
                    isinstance(down, nn.Sequential)
                    and len(down) == 2
                    and isinstance(down[0], nn.Conv2d)
                    and down[0].kernel_size == (1, 1)
                    and down[0].stride == (stride, stride)
                )
                if not ok or not needs_shortcut:
                    raise _refuse(
                        arch,
                        f"layer{s + 1}.{b}.downsample is not a strided 1x1 convolution and norm "
                        "(avg-down shortcuts, e.g. resnet*d, are not)",
                    )
                hf = f"resnet.encoder.stages.{s}.layers.{b}.shortcut"
                pairs += _module_pairs(f"{hf}.convolution", f"layer{s + 1}.{b}.downsample.0", down[0])
                pairs += _module_pairs(f"{hf}.normalization", f"layer{s + 1}.{b}.downsample.1", down[1])
            in_ch = out_ch
        hidden.append(in_ch)
    if len(block_types) != 1:
        raise _refuse(arch, f"it mixes block types {sorted(block_types)}")
    if getattr(model, "layer5", None) is not None:
        raise _refuse(arch, "it has more than four stages")
    pairs += _module_pairs("classifier.1", "fc", model.fc)
    config = {
        "num_channels": conv1.in_channels,
        "embedding_size": conv1.out_channels,
        "hidden_sizes": hidden,
        "depths": depths,
        "layer_type": "bottleneck" if block_types == {"Bottleneck"} else "basic",
        "hidden_act": "relu",
        "downsample_in_first_stage": False,
        "downsample_in_bottleneck": False,  # timm strides the 3x3 conv of a bottleneck
    }
    return config, pairs


def _vit_plan(arch: str, model: Any) -> tuple[dict[str, Any], list[tuple[str, str, int | None]]]:
    nn = torch.nn
    if getattr(model, "global_pool", None) != "token" or getattr(model, "cls_token", None) is None:
        raise _refuse(arch, "it does not classify from a class token (global_pool must be 'token')")
    if getattr(model, "num_prefix_tokens", 1) != 1 or getattr(model, "reg_token", None) is not None:
        raise _refuse(arch, "it has register tokens")
    if getattr(model, "no_embed_class", False) or getattr(model, "pos_embed", None) is None:
        raise _refuse(arch, "its position embedding does not cover the class token")
    if getattr(model, "dynamic_img_size", False) or getattr(model, "attn_pool", None) is not None:
        raise _refuse(arch, "it uses dynamic image sizes or attention pooling")
    pe = model.patch_embed
    proj = getattr(pe, "proj", None)
    if not isinstance(proj, nn.Conv2d) or proj.bias is None or proj.kernel_size != proj.stride:
        raise _refuse(arch, "its patch embedding is not one strided convolution with bias")
    if not isinstance(getattr(pe, "norm", nn.Identity()), nn.Identity):
        raise _refuse(arch, "its patch embedding is normalized")
    for name in ("norm_pre", "fc_norm"):
        if not isinstance(getattr(model, name, nn.Identity()), nn.Identity):
            raise _refuse(arch, f"it has a {name} layer (transformers' ViT has none)")
    if not isinstance(getattr(model, "norm", None), nn.LayerNorm) or not isinstance(model.head, nn.Linear):
        raise _refuse(arch, "it has no final LayerNorm and linear head")
    eps = model.norm.eps
    img = pe.img_size
    if img[0] != img[1] or proj.kernel_size[0] != proj.kernel_size[1]:
        raise _refuse(arch, "its image or patches are not square")
    dim = proj.out_channels
    heads = None
    mlp_dim = None
    pairs: list[tuple[str, str, int | None]] = [
        ("vit.embeddings.cls_token", "cls_token", None),
        ("vit.embeddings.position_embeddings", "pos_embed", None),
    ]
    pairs += _module_pairs("vit.embeddings.patch_embeddings.projection", "patch_embed.proj", proj)
    for i, blk in enumerate(model.blocks):
        if not _is_type(blk, "Block"):
            raise _refuse(arch, f"blocks.{i} is a {type(blk).__name__}, not a standard pre-norm block")
        attn, mlp = blk.attn, blk.mlp
        for part in ("ls1", "ls2", "drop_path1", "drop_path2"):
            m = getattr(blk, part, None)
            if m is not None and not isinstance(m, nn.Identity) and not _is_type(m, "DropPath"):
                raise _refuse(arch, f"blocks.{i}.{part} is a {type(m).__name__} (layer scale has no counterpart)")
        for part in ("q_norm", "k_norm", "norm"):
            if not isinstance(getattr(attn, part, nn.Identity()), nn.Identity):
                raise _refuse(arch, f"blocks.{i}.attn.{part} normalizes queries/keys or attention output")
        qkv = getattr(attn, "qkv", None)
        if not isinstance(qkv, nn.Linear) or qkv.bias is None:
            raise _refuse(arch, f"blocks.{i}.attn has no fused qkv projection with bias")
        if not _is_type(mlp, "Mlp") or not isinstance(getattr(mlp, "act", None), nn.GELU):
            raise _refuse(arch, f"blocks.{i}.mlp is not a GELU MLP")
        if mlp.act.approximate != "none" or not isinstance(getattr(mlp, "norm", nn.Identity()), nn.Identity):
            raise _refuse(arch, f"blocks.{i}.mlp uses tanh-GELU or an inner norm")
        for norm in (blk.norm1, blk.norm2):
            if not isinstance(norm, nn.LayerNorm) or norm.eps != eps:
                raise _refuse(arch, f"blocks.{i} norms are not LayerNorms with eps {eps}")
        heads, mlp_dim = attn.num_heads, mlp.fc1.out_features
        hf = f"vit.layers.{i}"
        pairs += _module_pairs(f"{hf}.layernorm_before", f"blocks.{i}.norm1", blk.norm1)
        for c, proj_name in enumerate(("q_proj", "k_proj", "v_proj")):
            for k in ("weight", "bias"):
                pairs.append((f"{hf}.attention.{proj_name}.{k}", f"blocks.{i}.attn.qkv.{k}", c))
        pairs += _module_pairs(f"{hf}.attention.o_proj", f"blocks.{i}.attn.proj", attn.proj)
        pairs += _module_pairs(f"{hf}.layernorm_after", f"blocks.{i}.norm2", blk.norm2)
        pairs += _module_pairs(f"{hf}.mlp.fc1", f"blocks.{i}.mlp.fc1", mlp.fc1)
        pairs += _module_pairs(f"{hf}.mlp.fc2", f"blocks.{i}.mlp.fc2", mlp.fc2)
    if heads is None or mlp_dim is None:
        raise _refuse(arch, "it has no transformer blocks")
    pairs += _module_pairs("vit.layernorm", "norm", model.norm)
    pairs += _module_pairs("classifier", "head", model.head)
    config = {
        "hidden_size": dim,
        "num_hidden_layers": len(model.blocks),
        "num_attention_heads": heads,
        "intermediate_size": mlp_dim,
        "hidden_act": "gelu",
        "layer_norm_eps": eps,
        "image_size": img[0],
        "patch_size": proj.kernel_size[0],
        "num_channels": proj.in_channels,
        "qkv_bias": True,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }
    return config, pairs


def _hf_key_names(model_type: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The state dict (name to shape) of the transformers model for ``config``, built on the meta device."""
    from transformers import ResNetConfig, ResNetForImageClassification, ViTConfig, ViTForImageClassification

    cls: Any
    cfg_cls: Any
    cls, cfg_cls = (
        (ResNetForImageClassification, ResNetConfig)
        if model_type == "resnet"
        else (ViTForImageClassification, ViTConfig)
    )
    with torch.device("meta"):
        model = cls(cfg_cls(**config))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


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
        raise _refuse(
            architecture,
            f"its input size {h}x{w} is not square below 384 px, the only size "
            "transformers' ConvNextImageProcessor resizes and crops like timm",
        )
    if crop_mode != "center":
        raise _refuse(architecture, f"its crop mode {crop_mode!r} is not 'center'")
    if interp not in _PIL_RESAMPLE:
        raise _refuse(architecture, f"its interpolation {interp!r} is not one of {sorted(_PIL_RESAMPLE)}")
    if math.floor(h / crop_pct) != int(h / crop_pct):  # pragma: no cover - equal for positive values
        raise _refuse(architecture, f"crop_pct {crop_pct} resizes differently in timm and transformers")
    return {
        "image_processor_type": "ConvNextImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": h},
        "crop_pct": crop_pct,
        "resample": _PIL_RESAMPLE[interp],
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
        model_type, (config, pairs) = "resnet", _resnet_plan(arch, model)
    elif kind == "VisionTransformer":
        model_type, (config, pairs) = "vit", _vit_plan(arch, model)
    else:
        raise _refuse(arch, f"its timm class {kind} has no transformers counterpart")
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
    _check_key_map(arch, model, pairs, _hf_key_names(model_type, config))
    preprocessor = preprocessor_config(loaded.data_config, arch)
    tag = loaded.spec.pretrained
    base = f"timm/{arch}.{tag}" if tag and "/" not in tag else None
    return TransformersPlan(model_type, config, tuple(pairs), preprocessor, base)


def _check_key_map(
    arch: str, model: torch.nn.Module, pairs: list[tuple[str, str, int | None]], hf_shapes: dict[str, tuple[int, ...]]
) -> None:
    source = model.state_dict()
    filled: dict[str, int] = {}
    used: dict[str, set[int | None]] = {}
    problems: list[str] = []
    for hf_key, timm_key, chunk in pairs:
        filled[hf_key] = filled.get(hf_key, 0) + 1
        chunks = used.setdefault(timm_key, set())
        if chunk in chunks:
            problems.append(f"{timm_key} used twice")
        chunks.add(chunk)
        if timm_key not in source:
            problems.append(f"{timm_key} is not a timm tensor")
            continue
        shape = tuple(source[timm_key].shape)
        if chunk is not None:
            shape = (shape[0] // 3, *shape[1:])
        if hf_key not in hf_shapes:
            problems.append(f"{hf_key} is not a transformers tensor")
        elif hf_shapes[hf_key] != shape:
            problems.append(f"{timm_key} {shape} does not fit {hf_key} {hf_shapes[hf_key]}")
    problems += [f"{k} filled {n} times" for k, n in filled.items() if n != 1]
    problems += [f"transformers tensor {k} has no timm source" for k in hf_shapes if k not in filled]
    problems += [f"timm tensor {k} is not used" for k in source if k not in used]
    problems += [f"timm tensor {k} is used only in part" for k, c in used.items() if None not in c and c != {0, 1, 2}]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise _refuse(arch, "the weight mapping does not cover both models exactly: " + "; ".join(problems[:5]) + more)


def mapped_state_dict(loaded: LoadedModel, plan: TransformersPlan) -> dict[str, torch.Tensor]:
    """The timm weights under their transformers names (fused ``qkv`` split into thirds), sharing storage where
    a tensor is used whole.

    Args:
        loaded: The timm model.
        plan: Its :func:`plan_transformers` plan.

    Returns:
        Transformers key to tensor (CPU, detached).
    """
    source = loaded.model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for hf_key, timm_key, chunk in plan.key_map:
        t = source[timm_key].detach()
        out[hf_key] = t if chunk is None else t.chunk(3, dim=0)[chunk]
    return out


class _MappedWeights(torch.nn.Module):
    """A stand-in whose ``state_dict()`` is the mapped timm weights, for the tensor-by-tensor weights check."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._tensors = tensors

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return dict(self._tensors)


class TransformersLogits(torch.nn.Module):
    """A transformers image classifier called like a timm model: ``module(pixels)`` returns the logits.

    Its ``state_dict()`` is the wrapped model's, so the weights check reads transformers' own names.

    Args:
        model: A ``*ForImageClassification`` model.
        processor: The image processor loaded with it (``AutoImageProcessor``), when known.
    """

    def __init__(self, model: torch.nn.Module, processor: Any = None) -> None:
        super().__init__()
        self.model = model
        self.processor = processor

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).logits  # type: ignore[no-any-return]

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return self.model.state_dict(*args, **kwargs)  # type: ignore[no-any-return]


# --- export ---------------------------------------------------------------------------------------------
def export_transformers(
    loaded: LoadedModel,
    out_dir: str | Path,
    precision: str = "fp32",
    include_pytorch_bin: bool = False,
    overwrite: bool = False,
    *,
    plan: TransformersPlan | None = None,
) -> ExportResult:
    """Write ``loaded`` as a transformers folder: ``config.json``, ``model.safetensors``,
    ``preprocessor_config.json``.

    The plan (and so every refusal) comes before the output folder is created; the folder is staged and renamed
    into place only when complete.

    Args:
        loaded: A timm model.
        out_dir: The folder to create (must not exist or be empty, unless ``overwrite`` and it holds an earlier
            hubui export: see :mod:`hubui.outdir`).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``; recorded under ``config.json["hubui"]``.
        include_pytorch_bin: Also write ``pytorch_model.bin``.
        overwrite: Replace an earlier hubui export in ``out_dir``; a folder holding anything else is refused.
        plan: A plan made already by :func:`plan_transformers`.

    Returns:
        The export, with ``library == "transformers"``.

    Raises:
        NotConvertibleError: The model cannot be expressed in transformers.
        ExportError: ``out_dir`` is not empty (or, with ``overwrite``, not an earlier export), or writing failed
            (nothing is left at ``out_dir`` then).
        InvalidInputError: Unknown precision, or transformers is not installed.
    """
    dtype = check_precision(precision)
    plan = plan or plan_transformers(loaded)
    out = check_out_dir(out_dir, overwrite)
    import safetensors.torch
    from transformers import ResNetConfig, ViTConfig

    from hubui import __version__

    cfg_cls: Any = ResNetConfig if plan.model_type == "resnet" else ViTConfig
    config = cfg_cls(**plan.config)
    config.architectures = [
        "ResNetForImageClassification" if plan.model_type == "resnet" else "ViTForImageClassification"
    ]
    config.dtype = str(dtype).removeprefix("torch.")
    setattr(
        config,
        HUBUI_CONFIG_KEY,
        {  # transformers keeps unknown config keys and ignores them
            "precision": precision,
            "version": __version__,
            "target": "transformers",
            "source_library": "timm",
            "architecture": loaded.spec.architecture,
            "base_model": plan.base_model,
        },
    )
    tensors = {}
    for k, t in mapped_state_dict(loaded, plan).items():
        t = t.to(dtype) if t.is_floating_point() else t
        tensors[k] = t.to("cpu").contiguous().clone()
    with staged_folder(out) as staging:
        safetensors.torch.save_file(
            tensors,
            str(staging / SAFE_WEIGHTS_NAME),
            metadata={"format": "pt", "hubui_precision": precision, "hubui_version": __version__},
        )
        if include_pytorch_bin:
            torch.save(tensors, staging / PICKLE_WEIGHTS_NAME)
        config.to_json_file(str(staging / CONFIG_NAME))
        (staging / PREPROCESSOR_NAME).write_text(json.dumps(plan.preprocessor, indent=2) + "\n", encoding="utf-8")
    written = json.loads((out / CONFIG_NAME).read_text(encoding="utf-8"))
    files = export_files(out)
    logger.info("exported %s to transformers (%s) in %s", loaded.spec.architecture, precision, out)
    return ExportResult(folder=out, files=files, precision=precision, library="transformers", config=written)


def is_transformers_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds a transformers export (a ``config.json`` with a ``model_type``)."""
    path = Path(folder) / CONFIG_NAME
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "model_type" in cfg and "architecture" not in cfg


# --- rebuild --------------------------------------------------------------------------------------------
def load_transformers(
    name: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    token: str | None = None,
) -> TransformersLogits:
    """``AutoModelForImageClassification.from_pretrained`` and ``AutoImageProcessor.from_pretrained`` of a folder
    or a Hub repo, wrapped so that parity calls it like a timm model (fp32, eval mode).

    Args:
        name: A folder, or a repo id ``owner/name`` (on ``HF_ENDPOINT``).
        revision: A branch, tag or commit (repos only).
        cache_dir: Hugging Face cache folder.
        token: For private repos; otherwise ``HF_TOKEN`` / the login cache.

    Returns:
        The model, with its processor as ``.processor``.

    Raises:
        InvalidInputError: transformers is not installed.
        ModelNotFoundError: No such repo, revision or file.
        HubUnreachableError: The Hub could not be reached.
        CheckpointMismatchError: The weights do not fit the config (missing, unexpected or resized tensors).
        ModelError: transformers could not build the model for another reason.
    """
    check_target("transformers")
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    where = str(name) + (f"@{revision}" if revision else "")
    kwargs: dict[str, Any] = {"revision": revision, "cache_dir": str(cache_dir) if cache_dir else None}
    if token:
        kwargs["token"] = token
    try:
        model, info = AutoModelForImageClassification.from_pretrained(
            str(name), output_loading_info=True, dtype=torch.float32, **kwargs
        )
        processor = AutoImageProcessor.from_pretrained(str(name), **kwargs)
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise ModelNotFoundError(
            f"{where!r} has no transformers model there: {exc}", hint="Check the repo id and revision."
        ) from exc
    except HfHubHTTPError as exc:
        raise HubUnreachableError(f"Could not download {where!r}: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(f"transformers could not rebuild {where!r}: {exc}") from exc
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise CheckpointMismatchError(f"The weights in {where!r} don't fit their config: {bad}")
    return TransformersLogits(model.float().eval(), processor).eval()


# --- parity ---------------------------------------------------------------------------------------------
def transformers_tolerance(precision: str) -> Any:
    """The parity tolerance of the transformers target: the precision's preset, with fp32 relaxed to
    ``max_abs_diff <= 1e-5`` (or ``max_rel_diff <= 1e-6``), because transformers computes the same network with
    other kernels (its own attention, a separate classifier ``Flatten``) and so rounds float32 sums in another
    order. The weights must still be bit-identical and top-1 must agree on every input.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.

    Returns:
        A :class:`~hubui.parity.Tolerance`.
    """
    from hubui.parity import tolerance_preset

    preset = tolerance_preset(precision)
    if precision != "fp32":
        return preset
    return replace(preset, max_abs_diff=1e-5, max_rel_diff=1e-6, cosine_min=0.99999)


def check_preprocessing(data_config: dict[str, Any], processor: Any, images: Sequence[Any] = ()) -> dict[str, Any]:
    """Compare the image processor with timm's eval transform on the parity images.

    Args:
        data_config: timm's data config.
        processor: The ``AutoImageProcessor`` loaded from the export.
        images: The user's extra images (paths or PIL images), after the shipped and synthetic ones.

    Returns:
        ``{"processor", "images", "max_abs_diff", "mean_abs_diff", "tolerance", "matching", "crop_offset",
        "differs", "passed"}``: differences in normalized pixel units; ``crop_offset`` names the images whose
        only difference is transformers' center-crop rounding (one pixel), ``differs`` those that fail.
    """
    from torchvision.transforms import CenterCrop

    from hubui.parity.adapters import _timm_transform
    from hubui.parity.inputs import load_image, real_image_paths, synthetic_images

    named = [load_image(p) for p in real_image_paths()] + synthetic_images(4) + [load_image(i) for i in images]
    timm_tf = _timm_transform(data_config)
    steps = list(getattr(timm_tf, "transforms", []))
    tol = PREPROCESSING_LEVELS / 255 / min(float(s) for s in data_config["std"]) + 1e-6
    worst, total, count = 0.0, 0.0, 0
    matching: list[str] = []
    crop_offset: list[str] = []
    differs: list[str] = []
    for name, img in named:
        ref = timm_tf(img)
        got = processor(images=[img], return_tensors="pt")["pixel_values"][0].float()
        if got.shape != ref.shape:
            differs.append(f"{name} (shape {tuple(got.shape)} vs {tuple(ref.shape)})")
            continue
        diff = (got - ref).abs()
        worst, total, count = max(worst, float(diff.max())), total + float(diff.sum()), count + diff.numel()
        if float(diff.max()) <= tol:
            matching.append(name)
            continue
        # Re-crop timm's resized image at transformers' floored offset: same pixels then means only the offset.
        crops = [i for i, s in enumerate(steps) if isinstance(s, CenterCrop)]
        if crops:
            x = img
            for s in steps[: crops[0]]:
                x = s(x)
            th, tw = (int(v) for v in data_config["input_size"][-2:])
            top, left = (x.height - th) // 2, (x.width - tw) // 2
            x = x.crop((left, top, left + tw, top + th))
            for s in steps[crops[0] + 1 :]:
                x = s(x)
            if float((got - x).abs().max()) <= tol:
                crop_offset.append(name)
                continue
        differs.append(name)
    return {
        "processor": type(processor).__name__,
        "images": len(named),
        "max_abs_diff": worst,
        "mean_abs_diff": total / max(count, 1),
        "tolerance": tol,
        "matching": len(matching),
        "crop_offset": crop_offset,
        "differs": differs,
        "passed": not differs,
    }


def iter_transformers_parity(
    original: LoadedModel,
    rebuilt: TransformersLogits,
    precision: str,
    tolerance: Any = None,
    images: Sequence[Any] = (),
    batch_size: int | None = None,
    cancel: threading.Event | None = None,
    folder: str | Path | None = None,
) -> Iterator[Any]:
    """Parity of a transformers export against its timm original: logits on the parity inputs, the saved
    weights through the key map, and the image processor against timm's transform.

    When ``original`` is itself a transformers model (``spec.library == "transformers"``: a folder verified
    against its own Hub copy) the weights are compared by name and the preprocessing check is skipped.

    Args:
        original: The timm model as loaded.
        rebuilt: The model :func:`load_transformers` rebuilt from the folder or the Hub.
        precision: The export precision.
        tolerance: Overrides :func:`transformers_tolerance`.
        images: Extra user images.
        batch_size: Samples per forward pass; ``None``: :data:`TRANSFORMERS_PARITY_BATCH`.
        cancel: Set it to stop between batches.
        folder: The export folder (or downloaded snapshot) whose ``model.safetensors`` is checked.

    Yields:
        :class:`~hubui.parity.ParityReport`, partial then final; the final one records ``inputs["target"]`` and
        ``inputs["preprocessing"]``.
    """
    from hubui.parity import compare_weights, iter_parity
    from hubui.parity.metrics import check_weights

    tol = tolerance or transformers_tolerance(precision)
    same_library = original.spec.library == "transformers"
    if batch_size is None:
        # Not auto_batch_size's 1: at batch 1 the timm and transformers forwards differ by float32 rounding (measured
        # 1.1e-5 abs / 4.8e-7 rel on resnet26 logits of ~20), at batch 2 and more they were bit-identical in our runs.
        batch_size = TRANSFORMERS_PARITY_BATCH
    last = None
    for report in iter_parity(
        original, rebuilt, precision, tol, images, batch_size, cancel, folder=folder if same_library else None
    ):
        if report.status == "running":
            yield report
        last = report
    if last is None:  # pragma: no cover - iter_parity always yields a final report
        raise ModelError("Parity produced no report", "Report this as a hubui bug.")
    if last.verdict == "cancelled":
        yield last
        return
    reasons = list(last.reasons)
    weights = last.weights
    if folder is not None and not same_library:
        plan = plan_transformers(original)
        weights = compare_weights(
            _MappedWeights(mapped_state_dict(original, plan)), Path(folder) / SAFE_WEIGHTS_NAME, precision, cancel
        )
        reasons += check_weights(weights, tol)
    inputs = {**last.inputs, "target": "transformers"}
    if not same_library and rebuilt.processor is not None:
        pre = check_preprocessing(original.data_config, rebuilt.processor, images)
        inputs["preprocessing"] = pre
        if pre["differs"]:
            reasons.append(
                f"preprocessing: {pre['processor']} differs from timm's transform beyond "
                f"{PREPROCESSING_LEVELS} 8-bit levels on {', '.join(pre['differs'][:5])}"
            )
    verdict = "fail" if reasons else "pass"
    versions = {**last.versions, "transformers": _version("transformers")}
    yield replace(last, verdict=verdict, reasons=tuple(reasons), weights=weights, inputs=inputs, versions=versions)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def transformers_card_fields(fields: Any, config: dict[str, Any]) -> Any:
    """Card fields for a transformers export: ``base_model`` from the timm source when it was a pretrained tag,
    and a description saying what it was converted from (unless the user wrote one).

    Args:
        fields: The :class:`~hubui.card.CardFields` so far (library defaults applied).
        config: The export's ``config.json``.

    Returns:
        The fields, updated.
    """
    info = config.get(HUBUI_CONFIG_KEY) or {}
    arch = info.get("architecture") or "unknown"
    classes = ", ".join(f"`{c}`" for c in config.get("architectures") or []) or "a transformers model"
    base = info.get("base_model")
    changes: dict[str, Any] = {}
    if fields.base_model is None and base:
        changes["base_model"] = base
    if not fields.description:
        text = f"This model was converted from timm {arch} to transformers ({classes}) with hubui."
        if not base and fields.base_model is None:
            text += " It was not made from a pretrained timm tag, so the card names no `base_model`."
        text += (
            " Its `preprocessor_config.json` reproduces timm's resize, crop, mean and std; the one known difference is"
            " that transformers floors the centre-crop offset where timm rounds it, so some images are cropped one"
            " pixel apart (hubui's parity report counts them)."
        )
        changes["description"] = text
    return replace(fields, **changes) if changes else fields


def reference_from_transformers_folder(folder: str | Path) -> LoadedModel:
    """A transformers export folder, loaded, as the reference for verifying a push made from it."""
    model = load_transformers(Path(folder).expanduser().resolve())
    cfg = json.loads((Path(folder) / CONFIG_NAME).read_text(encoding="utf-8"))
    pre = json.loads((Path(folder) / PREPROCESSOR_NAME).read_text(encoding="utf-8"))
    size = int(pre["size"]["shortest_edge"])
    interp = {v: k for k, v in _PIL_RESAMPLE.items()}.get(int(pre.get("resample", 2)), "bilinear")
    data_config = {
        "input_size": (3, size, size),
        "mean": tuple(pre["image_mean"]),
        "std": tuple(pre["image_std"]),
        "interpolation": interp,
        "crop_pct": pre.get("crop_pct"),
        "crop_mode": "center",
    }
    arch = (cfg.get(HUBUI_CONFIG_KEY) or {}).get("architecture") or cfg.get("model_type", "unknown")
    return LoadedModel(
        ModelSpec(cast(Any, "transformers"), arch),
        model,
        {},
        data_config,
        source=f"local folder {folder}",
    )


__all__ = [
    "INSTALL_HINT",
    "PREPROCESSOR_NAME",
    "TARGETS",
    "TransformersLogits",
    "TransformersPlan",
    "available_targets",
    "check_convertible_name",
    "check_preprocessing",
    "check_target",
    "export_transformers",
    "is_transformers_folder",
    "iter_transformers_parity",
    "load_transformers",
    "mapped_state_dict",
    "plan_transformers",
    "preprocessor_config",
    "reference_from_transformers_folder",
    "transformers_available",
    "transformers_card_fields",
    "transformers_tolerance",
]
