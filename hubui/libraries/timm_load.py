"""Load a timm model: from a pretrained tag, a Hub repo, a local checkpoint, or random weights.

Every path returns the model in eval mode, fp32, on the CPU, with the spec's overrides written into its
``pretrained_cfg``. With a pretrained tag or Hub repo, ``num_classes`` different from the weights' head is an
explicit request for a new classifier: timm drops the old one and the new one is random, seeded by
``spec.seed``; ``LoadedModel.extra["classifier_reset"]`` records it. A checkpoint must fit exactly: hubui never
replaces a checkpoint's classifier (the mismatch hint says which ``num_classes`` fits).

Part of :mod:`hubui.libraries.timm` (its :meth:`~hubui.libraries.timm.TimmLibrary.load`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.catalog_names import resolve_name
from hubui.checkpoints import check_fits, read_checkpoint, record_checkpoint, seeded
from hubui.errors import CheckpointMismatchError, InvalidInputError, InvalidRepoIdError, ModelError, first_line
from hubui.hub_errors import hub_errors
from hubui.spec import LoadedModel, ModelSpec, check_label_count

if TYPE_CHECKING:
    import torch

    from hubui.libraries.base import Progress, Source

INTERPOLATIONS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
# pretrained_cfg fields that describe where the *weights* come from, not the architecture: dropped
# when the weights are a user's checkpoint or random, so no tag's license or paper is claimed for them.
_PROVENANCE_KEYS = (
    "url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "tag", "license",
    "description", "origin_url", "paper_name", "paper_ids", "notes", "label_names",
    "label_descriptions", "label_offset",
)  # fmt: skip
_LABEL_KEYS = ("label_names", "label_descriptions", "label_offset")


def check_spec(spec: ModelSpec) -> None:
    """Refuse the overrides timm does not have (after the generic checks).

    Raises:
        InvalidInputError: ``resize_mode`` is set (open_clip's crop; timm crops by ``crop_pct``).
    """
    if spec.resize_mode is not None:
        raise InvalidInputError(
            f"resize_mode={spec.resize_mode!r} applies to open_clip models, not timm.",
            hint="For timm use crop_pct and interpolation.",
        )


def head_hint(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], spec: ModelSpec) -> str | None:
    """When the classifier is what differs, say which num_classes fits; otherwise None (the default hint)."""
    classifier = (getattr(model, "pretrained_cfg", None) or {}).get("classifier")
    names = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    expected = model.state_dict()
    for name in names:
        key = f"{name}.weight"
        if key in tensors and key in expected and tensors[key].shape[0] != expected[key].shape[0]:
            n = int(tensors[key].shape[0])
            if spec.num_classes is not None:
                return (
                    f"num_classes={spec.num_classes} was asked, but the checkpoint's classifier {name!r} has "
                    f"{n} outputs: set num_classes={n}; hubui does not replace a checkpoint's classifier."
                )
            return f"The checkpoint's classifier {name!r} has {n} outputs: set num_classes={n} (and label_names)."
        if key in expected and key not in tensors and not any(k.startswith(f"{name}.") for k in tensors):
            return f"The checkpoint has no classifier {name!r}: set num_classes=0 for a headless model."
    return None


def load_timm(source: Source, spec: ModelSpec, progress: Progress, checkpoint_key: str | None) -> LoadedModel:
    """Build the timm model ``spec`` names (see :meth:`hubui.libraries.timm.TimmLibrary.load`).

    Args:
        source: timm's :class:`~hubui.libraries.base.Source`, whose zoo resolves the names.
        spec: What to load (already checked by the core and :func:`check_spec`).
        progress: Receives status lines.
        checkpoint_key: The nesting key of a checkpoint's tensors, or None for the first of the usual ones.

    Returns:
        The model (eval, fp32, CPU) with ``pretrained_cfg`` and ``data_config`` reflecting overrides.

    Raises:
        InvalidInputError: The architecture includes a tag, label names that don't fit, a repo of another
            architecture.
        ModelNotFoundError: Unknown architecture or tag, or the Hub has no such repo or weights.
        HubUnreachableError: The Hub could not be reached.
        CheckpointError: The checkpoint cannot be read safely.
        CheckpointMismatchError: The weights do not fit the architecture.
    """
    entry = resolve_name(source, spec.architecture)
    if entry.tag is not None:
        raise InvalidInputError(
            f"architecture {spec.architecture!r} includes a pretrained tag.",
            hint=f"Pass architecture={entry.architecture!r} and pretrained={entry.tag!r}.",
        )
    extra: dict[str, Any] = {}
    if spec.pretrained is not None:
        model, origin = _timm_from_tag(source, spec, progress, extra)
    elif spec.hf_hub_id is not None:
        model, origin = _timm_from_hub_repo(spec, progress, extra)
    elif spec.checkpoint is not None:
        model, origin = _timm_from_checkpoint(source, spec, progress, checkpoint_key, extra)
    else:
        progress(f"building {spec.architecture} with random weights (seed {spec.seed})")
        model = _timm_create(spec.architecture, spec)
        origin = f"random weights (seed {spec.seed})"
    check_label_count(spec, model.num_classes)

    progress("applying overrides")
    model = model.cpu().float().eval()
    keep_provenance = spec.pretrained is not None or spec.hf_hub_id is not None
    cfg = _timm_apply_overrides(model, spec, keep_provenance)
    from timm.data import resolve_data_config

    data_config = resolve_data_config({}, model=model)
    labels = cfg.get("label_names")
    label_names = [str(n) for n in labels] if labels and len(labels) == model.num_classes else None
    progress("model ready")
    return LoadedModel(
        spec=spec,
        model=model,
        pretrained_cfg=cfg,
        data_config=data_config,
        label_names=label_names,
        source=origin,
        extra=extra,
    )


def _timm_create(name: str, spec: ModelSpec, pretrained: bool = False) -> torch.nn.Module:
    """``timm.create_model`` with the spec's num_classes, under the spec's seed."""
    import timm

    kwargs: dict[str, Any] = {} if spec.num_classes is None else {"num_classes": spec.num_classes}
    with seeded(spec.seed):
        return timm.create_model(name, pretrained=pretrained, **kwargs)


def _timm_from_tag(source: Source, spec: ModelSpec, progress: Progress, extra: dict[str, Any]) -> tuple[Any, str]:
    from timm.models import get_pretrained_cfg

    entry = resolve_name(source, f"{spec.architecture}.{spec.pretrained}")
    cfg = get_pretrained_cfg(entry.name)
    weights_classes = getattr(cfg, "num_classes", None)
    check_label_count(spec, spec.num_classes if spec.num_classes is not None else weights_classes)
    repo = getattr(cfg, "hf_hub_id", None)
    progress(f"downloading {repo or entry.name}")
    with hub_errors(
        repo or entry.name, f"pretrained weights of {entry.name!r}", pretrained=entry.name if repo else None
    ):
        model = _timm_create(entry.name, spec, pretrained=True)
    _note_classifier_reset(spec, weights_classes, extra, progress)
    return model, f"hf-hub:{repo}" if repo else f"timm:{entry.name}"


def _timm_from_hub_repo(spec: ModelSpec, progress: Progress, extra: dict[str, Any]) -> tuple[Any, str]:
    from huggingface_hub.utils import HFValidationError, validate_repo_id
    from timm.models import load_model_config_from_hf

    hub_id = str(spec.hf_hub_id).strip()
    repo_id = hub_id.split("@", 1)[0]
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InvalidRepoIdError(f"Invalid Hub repo id {hub_id!r}.") from exc
    progress(f"reading config of {hub_id}")
    with hub_errors(repo_id, "config.json"):
        try:
            pretrained_cfg, arch, _ = load_model_config_from_hf(hub_id)
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"Hub repo '{hub_id}' has no usable timm config.json ({type(exc).__name__}: {exc}).",
                hint="Point hf_hub_id at a repo pushed with timm, or load its weights as a checkpoint.",
            ) from exc
    if arch != spec.architecture:
        raise InvalidInputError(
            f"Hub repo '{hub_id}' holds a {arch!r}, not architecture {spec.architecture!r}.",
            hint=f"Set architecture={arch!r}.",
        )
    weights_classes = pretrained_cfg.get("num_classes")
    check_label_count(spec, spec.num_classes if spec.num_classes is not None else weights_classes)
    progress(f"downloading {hub_id}")
    with hub_errors(repo_id, "weights"):
        model = _timm_create(f"hf-hub:{hub_id}", spec, pretrained=True)
    _note_classifier_reset(spec, weights_classes, extra, progress)
    return model, f"hf-hub:{hub_id}"


def _timm_from_checkpoint(
    source: Source, spec: ModelSpec, progress: Progress, checkpoint_key: str | None, extra: dict[str, Any]
) -> tuple[Any, str]:
    progress(f"loading checkpoint {Path(str(spec.checkpoint)).name}")
    ckpt = read_checkpoint(
        str(spec.checkpoint),
        checkpoint_key,
        expected_bytes=lambda: _weight_bytes(source, spec.architecture),
        architecture=spec.architecture,
    )
    record_checkpoint(ckpt, extra)
    progress(f"building {spec.architecture}")
    model = _timm_create(spec.architecture, spec)
    where = f"Checkpoint '{ckpt.path}'" + (f" [{ckpt.key!r}]" if ckpt.key else "")
    progress(f"checking checkpoint against {spec.architecture}")
    check_fits(model, ckpt.state_dict, where, spec, hint=lambda: head_hint(model, ckpt.state_dict, spec))
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:  # a model's own load hooks can still refuse what the key check passed
        raise CheckpointMismatchError(
            f"{where} does not fit timm architecture {spec.architecture!r}: {first_line(exc)}."
        ) from exc
    return model, str(ckpt.path)


def _weight_bytes(source: Source, architecture: str) -> int | None:
    """The architecture's fp32 weight bytes (built without weights), or ``None`` when unknown."""
    try:
        return source.facts(resolve_name(source, architecture)).size_fp32_bytes
    except Exception:  # only a limit depends on it: an architecture the catalog can't size is not refused here
        return None


def _note_classifier_reset(
    spec: ModelSpec, weights_classes: int | None, extra: dict[str, Any], progress: Progress
) -> None:
    if spec.num_classes is not None and weights_classes is not None and spec.num_classes != weights_classes:
        extra["classifier_reset"] = {"from": weights_classes, "to": spec.num_classes}
        progress(f"new random {spec.num_classes}-class classifier (seed {spec.seed})")


def _timm_apply_overrides(model: Any, spec: ModelSpec, keep_provenance: bool) -> dict[str, Any]:
    """Write overrides into ``model.pretrained_cfg`` (a fresh dict) and return it."""
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    if not keep_provenance:
        for key in _PROVENANCE_KEYS:
            cfg.pop(key, None)
    if cfg.get("num_classes") != model.num_classes:
        for key in _LABEL_KEYS:  # labels of another head
            cfg.pop(key, None)
        cfg["num_classes"] = model.num_classes
    if spec.mean is not None:
        cfg["mean"] = tuple(float(v) for v in spec.mean)
    if spec.std is not None:
        cfg["std"] = tuple(float(v) for v in spec.std)
    if spec.interpolation is not None:
        cfg["interpolation"] = spec.interpolation
    if spec.crop_pct is not None:
        cfg["crop_pct"] = float(spec.crop_pct)
        cfg.pop("test_crop_pct", None)  # the user's crop is the one to publish
    if spec.label_names is not None:
        cfg["label_names"] = list(spec.label_names)
        for key in ("label_descriptions", "label_offset"):
            cfg.pop(key, None)
    model.pretrained_cfg = cfg
    model.default_cfg = cfg  # timm's backwards-compatible alias
    return cfg


__all__ = ["INTERPOLATIONS", "check_spec", "head_hint", "load_timm"]
