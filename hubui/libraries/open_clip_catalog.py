"""open_clip's zoo: every architecture and pretrained name, and a model's facts without downloading weights.

Names of pretrained weights are ``"arch:tag"`` (``"ViT-B-32:laion2b_s34b_b79k"``), as
``open_clip.list_pretrained(as_str=True)`` writes them. open_clip architecture names contain dots and dashes
(``"EVA02-B-16"``, ``"ViT-B-32-quickgelu"``) but never a colon, so the split is unambiguous.

open_clip has no default tag: a bare architecture reports open_clip's defaults (what random weights get) and
``tag`` is None. ``num_classes`` is 0 (an embedding model has no classifier), ``crop_pct`` is 1.0 (the inference
transform crops nothing beyond what ``resize_mode`` does) and ``crop_mode`` is the timm equivalent of
``resize_mode`` (shortest -> ``"center"``, squash -> ``"squash"``, longest -> ``"border"``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from hubui.errors import HubUnreachableError, ModelError, first_line
from hubui.facts import CatalogEntry, CatalogIndex, ModelFacts, PretrainedTag, tensor_sizes

# open_clip's inference resize modes, and the timm crop mode that does the same.
_CROP_MODE_OF_RESIZE_MODE = {"shortest": "center", "squash": "squash", "longest": "border"}


def open_clip_tokenizer_info(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Which tokenizer an open_clip model config asks for, the way ``open_clip.get_tokenizer`` decides.

    Args:
        model_cfg: An open_clip model config (``open_clip.get_model_config(name)``, or the
            ``model_cfg`` of a Hub repo's ``open_clip_config.json``).

    Returns:
        ``{"kind": "clip_bpe" | "hf", "hf_tokenizer_name": str | None, "context_length": int}``.
    """
    from open_clip.tokenizer import DEFAULT_CONTEXT_LENGTH

    text_cfg = model_cfg.get("text_cfg") or {}
    hf_name = text_cfg.get("hf_tokenizer_name") or None
    return {
        "kind": "hf" if hf_name else "clip_bpe",
        "hf_tokenizer_name": str(hf_name) if hf_name else None,
        "context_length": int(text_cfg.get("context_length") or DEFAULT_CONTEXT_LENGTH),
    }


def split_open_clip_hf_hub(hf_hub: str) -> tuple[str | None, str | None]:
    """Split an open_clip pretrained cfg's ``hf_hub`` value into repo id and file name.

    open_clip writes ``"org/name/"`` for the default weights file and ``"org/name/file.bin"`` for a
    named one (``open_clip.pretrained.download_pretrained``).

    Args:
        hf_hub: The value, possibly empty.

    Returns:
        ``(repo_id, filename)``; ``repo_id`` is None for an empty value, ``filename`` None for the default.
    """
    repo_id, _, filename = hf_hub.strip().rpartition("/")
    if not repo_id:
        return None, None
    return repo_id, filename or None


def _openclip_clean_tag(tag: str) -> str:
    from open_clip.pretrained import _clean_tag

    return str(_clean_tag(tag))


def _openclip_index() -> CatalogIndex:
    import open_clip

    # open_clip's registry can grow at run time (open_clip.add_model_config); listing it is cheap, so
    # the index is cached per registry content rather than once per process.
    return _openclip_index_for(tuple(open_clip.list_models()), tuple(open_clip.list_pretrained()))


@functools.lru_cache(maxsize=4)
def _openclip_index_for(models: tuple[str, ...], pretrained_tags: tuple[tuple[str, str], ...]) -> CatalogIndex:
    architectures = tuple(CatalogEntry(name=a, architecture=a, tag=None, library="open_clip") for a in models)
    tags: dict[str, list[str]] = {e.architecture: [] for e in architectures}
    pretrained = []
    for arch, tag in pretrained_tags:
        if arch not in tags:  # a tag for an architecture whose config is missing cannot be built
            continue
        tags[arch].append(tag)
        pretrained.append(CatalogEntry(name=f"{arch}:{tag}", architecture=arch, tag=tag, library="open_clip"))
    return CatalogIndex(
        architectures=architectures,
        pretrained=tuple(pretrained),
        tags={arch: tuple(sorted(t)) for arch, t in tags.items()},
    )


def _openclip_build_without_weights(name: str) -> tuple[Any, str]:
    """Build an open_clip architecture with no weights loaded: on the meta device, else on the CPU."""
    import open_clip
    import torch

    model_cfg = open_clip.get_model_config(name) or {}
    hf_text = (model_cfg.get("text_cfg") or {}).get("hf_model_name")
    # pretrained_text=False: a Hugging Face text tower would otherwise download its weights.
    kwargs: dict[str, Any] = {"pretrained": None, "pretrained_text": False, "weights_only": True}
    try:
        with torch.device("meta"):
            return open_clip.create_model(name, device="meta", **kwargs), "meta"
    except OSError as exc:
        # Hugging Face text towers read their config.json from the Hub; the CPU would need it too.
        raise HubUnreachableError(
            f"open_clip model {name!r} builds its text tower from the Hugging Face model {hf_text!r}, "
            f"whose config could not be read: {first_line(exc)}.",
            hint="Check HF_ENDPOINT and your network connection, or that the model is in the local cache.",
        ) from exc
    # Some towers compute values at construction that meta tensors do not support; whatever the
    # reason, the CPU is the fallback, and it raises the real error if there is one.
    except Exception:
        pass
    try:
        return open_clip.create_model(name, device="cpu", **kwargs), "cpu"
    except Exception as exc:
        raise ModelError(f"open_clip could not build {name!r}: {type(exc).__name__}: {first_line(exc)}.") from exc


def _openclip_tag(arch: str, tag: str) -> PretrainedTag:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(arch, tag)
    repo_id, filename = split_open_clip_hf_hub(str(cfg.get("hf_hub") or ""))
    pp = _openclip_preprocess(cfg)
    return PretrainedTag(
        tag=tag,
        hf_hub_id=repo_id,
        hf_hub_filename=filename,
        url=cfg.get("url") or None,
        quick_gelu=bool(cfg.get("quick_gelu", False)),
        license=cfg.get("license"),
        mean=pp["mean"],
        std=pp["std"],
        interpolation=pp["interpolation"],
        resize_mode=pp["resize_mode"],
    )


def _openclip_preprocess(overlay: Mapping[str, Any]) -> dict[str, Any]:
    """open_clip's default preprocess cfg with a tag's values on top, as ``create_model`` merges them."""
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    pp = merge_preprocess_dict(PreprocessCfg(), dict(overlay))
    return {
        "mean": tuple(float(v) for v in pp["mean"]),
        "std": tuple(float(v) for v in pp["std"]),
        "interpolation": str(pp["interpolation"]),
        "resize_mode": str(pp["resize_mode"]),
    }


def _openclip_facts(entry: CatalogEntry) -> ModelFacts:
    import open_clip

    model_cfg = open_clip.get_model_config(entry.architecture) or {}
    model, built_on = _openclip_build_without_weights(entry.architecture)
    num_params = sum(p.numel() for p in model.parameters())
    fp32, fp16 = tensor_sizes(model.state_dict().values())
    size = model.visual.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    tags = _openclip_index().tags.get(entry.architecture, ())
    details = tuple(_openclip_tag(entry.architecture, t) for t in tags)
    chosen = next((d for d in details if d.tag == entry.tag), None)
    pp = _openclip_preprocess(open_clip.get_pretrained_cfg(entry.architecture, entry.tag) if entry.tag else {})
    tokenizer = open_clip_tokenizer_info(model_cfg)
    return ModelFacts(
        library=entry.library,
        name=entry.name,
        architecture=entry.architecture,
        tag=entry.tag,
        num_params=num_params,
        input_size=(3, height, width),
        mean=pp["mean"],
        std=pp["std"],
        interpolation=pp["interpolation"],
        crop_pct=1.0,
        crop_mode=_CROP_MODE_OF_RESIZE_MODE.get(pp["resize_mode"], "center"),
        num_classes=0,
        license=chosen.license if chosen else None,
        paper_name=None,
        paper_ids=(),
        origin_url=chosen.url if chosen else None,
        hf_hub_id=chosen.hf_hub_id if chosen else None,
        pretrained_tags=tags,
        size_fp32_bytes=fp32,
        size_fp16_bytes=fp16,
        embed_dim=int(model_cfg["embed_dim"]),
        context_length=tokenizer["context_length"],
        tokenizer=tokenizer["kind"],
        hf_tokenizer_name=tokenizer["hf_tokenizer_name"],
        resize_mode=pp["resize_mode"],
        quick_gelu=bool(model_cfg.get("quick_gelu", False)),
        model_class=type(model).__name__,
        built_on=built_on,
        tag_details=details,
    )


def _weight_bytes(architecture: str) -> int | None:
    """The architecture's fp32 weight bytes (built without weights), or ``None`` when unknown."""
    try:
        entry = CatalogEntry(name=architecture, architecture=architecture, tag=None, library="open_clip")
        return _openclip_facts(entry).size_fp32_bytes
    except Exception:  # only a limit depends on it: an architecture the catalog can't size is not refused here
        return None


__all__ = ["open_clip_tokenizer_info", "split_open_clip_hf_hub"]
