"""Build a model from a pretrained tag, a Hub repo, a local checkpoint, or random weights.

``load_model`` checks the whole spec before it downloads or builds anything, then dispatches on
``spec.library`` through ``_LOADERS`` (one row per library). Every path returns the model in eval
mode, fp32, on the CPU, with overrides applied to its config.

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

open_clip specifics:

* ``LoadedModel.pretrained_cfg`` is open_clip's preprocess cfg (``model.visual.preprocess_cfg``:
  ``size``, ``mode``, ``mean``, ``std``, ``interpolation``, ``resize_mode``, ``fill_color``) and
  ``data_config`` holds ``input_size``, ``mean``, ``std``, ``interpolation``, ``resize_mode``. The
  overrides are applied as ``open_clip.create_model_from_pretrained(image_mean=..., image_std=...,
  image_interpolation=..., image_resize_mode=...)`` applies them. ``crop_pct`` and ``num_classes`` do
  not apply.
* ``LoadedModel.extra`` holds ``model_cfg`` (the full model config), ``tokenizer`` (``kind``
  ``"clip_bpe"`` or ``"hf"``, ``hf_tokenizer_name``, ``context_length``) and ``tokenizer_obj`` (from
  ``open_clip.get_tokenizer``). A tokenizer that cannot be loaded is an error, never replaced by another.
* Weights are downloaded through huggingface_hub only (``HF_ENDPOINT`` applies). A tag published only
  at a URL is refused with the URL in the message: download it and load it as a checkpoint.
* A tag trained with QuickGELU must be loaded with the ``-quickgelu`` architecture (open_clip only
  warns; the embeddings would be wrong).
* With ``hf_hub_id``, ``architecture`` names the model: if it is one of open_clip's built-in names, the
  repo's config must match it; any other name is taken as the repo model's name.

Example:
    >>> from hubui.spec import ModelSpec
    >>> loaded = load_model(ModelSpec("timm", "test_resnet", seed=1, num_classes=3, label_names=("a", "b", "c")))
    >>> loaded.data_config["input_size"], loaded.label_names
    ((3, 160, 160), ['a', 'b', 'c'])
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.catalog import open_clip_tokenizer_info, resolve_model_name, split_open_clip_hf_hub
from hubui.checkpoint_limits import ExpectedBytes, check_checkpoint_size
from hubui.errors import (
    CheckpointError,
    CheckpointMismatchError,
    HubUnreachableError,
    InvalidInputError,
    InvalidRepoIdError,
    ModelError,
    ModelNotFoundError,
    exception_chain,
)
from hubui.spec import LIBRARIES, LoadedModel, ModelSpec

if TYPE_CHECKING:
    import torch

Progress = Callable[[str], None]

CHECKPOINT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".bin", ".ckpt", ".pth.tar")
CHECKPOINT_KEYS: tuple[str, ...] = ("state_dict", "model", "state_dict_ema")
INTERPOLATIONS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
# What open_clip's image_transform accepts (the reference push script's choices).
OPEN_CLIP_INTERPOLATIONS: tuple[str, ...] = ("bicubic", "bilinear", "random")
OPEN_CLIP_RESIZE_MODES: tuple[str, ...] = ("shortest", "longest", "squash")
_OPEN_CLIP_CONFIG = "open_clip_config.json"
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
            f"Library {spec.library!r} is not supported yet.", hint=f"Use one of: {', '.join(map(repr, _LOADERS))}."
        )
    return loader(spec, progress or _quiet, checkpoint_key)


def read_checkpoint(
    path: str | Path,
    checkpoint_key: str | None = None,
    *,
    expected_bytes: ExpectedBytes = None,
    architecture: str = "",
) -> Checkpoint:
    """Read a checkpoint file into a flat state dict, without running any code it may contain.

    Before anything is loaded, what the file would take in memory (a zip's declared sizes) is checked against
    hubui's limits (see :mod:`hubui.checkpoint_limits`): a zip bomb is refused without being decompressed.

    Args:
        path: A ``.safetensors``, ``.pth``, ``.pt``, ``.bin``, ``.ckpt`` or ``.pth.tar`` file.
        checkpoint_key: The nesting key to take tensors from; by default the first of
            ``state_dict``, ``model``, ``state_dict_ema``, or the top level when it is flat.
        expected_bytes: The architecture's fp32 weight bytes (or a callable giving them), to refuse a file
            many times larger than the model it is for.
        architecture: The architecture's name, for that message.

    Returns:
        The state dict and how it was found.

    Raises:
        CheckpointError: Missing, unsupported, corrupt or truncated file; one that would take more memory to
            load than allowed or available; a pickle that references anything but tensors; no tensor dict (the
            message says what was found instead).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise CheckpointError(f"Checkpoint file not found: '{file}'.", hint="Check the path.")
    name = file.name.lower()
    if not name.endswith(CHECKPOINT_SUFFIXES):
        raise CheckpointError(f"Unsupported checkpoint file type: '{file}'.")
    file = file.resolve()
    if file.stat().st_size == 0:
        raise CheckpointError(
            f"Checkpoint '{file}' is empty (0 bytes).",
            hint="The copy or download did not finish; fetch the file again.",
        )
    check_checkpoint_size(file, expected_bytes, architecture)
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
    if spec.library == "open_clip":
        for flag, hint in (
            ("crop_pct", "open_clip crops by resize_mode ('shortest', 'longest', 'squash')."),
            ("num_classes", "open_clip models are image-text embedding models without a classifier."),
        ):
            if getattr(spec, flag) is not None:
                raise InvalidInputError(
                    f"{flag}={getattr(spec, flag)!r} applies to timm models, not open_clip.",
                    hint=f"Leave it unset; {hint}",
                )
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
    interpolations = OPEN_CLIP_INTERPOLATIONS if spec.library == "open_clip" else INTERPOLATIONS
    if spec.interpolation is not None and spec.interpolation not in interpolations:
        raise InvalidInputError(
            f"Unknown {spec.library} interpolation {spec.interpolation!r}.",
            hint=f"Use one of: {', '.join(interpolations)}.",
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
    if spec.library == "open_clip" and spec.resize_mode is not None and spec.resize_mode not in OPEN_CLIP_RESIZE_MODES:
        raise InvalidInputError(
            f"Unknown open_clip resize_mode {spec.resize_mode!r}.",
            hint=f"Use one of: {', '.join(OPEN_CLIP_RESIZE_MODES)}.",
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
        # torch's own message advises re-running with weights_only=False: never pass that advice on.
        found = re.search(r"GLOBAL (\S+?)(?: was| whose|\s|$)", str(exc)) or None
        name = found.group(1) if found else _pickle_global(file)
        what = f"it references {name}" if name else "it uses pickle instructions"
        raise CheckpointError(
            f"Refused to load '{file}': {what}, which is not a tensor or plain container; "
            "unpickling it could run code, so the safe loader (torch.load with weights_only=True) refused it.",
            hint="If you trust the file, extract its tensors in a separate environment "
            "(e.g. safetensors.torch.save_file(state_dict, 'model.safetensors')) and load that.",
        ) from exc
    # A corrupt pickle or zip surfaces as many unrelated types (KeyError, EOFError, RuntimeError...).
    except Exception as exc:
        raise CheckpointError(
            f"Cannot read checkpoint '{file}': {type(exc).__name__}: {_first_line(exc)}.",
            hint="The file is corrupt, truncated or not a PyTorch checkpoint; copy or export it again.",
        ) from exc


# Globals that torch's weights-only unpickler allows; anything else is what a refused pickle references.
_SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set", "builtins.bytearray")


def _pickle_global(file: Path) -> str | None:
    """The first global a refused pickle references that is not a tensor type, read without unpickling.

    Only for the error message: ``pickletools.genops`` walks the opcodes and runs nothing.
    """
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(file):
            with zipfile.ZipFile(file) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(member) if member else b""
        else:
            data = file.read_bytes()
        strings: list[str] = []
        for op, arg, _ in pickletools.genops(data):
            if isinstance(arg, str):
                strings.append(arg)
            name = None
            if op.name == "GLOBAL" and isinstance(arg, str):
                name = arg.replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            if name and not name.startswith(_SAFE_GLOBAL_PREFIXES):
                return name
    except Exception:  # a malformed pickle: the message then says less, nothing else changes
        return None
    return None


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
    if spec.library == "open_clip":
        return (
            "Pick the open_clip architecture the checkpoint was trained with "
            "(`hubui models open_clip PATTERN` lists them); open_clip models have no classifier to resize."
        )
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
    ckpt = read_checkpoint(
        str(spec.checkpoint),
        checkpoint_key,
        expected_bytes=lambda: _weight_bytes("timm", spec.architecture),
        architecture=spec.architecture,
    )
    _record_checkpoint(ckpt, extra)
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


def _weight_bytes(library: str, architecture: str) -> int | None:
    """The architecture's fp32 weight bytes (built without weights, cached), or ``None`` when unknown."""
    from hubui.catalog import model_facts

    try:
        return model_facts(library, architecture).size_fp32_bytes
    except Exception:  # only a limit depends on it: an architecture the catalog can't size is not refused here
        return None


def _record_checkpoint(ckpt: Checkpoint, extra: dict[str, Any]) -> None:
    """Note where a checkpoint's tensors came from, for the card and the export."""
    extra["checkpoint_key"] = ckpt.key
    extra["stripped_prefix"] = _PREFIX if ckpt.stripped_prefix else None
    extra["checkpoint_dtypes"] = sorted({str(t.dtype).removeprefix("torch.") for t in ckpt.state_dict.values()})


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
def _hub_errors(repo_id: str, what: str, missing_hint: str | None = None) -> Iterator[None]:
    """Translate huggingface_hub / network / load failures into hubui errors naming the repo.

    ``missing_hint`` replaces the hint given when the repo lacks the file (timm's file names by default).
    """
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
            hint=missing_hint
            or "The repo needs model.safetensors (or pytorch_model.bin) and config.json as timm saves them.",
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
        raise ModelError(f"Could not build {what} from '{repo_id}': {_first_line(exc)}.") from exc


# --- open_clip --------------------------------------------------------------------------------------
_OPEN_CLIP_FILES_HINT = (
    "The repo needs open_clip_model.safetensors (or open_clip_pytorch_model.bin) and open_clip_config.json "
    "as open_clip saves them."
)


def _load_open_clip(spec: ModelSpec, progress: Progress, checkpoint_key: str | None) -> LoadedModel:
    import open_clip

    overrides = {
        "image_mean": None if spec.mean is None else tuple(float(v) for v in spec.mean),
        "image_std": None if spec.std is None else tuple(float(v) for v in spec.std),
        "image_interpolation": spec.interpolation,
        "image_resize_mode": spec.resize_mode,
    }
    extra: dict[str, Any] = {}
    if spec.hf_hub_id is not None:
        model, model_cfg, source = _openclip_from_hub_repo(spec, progress, overrides)
        tokenizer_name = source  # "hf-hub:<repo>"
    else:
        entry = resolve_model_name("open_clip", spec.architecture)
        if entry.tag is not None:
            raise InvalidInputError(
                f"architecture {spec.architecture!r} includes a pretrained tag.",
                hint=f"Pass architecture={entry.architecture!r} and pretrained={entry.tag!r}.",
            )
        arch = entry.architecture
        model_cfg = open_clip.get_model_config(arch)
        tokenizer_name = arch
        if spec.pretrained is not None:
            model, source = _openclip_from_tag(spec, arch, progress, overrides)
        elif spec.checkpoint is not None:
            model, source = _openclip_from_checkpoint(spec, arch, model_cfg, progress, checkpoint_key, overrides, extra)
        else:
            progress(f"building {arch} with random weights (seed {spec.seed})")
            model = _openclip_create(arch, spec, model_cfg, overrides)
            source = f"random weights (seed {spec.seed})"
    model = model.cpu().float().eval()

    tokenizer = open_clip_tokenizer_info(model_cfg)
    progress(f"loading tokenizer {tokenizer['hf_tokenizer_name'] or 'clip_bpe'}")
    tokenizer_obj = _openclip_tokenizer(tokenizer_name, tokenizer)

    # open_clip's create_model applied the overrides to model.visual.preprocess_cfg (and the legacy
    # image_mean / image_std attributes); read them back from there so what is reported is what is set.
    preprocess = copy.deepcopy(dict(model.visual.preprocess_cfg))
    preprocess["mean"] = tuple(float(v) for v in preprocess["mean"])
    preprocess["std"] = tuple(float(v) for v in preprocess["std"])
    size = model.visual.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    data_config = {
        "input_size": (3, height, width),
        "mean": preprocess["mean"],
        "std": preprocess["std"],
        "interpolation": str(preprocess["interpolation"]),
        "resize_mode": str(preprocess["resize_mode"]),
    }
    extra.update({"model_cfg": model_cfg, "tokenizer": tokenizer, "tokenizer_obj": tokenizer_obj})
    progress("model ready")
    return LoadedModel(
        spec=spec,
        model=model,
        pretrained_cfg=preprocess,
        data_config=data_config,
        label_names=list(spec.label_names) if spec.label_names is not None else None,
        source=source,
        extra=extra,
    )


def _openclip_create(arch: str, spec: ModelSpec, model_cfg: Mapping[str, Any], overrides: dict[str, Any]) -> Any:
    """``open_clip.create_model`` without weights, under the spec's seed, with the preprocess overrides."""
    import open_clip
    from open_clip.transform import merge_preprocess_kwargs

    force = merge_preprocess_kwargs(
        {},  # type: ignore[arg-type]  # open_clip's own callers pass {} too
        mean=overrides["image_mean"],
        std=overrides["image_std"],
        interpolation=overrides["image_interpolation"],
        resize_mode=overrides["image_resize_mode"],
    )
    hf_text = (model_cfg.get("text_cfg") or {}).get("hf_model_name")
    # A Hugging Face text tower reads its config.json from the Hub even without weights.
    errors = _hub_errors(hf_text, f"the text tower config of {arch!r}") if hf_text else nullcontext()
    with _seeded(spec.seed), errors:
        # pretrained_text=False: a Hugging Face text tower would otherwise download its own weights.
        return open_clip.create_model(
            arch, pretrained=None, pretrained_text=False, force_preprocess_cfg=force, weights_only=True
        )


def _openclip_from_tag(spec: ModelSpec, arch: str, progress: Progress, overrides: dict[str, Any]) -> tuple[Any, str]:
    import open_clip

    entry = resolve_model_name("open_clip", f"{arch}:{spec.pretrained}")
    tag = str(entry.tag)
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    model_quick_gelu = bool((open_clip.get_model_config(arch) or {}).get("quick_gelu", False))
    if bool(cfg.get("quick_gelu", False)) != model_quick_gelu:
        # open_clip only warns; the model would compute different embeddings from the released ones.
        other = arch.removesuffix("-quickgelu") if model_quick_gelu else f"{arch}-quickgelu"
        fits = other != arch and tag in _openclip_tags(other)
        trained = "with" if cfg.get("quick_gelu") else "without"
        raise InvalidInputError(
            f"open_clip tag {entry.name!r} was trained {trained} QuickGELU, but architecture {arch!r} "
            f"{'uses' if model_quick_gelu else 'does not use'} it.",
            hint=f"Use architecture={other!r}." if fits else "Pick the architecture the tag was trained with.",
        )
    what = f"pretrained weights of {entry.name!r}"
    repo_id, filename = split_open_clip_hf_hub(str(cfg.get("hf_hub") or ""))
    if cfg.get("file"):  # a local file registered in open_clip's config
        source = str(cfg["file"])
    elif repo_id is None:
        url = cfg.get("url") or "no URL"
        raise ModelNotFoundError(
            f"open_clip tag {entry.name!r} is published only at {url}, not on the Hugging Face Hub; "
            "hubui downloads weights through the Hub only.",
            hint=f"Download {url} yourself and load it with architecture={arch!r} and checkpoint=<the file> "
            "(a TorchScript archive must first be saved as a state dict).",
        )
    else:
        progress(f"downloading {repo_id}")
        with _hub_errors(repo_id, what, missing_hint=_OPEN_CLIP_FILES_HINT):
            _openclip_download_weights(repo_id, filename)
        source = f"hf-hub:{repo_id}"
    progress(f"building {arch} with weights {tag}")
    with _hub_errors(repo_id or arch, what, missing_hint=_OPEN_CLIP_FILES_HINT):
        model = open_clip.create_model_from_pretrained(
            arch, pretrained=tag, return_transform=False, weights_only=True, **overrides
        )
    return model, source


def _openclip_tags(arch: str) -> tuple[str, ...]:
    """The pretrained tags of an open_clip architecture, or () for an unknown one."""
    import open_clip

    return tuple(open_clip.list_pretrained_tags_by_model(arch))


def _openclip_download_weights(repo_id: str, filename: str | None) -> str:
    """Download a weights file the way ``open_clip.pretrained.download_pretrained_from_hf`` picks it.

    open_clip swallows huggingface_hub's errors into a bare FileNotFoundError / RuntimeError; fetching
    the file first keeps them typed (repo missing, file missing, Hub unreachable). open_clip then finds
    it in the cache.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    name = filename or HF_WEIGHTS_NAME
    candidates = []
    if name == HF_WEIGHTS_NAME:  # the safetensors twin is preferred, as open_clip does
        candidates.append(HF_SAFE_WEIGHTS_NAME)
    elif name.endswith((".bin", ".pth")):
        candidates.append(name[:-4] + ".safetensors")
    candidates.append(name)
    for candidate in candidates[:-1]:
        try:
            return str(hf_hub_download(repo_id, candidate))
        except RemoteEntryNotFoundError:
            continue
    return str(hf_hub_download(repo_id, candidates[-1]))


def _openclip_from_hub_repo(
    spec: ModelSpec, progress: Progress, overrides: dict[str, Any]
) -> tuple[Any, dict[str, Any], str]:
    import open_clip
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    hub_id = str(spec.hf_hub_id).strip().removeprefix("hf-hub:")
    if "@" in hub_id:
        raise InvalidInputError(
            f"hf_hub_id {hub_id!r} names a revision; open_clip's hf-hub: loader reads the main branch only.",
            hint="Drop the '@...' part, or download that revision's weights and load them as a checkpoint.",
        )
    try:
        validate_repo_id(hub_id)
    except HFValidationError as exc:
        raise InvalidRepoIdError(f"Invalid Hub repo id {hub_id!r}.") from exc
    progress(f"reading {_OPEN_CLIP_CONFIG} of {hub_id}")
    with _hub_errors(hub_id, _OPEN_CLIP_CONFIG, missing_hint=_OPEN_CLIP_FILES_HINT):
        config_file = hf_hub_download(hub_id, _OPEN_CLIP_CONFIG)
    model_cfg = _openclip_read_config(Path(config_file), hub_id)
    _openclip_check_repo_architecture(spec.architecture, model_cfg, hub_id)
    progress(f"downloading {hub_id}")
    with _hub_errors(hub_id, "open_clip weights", missing_hint=_OPEN_CLIP_FILES_HINT):
        _openclip_download_weights(hub_id, None)
        model = open_clip.create_model_from_pretrained(
            f"hf-hub:{hub_id}", return_transform=False, weights_only=True, **overrides
        )
    return model, model_cfg, f"hf-hub:{hub_id}"


def _openclip_read_config(file: Path, hub_id: str) -> dict[str, Any]:
    """The ``model_cfg`` of a repo's open_clip_config.json, checked to be one open_clip can build."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"Hub repo '{hub_id}' has an unreadable {_OPEN_CLIP_CONFIG}: {_first_line(exc)}.",
            hint="Point hf_hub_id at a repo pushed with open_clip, or load its weights as a checkpoint.",
        ) from exc
    model_cfg = data.get("model_cfg") if isinstance(data, dict) else None
    if not isinstance(model_cfg, dict) or not all(k in model_cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ModelError(
            f"Hub repo '{hub_id}' has no usable {_OPEN_CLIP_CONFIG}: it needs a 'model_cfg' with "
            "'embed_dim', 'vision_cfg' and 'text_cfg'.",
            hint="Point hf_hub_id at a repo pushed with open_clip, or load its weights as a checkpoint.",
        )
    return model_cfg


def _openclip_check_repo_architecture(arch: str, repo_cfg: Mapping[str, Any], hub_id: str) -> None:
    """A built-in architecture name must describe the repo's model; any other name is just its name."""
    import open_clip

    if arch not in open_clip.list_models():
        return
    diffs = _config_differences(open_clip.get_model_config(arch), repo_cfg)
    if diffs:
        shown = ", ".join(diffs[:_SHOWN]) + (", ..." if len(diffs) > _SHOWN else "")
        raise InvalidInputError(
            f"Hub repo '{hub_id}' holds a model whose config differs from open_clip's {arch!r}: {shown}.",
            hint="Set architecture to the open_clip name the repo's model was built as, "
            "or to a name of your own (not one of open_clip's) to take the repo's config as it is.",
        )


# Flags that say where tower weights come from at construction, not what the model is.
_CONFIG_KEYS_IGNORED = frozenset({"hf_model_pretrained", "timm_model_pretrained"})


def _config_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Keys both configs set to different values (``quick_gelu`` defaults to False on both sides).

    Keys only one side has are ignored: open_clip adds config keys over versions, so a repo pushed with
    an older open_clip lacks some without describing another model.
    """
    diffs: list[str] = []
    if not prefix:
        ours = {"quick_gelu": False, **ours}
        theirs = {"quick_gelu": False, **theirs}
    for key in sorted(set(ours) & set(theirs)):
        if key in _CONFIG_KEYS_IGNORED:
            continue
        a, b = ours[key], theirs[key]
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += _config_differences(a, b, f"{prefix}{key}.")
        elif _as_lists(a) != _as_lists(b):
            diffs.append(f"{prefix}{key}: {b!r} in the repo vs {a!r}")
    return diffs


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _openclip_from_checkpoint(
    spec: ModelSpec,
    arch: str,
    model_cfg: Mapping[str, Any],
    progress: Progress,
    checkpoint_key: str | None,
    overrides: dict[str, Any],
    extra: dict[str, Any],
) -> tuple[Any, str]:
    progress(f"loading checkpoint {Path(str(spec.checkpoint)).name}")
    ckpt = read_checkpoint(
        str(spec.checkpoint),
        checkpoint_key,
        expected_bytes=lambda: _weight_bytes("open_clip", arch),
        architecture=arch,
    )
    _record_checkpoint(ckpt, extra)
    progress(f"building {arch}")
    model = _openclip_create(arch, spec, model_cfg, overrides)
    where = f"Checkpoint '{ckpt.path}'" + (f" [{ckpt.key!r}]" if ckpt.key else "")
    progress(f"checking checkpoint against {arch}")
    _check_fits(model, ckpt.state_dict, where, spec)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:  # a model's own load hooks can still refuse what the key check passed
        raise CheckpointMismatchError(
            f"{where} does not fit open_clip architecture {arch!r}: {_first_line(exc)}.",
            hint=_head_hint(model, ckpt.state_dict, spec),
        ) from exc
    return model, str(ckpt.path)


def _openclip_tokenizer(name: str, info: Mapping[str, Any]) -> Any:
    """``open_clip.get_tokenizer(name)``, checked to be the tokenizer the model config names."""
    import open_clip
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    hf_name = info["hf_tokenizer_name"]
    label = f"tokenizer {hf_name!r}" if hf_name else "open_clip's CLIP BPE tokenizer"
    with _tokenizer_errors(label):
        tokenizer = open_clip.get_tokenizer(name)
    # open_clip falls back silently (to a tokenizer named after the repo, or SigLIP's sentencepiece
    # vocabularies); a model published with another tokenizer than it was trained with is wrong.
    expected = HFTokenizer if hf_name else SimpleTokenizer
    got_name = getattr(getattr(tokenizer, "tokenizer", None), "name_or_path", hf_name)
    if not isinstance(tokenizer, expected) or (hf_name and got_name != hf_name):
        raise ModelError(
            f"open_clip gave a {type(tokenizer).__name__} ({got_name!r}) for {name!r}, not the {label} "
            "its config names.",
            hint="hubui does not substitute tokenizers; set text_cfg.hf_tokenizer_name in the model config.",
        )
    return tokenizer


@contextmanager
def _tokenizer_errors(label: str) -> Iterator[None]:
    """Translate a tokenizer load failure (transformers wraps the Hub's errors) into a hubui error."""
    import httpx
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = constants.ENDPOINT
    try:
        yield
    # transformers raises OSError / ValueError (and others) around the Hub's own errors.
    except Exception as exc:
        causes = exception_chain(exc)
        text = " ".join(str(c) for c in causes)
        hint = "hubui never substitutes another tokenizer: make this one downloadable, or fix the model config."
        if any(isinstance(c, (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError)) for c in causes) or (
            "not a valid model identifier" in text
        ):
            raise ModelNotFoundError(f"The model's {label} was not found at {endpoint}.", hint=hint) from exc
        if any(isinstance(c, (LocalEntryNotFoundError, httpx.HTTPError)) for c in causes) or "couldn't connect" in text:
            raise HubUnreachableError(
                f"Could not download the model's {label} from {endpoint}: {_first_line(exc)}."
            ) from exc
        raise ModelError(
            f"Could not load the model's {label}: {type(exc).__name__}: {_first_line(exc)}.", hint=hint
        ) from exc


# One row per library: a loader taking (spec, progress, checkpoint_key).
_LOADERS: dict[str, Callable[[ModelSpec, Progress, str | None], LoadedModel]] = {
    "timm": _load_timm,
    "open_clip": _load_open_clip,
}

__all__ = [
    "CHECKPOINT_KEYS",
    "CHECKPOINT_SUFFIXES",
    "INTERPOLATIONS",
    "OPEN_CLIP_INTERPOLATIONS",
    "OPEN_CLIP_RESIZE_MODES",
    "Checkpoint",
    "load_model",
    "read_checkpoint",
]
