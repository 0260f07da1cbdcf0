"""Build a model from a pretrained tag, a Hub repo, a local checkpoint, or random weights.

``load_model`` checks the whole spec before it downloads or builds anything, then dispatches on
``spec.library`` through ``_LOADERS`` (adding open_clip is one more row). Every path returns the
model in eval mode, fp32, on the CPU, with overrides applied to its config.

Rules a user can rely on:

* Checkpoints are read without running code: ``.safetensors`` directly, pickles only through
  ``torch.load(..., weights_only=True)``. A nested checkpoint is unwrapped from the first of
  ``state_dict``, ``model``, ``state_dict_ema`` (or the ``checkpoint_key`` asked for); keys never
  come from two of them. A ``module.`` prefix (DataParallel / DDP) is stripped.
* A checkpoint must fit the architecture exactly; otherwise ``CheckpointMismatchError`` lists the
  missing, unexpected and shape-mismatched keys. hubui never replaces a checkpoint's classifier:
  ``num_classes`` must equal the checkpoint's head size (0 for a headless checkpoint).
* With a pretrained tag or Hub repo, ``num_classes`` different from the weights' head is an explicit
  request for a new classifier: timm drops the old one and the new one is random, seeded by
  ``spec.seed``; ``LoadedModel.extra["classifier_reset"]`` records it.
* Random weights (no source) are seeded by ``spec.seed``; the caller's global RNG state is untouched.

Example:
    >>> from hubui.spec import ModelSpec
    >>> loaded = load_model(ModelSpec("timm", "test_resnet", seed=1, num_classes=3, label_names=("a", "b", "c")))
    >>> loaded.data_config["input_size"], loaded.label_names
    ((3, 160, 160), ['a', 'b', 'c'])
"""

from __future__ import annotations

import json
import math
import pickle
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.catalog import resolve_model_name
from hubui.errors import (
    CheckpointError,
    CheckpointMismatchError,
    HubUnreachableError,
    InvalidInputError,
    InvalidRepoIdError,
    ModelError,
    ModelNotFoundError,
)
from hubui.spec import LIBRARIES, LoadedModel, ModelSpec

if TYPE_CHECKING:
    import torch

Progress = Callable[[str], None]

CHECKPOINT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".pth.tar")
CHECKPOINT_KEYS: tuple[str, ...] = ("state_dict", "model", "state_dict_ema")
INTERPOLATIONS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
_PREFIX = "module."
_SHOWN = 5  # keys named per category in a mismatch message
# pretrained_cfg fields that describe where the *weights* come from, not the architecture: dropped
# when the weights are a user's checkpoint or random, so no tag's license or paper is claimed for them.
_PROVENANCE_KEYS = (
    "url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "tag", "license",
    "description", "origin_url", "paper_name", "paper_ids", "notes", "label_names",
    "label_descriptions", "label_offset",
)  # fmt: skip
_LABEL_KEYS = ("label_names", "label_descriptions", "label_offset")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read into a flat state dict.

    Args:
        path: The file, resolved.
        state_dict: Parameter name -> tensor, on the CPU, prefix stripped.
        key: The nesting key the tensors came from (``"state_dict"``...), or None when flat.
        stripped_prefix: Whether a ``module.`` prefix was removed.
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    key: str | None
    stripped_prefix: bool


# --- public API -------------------------------------------------------------------------------------
def load_model(spec: ModelSpec, progress: Progress | None = None, *, checkpoint_key: str | None = None) -> LoadedModel:
    """Build the model a spec describes, with its weights and preprocessing config.

    Args:
        spec: What to load and what to override. At most one source (``pretrained``, ``checkpoint``,
            ``hf_hub_id``); none means random weights seeded by ``spec.seed``.
        progress: Called with short status lines (``"loading checkpoint model.pth"``...).
        checkpoint_key: Take the tensors from this key of a nested checkpoint instead of the first of
            ``state_dict``, ``model``, ``state_dict_ema`` (e.g. ``"state_dict_ema"`` for EMA weights).

    Returns:
        The model (eval, fp32, CPU) with ``pretrained_cfg`` and ``data_config`` reflecting overrides.

    Raises:
        InvalidInputError: A malformed spec: several sources, an unknown library, or an override
            value out of range (the message names it).
        ModelNotFoundError: Unknown architecture or tag, or the Hub has no such repo or weights.
        HubUnreachableError: The Hub (``HF_ENDPOINT``) could not be reached.
        CheckpointError: The checkpoint cannot be read safely, or holds no tensor dict.
        CheckpointMismatchError: The weights do not fit the architecture.
    """
    _check_spec(spec, checkpoint_key)
    loader = _LOADERS.get(spec.library)
    if loader is None:
        raise InvalidInputError(
            f"Library {spec.library!r} is not supported yet: open_clip support lands in a later change.",
            hint="Use library 'timm' for now.",
        )
    return loader(spec, progress or _quiet, checkpoint_key)


def read_checkpoint(path: str | Path, checkpoint_key: str | None = None) -> Checkpoint:
    """Read a checkpoint file into a flat state dict, without running any code it may contain.

    Args:
        path: A ``.safetensors``, ``.pth``, ``.pt``, ``.bin``, ``.ckpt`` or ``.pth.tar`` file.
        checkpoint_key: The nesting key to take tensors from; by default the first of
            ``state_dict``, ``model``, ``state_dict_ema``, or the top level when it is flat.

    Returns:
        The state dict and how it was found.

    Raises:
        CheckpointError: Missing, unsupported, corrupt or truncated file; a pickle that references
            anything but tensors; no tensor dict (the message says what was found instead).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise CheckpointError(f"Checkpoint file not found: '{file}'.", hint="Check the path.")
    name = file.name.lower()
    if not name.endswith(CHECKPOINT_SUFFIXES):
        raise CheckpointError(f"Unsupported checkpoint file type: '{file}'.")
    file = file.resolve()
    if name.endswith(".safetensors"):
        if checkpoint_key is not None:
            raise CheckpointError(
                f"checkpoint_key={checkpoint_key!r} does not apply to '{file}': safetensors files are flat.",
                hint="Leave checkpoint_key unset for .safetensors files.",
            )
        obj: Any = _read_safetensors(file)
    else:
        obj = _read_pickle(file)
    tensors, key = _unwrap(obj, file, checkpoint_key)
    tensors, stripped = _strip_prefix(tensors, file)
    return Checkpoint(path=file, state_dict=tensors, key=key, stripped_prefix=stripped)


# --- spec checks (before any download or build) -----------------------------------------------------
def _check_spec(spec: ModelSpec, checkpoint_key: str | None) -> None:
    if spec.library not in LIBRARIES:
        raise InvalidInputError(
            f"Unknown library {spec.library!r}.", hint=f"Use one of: {', '.join(map(repr, LIBRARIES))}."
        )
    if not isinstance(spec.architecture, str) or not spec.architecture.strip():
        raise InvalidInputError(f"architecture must be a non-empty string: {spec.architecture!r}.")
    given = {"pretrained": spec.pretrained, "checkpoint": spec.checkpoint, "hf_hub_id": spec.hf_hub_id}
    sources = {k: v for k, v in given.items() if v is not None}
    if len(sources) > 1:
        raise InvalidInputError(
            f"Give one weights source, not {len(sources)}: {', '.join(f'{k}={v!r}' for k, v in sources.items())}.",
            hint="Keep one of pretrained, checkpoint, hf_hub_id (or none for random weights).",
        )
    for key, value in sources.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{key} must be a non-empty string: {value!r}.")
    if checkpoint_key is not None and spec.checkpoint is None:
        raise InvalidInputError(
            f"checkpoint_key={checkpoint_key!r} applies only to a checkpoint source.",
            hint="Set checkpoint, or leave checkpoint_key unset.",
        )
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed < 2**63:
        raise InvalidInputError(f"seed must be an integer in [0, 2**63): {spec.seed!r}.", hint="Use e.g. seed=0.")
    if spec.num_classes is not None and (
        isinstance(spec.num_classes, bool) or not isinstance(spec.num_classes, int) or spec.num_classes < 0
    ):
        raise InvalidInputError(
            f"num_classes must be a non-negative integer: {spec.num_classes!r}.",
            hint="Use the number of classes of your head, or 0 for a headless model.",
        )
    if spec.label_names is not None:
        if isinstance(spec.label_names, str) or not all(isinstance(n, str) and n.strip() for n in spec.label_names):
            raise InvalidInputError(
                f"label_names must be a sequence of non-empty strings: {spec.label_names!r}.",
                hint="Pass e.g. label_names=('cat', 'dog').",
            )
        if spec.num_classes is not None:
            _check_label_count(spec, spec.num_classes)
    for key in ("mean", "std"):
        _check_norm(key, getattr(spec, key))
    if spec.interpolation is not None and spec.interpolation not in INTERPOLATIONS:
        raise InvalidInputError(
            f"Unknown interpolation {spec.interpolation!r}.",
            hint=f"Use one of: {', '.join(INTERPOLATIONS)}.",
        )
    if spec.crop_pct is not None and not (
        _is_real(spec.crop_pct) and math.isfinite(spec.crop_pct) and 0 < spec.crop_pct <= 1
    ):
        raise InvalidInputError(
            f"crop_pct must be a number with 0 < crop_pct <= 1: {spec.crop_pct!r}.",
            hint="E.g. 0.875 (crop 87.5% of the resized image) or 1.0 (no crop).",
        )
    if spec.library == "timm" and spec.resize_mode is not None:
        raise InvalidInputError(
            f"resize_mode={spec.resize_mode!r} applies to open_clip models, not timm.",
            hint="For timm use crop_pct and interpolation.",
        )


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_norm(key: str, values: Any) -> None:
    if values is None:
        return
    hint = f"Give 3 values in the 0-1 scale, e.g. {key}=(0.485, 0.456, 0.406)."
    if key == "std":
        hint = "Give 3 values in the 0-1 scale, e.g. std=(0.229, 0.224, 0.225)."
    if isinstance(values, str) or not hasattr(values, "__len__") or len(values) != 3:
        raise InvalidInputError(f"{key} must have 3 values (one per RGB channel): {values!r}.", hint=hint)
    for v in values:
        if not (_is_real(v) and math.isfinite(v)):
            raise InvalidInputError(f"{key} must hold finite numbers: {values!r}.", hint=hint)
    if key == "mean" and not all(0 <= v <= 1 for v in values):
        raise InvalidInputError(f"mean must be in the 0-1 scale (0 <= value <= 1): {values!r}.", hint=hint)
    if key == "std" and not all(0 < v <= 1 for v in values):
        raise InvalidInputError(f"std must be in the 0-1 scale (0 < value <= 1): {values!r}.", hint=hint)


def _check_label_count(spec: ModelSpec, num_classes: int | None) -> None:
    if spec.label_names is not None and num_classes is not None and len(spec.label_names) != num_classes:
        raise InvalidInputError(
            f"{len(spec.label_names)} label_names given for a model with {num_classes} classes.",
            hint="Give one name per class, or set num_classes to the number of names.",
        )


# --- checkpoint reading -----------------------------------------------------------------------------
def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    import safetensors.torch
    from safetensors import SafetensorError

    try:
        return safetensors.torch.load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"Cannot read safetensors file '{file}': {_first_line(exc)}.",
            hint="The file is corrupt or truncated; copy or export it again.",
        ) from exc


def _read_pickle(file: Path) -> Any:
    import torch

    try:
        # weights_only=True: the unpickler accepts tensors and plain containers only, never code.
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f"it references {found.group(1)}" if found else _first_line(exc)
        raise CheckpointError(
            f"Refused to load '{file}': {what}, which is not a tensor or plain container; "
            "unpickling it could run code.",
            hint="If you trust the file, extract its tensors in a separate environment "
            "(e.g. safetensors.torch.save_file(state_dict, 'model.safetensors')) and load that.",
        ) from exc
    # A corrupt pickle or zip surfaces as many unrelated types (KeyError, EOFError, RuntimeError...).
    except Exception as exc:
        raise CheckpointError(
            f"Cannot read checkpoint '{file}': {type(exc).__name__}: {_first_line(exc)}.",
            hint="The file is corrupt, truncated or not a PyTorch checkpoint; copy or export it again.",
        ) from exc


def _unwrap(obj: Any, file: Path, checkpoint_key: str | None) -> tuple[dict[str, torch.Tensor], str | None]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"Checkpoint '{file}' holds {_describe(obj)}, not a dict of tensors.")
    if checkpoint_key is not None:
        if checkpoint_key not in obj:
            raise CheckpointError(
                f"Checkpoint '{file}' has no key {checkpoint_key!r}; it holds {_describe(obj)}.",
                hint="Pick one of the keys listed, or leave checkpoint_key unset.",
            )
        return _tensor_dict(obj[checkpoint_key], file, checkpoint_key), checkpoint_key
    if obj and _only_tensors(obj):
        return _tensor_dict(obj, file, None), None
    for key in CHECKPOINT_KEYS:
        if isinstance(obj.get(key), Mapping):
            return _tensor_dict(obj[key], file, key), key
    raise CheckpointError(
        f"Checkpoint '{file}' holds no tensor dict: found {_describe(obj)}.",
        hint=f"Save a dict of tensors, or nest it under one of: {', '.join(CHECKPOINT_KEYS)}.",
    )


def _tensor_dict(obj: Any, file: Path, key: str | None) -> dict[str, torch.Tensor]:
    import torch

    where = f"'{file}'" if key is None else f"'{file}' [{key!r}]"
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"Checkpoint {where} holds {_describe(obj)}, not a dict of tensors.")
    bad = [(k, v) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in bad[:_SHOWN])
        raise CheckpointError(
            f"Checkpoint {where} holds {len(bad)} entries that are not named tensors: {shown}.",
            hint="Save only model.state_dict(), or pick another checkpoint_key.",
        )
    return dict(obj)


def _strip_prefix(tensors: dict[str, torch.Tensor], file: Path) -> tuple[dict[str, torch.Tensor], bool]:
    if not any(k.startswith(_PREFIX) for k in tensors):
        return tensors, False
    out: dict[str, torch.Tensor] = {}
    for k, v in tensors.items():
        name = k[len(_PREFIX) :] if k.startswith(_PREFIX) else k
        if name in out:
            raise CheckpointError(
                f"Checkpoint '{file}' holds {name!r} both with and without the {_PREFIX!r} prefix.",
                hint="Save one copy of the weights.",
            )
        out[name] = v
    return out, True


def _only_tensors(obj: Mapping[Any, Any]) -> bool:
    import torch

    return all(isinstance(v, torch.Tensor) for v in obj.values())


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        if not obj:
            return "an empty dict"
        items = list(obj.items())
        shown = ", ".join(f"{k!r} ({type(v).__name__})" for k, v in items[:8])
        more = f" and {len(items) - 8} more" if len(items) > 8 else ""
        return f"a dict with keys {shown}{more}"
    return f"a {type(obj).__name__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


# --- fitting a state dict ---------------------------------------------------------------------------
def _check_fits(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], where: str, spec: ModelSpec) -> None:
    """Raise CheckpointMismatchError naming missing, unexpected and mis-shaped keys, if any."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    mismatched = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if not (missing or unexpected or mismatched):
        return

    def listed(keys: list[str], what: str, fmt: Callable[[str], str] = str) -> str:
        shown = ", ".join(fmt(k) for k in keys[:_SHOWN]) + (", ..." if len(keys) > _SHOWN else "")
        return f"{len(keys)} {what}{'' if len(keys) == 1 else 's'} ({shown})"

    parts = []
    if missing:
        parts.append(listed(missing, "missing key"))
    if unexpected:
        parts.append(listed(unexpected, "unexpected key"))
    if mismatched:
        parts.append(
            listed(
                mismatched,
                "shape mismatch",
                lambda k: f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}",
            )
        )
    raise CheckpointMismatchError(
        f"{where} does not fit {spec.library} architecture {spec.architecture!r}: {'; '.join(parts)}.",
        hint=_head_hint(model, tensors, spec),
    )


def _head_hint(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], spec: ModelSpec) -> str | None:
    """When the classifier is what differs, say which num_classes fits; otherwise the default hint."""
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


# --- timm -------------------------------------------------------------------------------------------
def _load_timm(spec: ModelSpec, progress: Progress, checkpoint_key: str | None) -> LoadedModel:
    entry = resolve_model_name("timm", spec.architecture)
    if entry.tag is not None:
        raise InvalidInputError(
            f"architecture {spec.architecture!r} includes a pretrained tag.",
            hint=f"Pass architecture={entry.architecture!r} and pretrained={entry.tag!r}.",
        )
    extra: dict[str, Any] = {}
    if spec.pretrained is not None:
        model, source = _timm_from_tag(spec, progress, extra)
    elif spec.hf_hub_id is not None:
        model, source = _timm_from_hub_repo(spec, progress, extra)
    elif spec.checkpoint is not None:
        model, source = _timm_from_checkpoint(spec, progress, checkpoint_key, extra)
    else:
        progress(f"building {spec.architecture} with random weights (seed {spec.seed})")
        model = _timm_create(spec.architecture, spec)
        source = f"random weights (seed {spec.seed})"
    _check_label_count(spec, model.num_classes)

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
        source=source,
        extra=extra,
    )


def _timm_create(name: str, spec: ModelSpec, pretrained: bool = False) -> torch.nn.Module:
    """``timm.create_model`` with the spec's num_classes, under the spec's seed."""
    import timm

    kwargs: dict[str, Any] = {} if spec.num_classes is None else {"num_classes": spec.num_classes}
    with _seeded(spec.seed):
        return timm.create_model(name, pretrained=pretrained, **kwargs)


def _timm_from_tag(spec: ModelSpec, progress: Progress, extra: dict[str, Any]) -> tuple[Any, str]:
    from timm.models import get_pretrained_cfg

    entry = resolve_model_name("timm", f"{spec.architecture}.{spec.pretrained}")
    cfg = get_pretrained_cfg(entry.name)
    weights_classes = getattr(cfg, "num_classes", None)
    _check_label_count(spec, spec.num_classes if spec.num_classes is not None else weights_classes)
    repo = getattr(cfg, "hf_hub_id", None)
    progress(f"downloading {repo or entry.name}")
    with _hub_errors(repo or entry.name, f"pretrained weights of {entry.name!r}"):
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
    with _hub_errors(repo_id, "config.json"):
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
    _check_label_count(spec, spec.num_classes if spec.num_classes is not None else weights_classes)
    progress(f"downloading {hub_id}")
    with _hub_errors(repo_id, "weights"):
        model = _timm_create(f"hf-hub:{hub_id}", spec, pretrained=True)
    _note_classifier_reset(spec, weights_classes, extra, progress)
    return model, f"hf-hub:{hub_id}"


def _timm_from_checkpoint(
    spec: ModelSpec, progress: Progress, checkpoint_key: str | None, extra: dict[str, Any]
) -> tuple[Any, str]:
    progress(f"loading checkpoint {Path(str(spec.checkpoint)).name}")
    ckpt = read_checkpoint(str(spec.checkpoint), checkpoint_key)
    extra["checkpoint_key"] = ckpt.key
    extra["stripped_prefix"] = _PREFIX if ckpt.stripped_prefix else None
    extra["checkpoint_dtypes"] = sorted({str(t.dtype).removeprefix("torch.") for t in ckpt.state_dict.values()})
    progress(f"building {spec.architecture}")
    model = _timm_create(spec.architecture, spec)
    where = f"Checkpoint '{ckpt.path}'" + (f" [{ckpt.key!r}]" if ckpt.key else "")
    progress(f"checking checkpoint against {spec.architecture}")
    _check_fits(model, ckpt.state_dict, where, spec)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:  # a model's own load hooks can still refuse what the key check passed
        raise CheckpointMismatchError(
            f"{where} does not fit timm architecture {spec.architecture!r}: {_first_line(exc)}."
        ) from exc
    return model, str(ckpt.path)


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


# --- shared helpers ---------------------------------------------------------------------------------
def _quiet(_message: str) -> None:
    return None


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG inside the block and restore the caller's RNG state after it."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextmanager
def _hub_errors(repo_id: str, what: str) -> Iterator[None]:
    """Translate huggingface_hub / network / load failures into hubui errors naming the repo."""
    import httpx
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from safetensors import SafetensorError

    endpoint = constants.ENDPOINT
    try:
        yield
    except LocalEntryNotFoundError as exc:
        if constants.HF_HUB_OFFLINE:
            raise HubUnreachableError(
                f"HF_HUB_OFFLINE is set and the {what} from '{repo_id}' cannot be found in the local cache.",
                hint="Unset HF_HUB_OFFLINE to download, or download the repo once while online.",
            ) from exc
        raise HubUnreachableError(
            f"Could not reach the Hub at {endpoint} to download {what} from '{repo_id}'."
        ) from exc
    except GatedRepoError as exc:
        raise ModelNotFoundError(
            f"Hub repo '{repo_id}' at {endpoint} is gated: {what} cannot be downloaded without access.",
            hint="Request access on the repo's page and log in with a token that has it.",
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Hub repo '{repo_id}' not found at {endpoint} (needed for {what}).",
            hint="Check the name and HF_ENDPOINT; log in if the repo is private.",
        ) from exc
    except RevisionNotFoundError as exc:
        raise ModelNotFoundError(
            f"Revision not found in Hub repo '{repo_id}' at {endpoint} (needed for {what}).",
            hint="Check the revision after '@', or drop it to use main.",
        ) from exc
    except RemoteEntryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Hub repo '{repo_id}' at {endpoint} has no file for {what} ({_first_line(exc)}).",
            hint="The repo needs model.safetensors (or pytorch_model.bin) and config.json as timm saves them.",
        ) from exc
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        raise HubUnreachableError(
            f"The Hub at {endpoint} answered {status or 'an error'} while downloading {what} from '{repo_id}'."
        ) from exc
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Refused to load {what} from '{repo_id}': the pickle references objects other than tensors.",
            hint="Ask the repo owner for a model.safetensors file.",
        ) from exc
    except SafetensorError as exc:
        raise CheckpointError(
            f"The {what} downloaded from '{repo_id}' are corrupt: {_first_line(exc)}.",
            hint="Delete the cached copy (hf cache) and try again.",
        ) from exc
    except (OSError, httpx.HTTPError) as exc:
        raise HubUnreachableError(
            f"Could not download {what} from '{repo_id}' at {endpoint}: {type(exc).__name__}: {_first_line(exc)}."
        ) from exc
    except RuntimeError as exc:
        if "state_dict" in str(exc):
            raise CheckpointMismatchError(
                f"The {what} from '{repo_id}' do not fit the architecture: {_first_line(exc)}."
            ) from exc
        raise ModelError(f"timm could not build {what} from '{repo_id}': {_first_line(exc)}.") from exc


# One row per library: adding open_clip is one more row and its loader.
_LOADERS: dict[str, Callable[[ModelSpec, Progress, str | None], LoadedModel]] = {
    "timm": _load_timm,
}

__all__ = ["CHECKPOINT_KEYS", "CHECKPOINT_SUFFIXES", "INTERPOLATIONS", "Checkpoint", "load_model", "read_checkpoint"]
