"""Build a model from a pretrained tag, a Hub repo, a local checkpoint, or random weights.

``load_model`` checks the whole spec before it downloads or builds anything, then hands it to the source library
that ``spec.library`` names (:func:`hubui.libraries.get_source`). Every library returns the model in eval mode,
fp32, on the CPU, with overrides applied to its config. What each library does beyond that is documented in its
module under :mod:`hubui.libraries`.

Rules a user can rely on, whatever the library:

* Checkpoints are read without running code (:mod:`hubui.checkpoints`): ``.safetensors`` directly, pickles only
  through ``torch.load(..., weights_only=True)``. A nested checkpoint is unwrapped from the first of
  ``state_dict``, ``model``, ``state_dict_ema`` (or the ``checkpoint_key`` asked for); keys never
  come from two of them. A ``module.`` prefix (DataParallel / DDP) is stripped.
* A checkpoint must fit the architecture exactly; otherwise ``CheckpointMismatchError`` lists the
  missing, unexpected and shape-mismatched keys. hubui never replaces a checkpoint's classifier:
  ``num_classes`` must equal the checkpoint's head size (0 for a headless checkpoint).
* With a pretrained tag or Hub repo, ``num_classes`` different from the weights' head is an explicit
  request for a new classifier: the library drops the old one and the new one is random, seeded by
  ``spec.seed``; ``LoadedModel.extra["classifier_reset"]`` records it.
* Random weights (no source) are seeded by ``spec.seed``; the caller's global RNG state is untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hubui.checkpoints import CHECKPOINT_KEYS, CHECKPOINT_SUFFIXES, Checkpoint, read_checkpoint
from hubui.errors import InvalidInputError
from hubui.libraries import get_source, moved_names
from hubui.spec import LoadedModel, ModelSpec, check_label_count

if TYPE_CHECKING:
    from hubui.libraries.base import Source

Progress = Callable[[str], None]

# Library-specific names that lived here before hubui.libraries; kept as aliases for one release.
_MOVED = frozenset(
    {
        "INTERPOLATIONS",
        "OPEN_CLIP_INTERPOLATIONS",
        "OPEN_CLIP_RESIZE_MODES",
    }
)

__getattr__ = moved_names(__name__, _MOVED)


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

    Example:
        >>> from hubui.libraries import DEFAULT_SOURCE
        >>> spec = ModelSpec(DEFAULT_SOURCE, "test_resnet", seed=1, num_classes=3, label_names=("a", "b", "c"))
        >>> loaded = load_model(spec)
        >>> loaded.data_config["input_size"], loaded.label_names
        ((3, 160, 160), ['a', 'b', 'c'])
    """
    source = _check_spec(spec, checkpoint_key)
    return source.load(spec, progress or _quiet, checkpoint_key)


def _quiet(_message: str) -> None:
    return None


# --- spec checks (before any download or build) -----------------------------------------------------
def _check_spec(spec: ModelSpec, checkpoint_key: str | None) -> Source:
    """Check everything that needs no download or build, and return the spec's source library."""
    source = get_source(spec.library)
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
    # What this library has no such thing as (open_clip's crop_pct, timm's resize_mode...), before the values.
    source.check_spec(spec)
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
            check_label_count(spec, spec.num_classes)
    for key in ("mean", "std"):
        _check_norm(key, getattr(spec, key))
    if spec.interpolation is not None and spec.interpolation not in source.interpolations:
        raise InvalidInputError(
            f"Unknown {spec.library} interpolation {spec.interpolation!r}.",
            hint=f"Use one of: {', '.join(source.interpolations)}.",
        )
    if spec.crop_pct is not None and not (
        _is_real(spec.crop_pct) and math.isfinite(spec.crop_pct) and 0 < spec.crop_pct <= 1
    ):
        raise InvalidInputError(
            f"crop_pct must be a number with 0 < crop_pct <= 1: {spec.crop_pct!r}.",
            hint="E.g. 0.875 (crop 87.5% of the resized image) or 1.0 (no crop).",
        )
    return source


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


__all__ = [
    "CHECKPOINT_KEYS",
    "CHECKPOINT_SUFFIXES",
    "Checkpoint",
    "load_model",
    "read_checkpoint",
]
