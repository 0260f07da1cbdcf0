"""The ResNet and ViT key plans of the ``transformers`` target: which timm topologies transformers can express,
and which timm tensor fills which transformers tensor.

How the weights are mapped: by structure. The plan first checks, module by module, that the timm model is one
transformers can express (a plain 7x7 stem, Basic/Bottleneck blocks without attention, anti-aliasing or grouped
convs, 1x1 shortcuts; a class-token ViT with fused qkv, no layer scale, no register tokens...). It then pairs every
timm module with its transformers counterpart in forward order and expands the pairs into tensors:
``(transformers key, timm key, chunk)``, where ``chunk`` picks one third of timm's fused ``qkv`` for the separate
query/key/value projections. The plan is checked against the state dict of a transformers model built from the
derived config (on the meta device, so nothing is allocated): every transformers tensor is filled exactly once
with a tensor of its shape, and every timm tensor (every third of a fused one) is used exactly once. A leftover on
either side is a :class:`~hubui.errors.NotConvertibleError`, raised before any file is written.

transformers is imported only inside :func:`hf_key_names`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hubui.errors import NotConvertibleError
from hubui.spec import LoadedModel


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


def refuse(arch: str, why: str) -> NotConvertibleError:
    return NotConvertibleError(
        f"timm {arch!r} is not convertible to transformers: {why}",
        hint="Use the native target for this model (transformers cannot express this topology).",
    )


def _module_pairs(prefix_hf: str, prefix_timm: str, module: torch.nn.Module) -> list[tuple[str, str, int | None]]:
    """Every tensor of ``module`` (a leaf the two libraries share: Conv2d, BatchNorm2d, Linear, LayerNorm)."""
    return [(f"{prefix_hf}.{k}", f"{prefix_timm}.{k}", None) for k in module.state_dict()]


def _is_type(module: Any, name: str) -> bool:
    return type(module).__name__ == name


def resnet_plan(arch: str, model: Any) -> tuple[dict[str, Any], list[tuple[str, str, int | None]]]:
    nn = torch.nn
    if not isinstance(getattr(model, "conv1", None), nn.Conv2d):
        raise refuse(arch, "its stem is not a single 7x7 convolution (deep stems, e.g. resnet*d / *t, are not)")
    conv1 = model.conv1
    if conv1.kernel_size != (7, 7) or conv1.stride != (2, 2) or conv1.padding != (3, 3) or conv1.bias is not None:
        raise refuse(arch, f"its stem convolution is {conv1}, transformers' is 7x7 stride 2 padding 3, no bias")
    if not _is_type(getattr(model, "maxpool", None), "MaxPool2d"):
        raise refuse(arch, "its stem does not end in a 3x3 stride-2 max pool")
    mp = model.maxpool
    if (mp.kernel_size, mp.stride, mp.padding) not in ((3, 2, 1), ((3, 3), (2, 2), (1, 1))):
        raise refuse(arch, f"its stem pool is {mp}, transformers' is MaxPool2d(3, 2, 1)")
    pool = getattr(model, "global_pool", None)
    if getattr(pool, "pool_type", None) != "avg" or not isinstance(getattr(model, "fc", None), nn.Linear):
        raise refuse(arch, "it has no average pool and linear classifier (num_classes=0 or another head)")
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d) and (m.eps != 1e-5 or not m.affine or not m.track_running_stats):
            raise refuse(arch, f"{name} is a BatchNorm2d with eps {m.eps}; transformers' ResNet uses 1e-5")
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.dilation != (1, 1)):
            raise refuse(arch, f"{name} is a grouped or dilated convolution (ResNeXt / output_stride)")
        if _is_type(m, "ReLU") or isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.Identity, nn.MaxPool2d)):
            continue
        if isinstance(m, nn.Sequential) or _is_type(m, "SelectAdaptivePool2d") or _is_type(m, "AdaptiveAvgPool2d"):
            continue
        if _is_type(m, "Flatten") or m is model or _is_type(m, "BasicBlock") or _is_type(m, "Bottleneck"):
            continue
        raise refuse(
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
            raise refuse(arch, f"it has no layer{s + 1} of blocks")
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
                    raise refuse(
                        arch,
                        f"layer{s + 1}.{b} is not a bottleneck of width out/4 with the stride on its "
                        "3x3 conv (wide ResNets, ResNeXts and stride-on-1x1 variants are not)",
                    )
                if c1.kernel_size != (1, 1) or c2.kernel_size != (3, 3) or c3.kernel_size != (1, 1):
                    raise refuse(arch, f"layer{s + 1}.{b} does not have 1x1, 3x3, 1x1 convolutions")
            else:
                c1, c2 = block.conv1, block.conv2
                if c1.out_channels != out_ch or c1.stride != (stride, stride) or c1.kernel_size != (3, 3):
                    raise refuse(arch, f"layer{s + 1}.{b} is not a basic block of two 3x3 convolutions")
            for i, conv in enumerate(convs):
                hf = f"resnet.encoder.stages.{s}.layers.{b}.layer.{i}"
                pairs += _module_pairs(f"{hf}.convolution", f"layer{s + 1}.{b}.{conv}", getattr(block, conv))
                bn = getattr(block, f"bn{i + 1}")
                pairs += _module_pairs(f"{hf}.normalization", f"layer{s + 1}.{b}.bn{i + 1}", bn)
            down = getattr(block, "downsample", None)
            needs_shortcut = in_ch != out_ch or stride != 1
            if down is None and needs_shortcut:
                raise refuse(arch, f"layer{s + 1}.{b} changes shape without a shortcut convolution")
            if down is not None:
                ok = (
                    isinstance(down, nn.Sequential)
                    and len(down) == 2
                    and isinstance(down[0], nn.Conv2d)
                    and down[0].kernel_size == (1, 1)
                    and down[0].stride == (stride, stride)
                )
                if not ok or not needs_shortcut:
                    raise refuse(
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
        raise refuse(arch, f"it mixes block types {sorted(block_types)}")
    if getattr(model, "layer5", None) is not None:
        raise refuse(arch, "it has more than four stages")
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


def vit_plan(arch: str, model: Any) -> tuple[dict[str, Any], list[tuple[str, str, int | None]]]:
    nn = torch.nn
    if getattr(model, "global_pool", None) != "token" or getattr(model, "cls_token", None) is None:
        raise refuse(arch, "it does not classify from a class token (global_pool must be 'token')")
    if getattr(model, "num_prefix_tokens", 1) != 1 or getattr(model, "reg_token", None) is not None:
        raise refuse(arch, "it has register tokens")
    if getattr(model, "no_embed_class", False) or getattr(model, "pos_embed", None) is None:
        raise refuse(arch, "its position embedding does not cover the class token")
    if getattr(model, "dynamic_img_size", False) or getattr(model, "attn_pool", None) is not None:
        raise refuse(arch, "it uses dynamic image sizes or attention pooling")
    pe = model.patch_embed
    proj = getattr(pe, "proj", None)
    if not isinstance(proj, nn.Conv2d) or proj.bias is None or proj.kernel_size != proj.stride:
        raise refuse(arch, "its patch embedding is not one strided convolution with bias")
    if not isinstance(getattr(pe, "norm", nn.Identity()), nn.Identity):
        raise refuse(arch, "its patch embedding is normalized")
    for name in ("norm_pre", "fc_norm"):
        if not isinstance(getattr(model, name, nn.Identity()), nn.Identity):
            raise refuse(arch, f"it has a {name} layer (transformers' ViT has none)")
    if not isinstance(getattr(model, "norm", None), nn.LayerNorm) or not isinstance(model.head, nn.Linear):
        raise refuse(arch, "it has no final LayerNorm and linear head")
    eps = model.norm.eps
    img = pe.img_size
    if img[0] != img[1] or proj.kernel_size[0] != proj.kernel_size[1]:
        raise refuse(arch, "its image or patches are not square")
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
            raise refuse(arch, f"blocks.{i} is a {type(blk).__name__}, not a standard pre-norm block")
        attn, mlp = blk.attn, blk.mlp
        for part in ("ls1", "ls2", "drop_path1", "drop_path2"):
            m = getattr(blk, part, None)
            if m is not None and not isinstance(m, nn.Identity) and not _is_type(m, "DropPath"):
                raise refuse(arch, f"blocks.{i}.{part} is a {type(m).__name__} (layer scale has no counterpart)")
        for part in ("q_norm", "k_norm", "norm"):
            if not isinstance(getattr(attn, part, nn.Identity()), nn.Identity):
                raise refuse(arch, f"blocks.{i}.attn.{part} normalizes queries/keys or attention output")
        qkv = getattr(attn, "qkv", None)
        if not isinstance(qkv, nn.Linear) or qkv.bias is None:
            raise refuse(arch, f"blocks.{i}.attn has no fused qkv projection with bias")
        if not _is_type(mlp, "Mlp") or not isinstance(getattr(mlp, "act", None), nn.GELU):
            raise refuse(arch, f"blocks.{i}.mlp is not a GELU MLP")
        if mlp.act.approximate != "none" or not isinstance(getattr(mlp, "norm", nn.Identity()), nn.Identity):
            raise refuse(arch, f"blocks.{i}.mlp uses tanh-GELU or an inner norm")
        for norm in (blk.norm1, blk.norm2):
            if not isinstance(norm, nn.LayerNorm) or norm.eps != eps:
                raise refuse(arch, f"blocks.{i} norms are not LayerNorms with eps {eps}")
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
        raise refuse(arch, "it has no transformer blocks")
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


def hf_key_names(model_type: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
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


def check_key_map(
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
        raise refuse(arch, "the weight mapping does not cover both models exactly: " + "; ".join(problems[:5]) + more)


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


class MappedWeights(torch.nn.Module):
    """A stand-in whose ``state_dict()`` is the mapped timm weights, for the tensor-by-tensor weights check."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._tensors = tensors

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return dict(self._tensors)


__all__ = [
    "MappedWeights",
    "TransformersPlan",
    "check_key_map",
    "hf_key_names",
    "mapped_state_dict",
    "refuse",
    "resnet_plan",
    "vit_plan",
]
