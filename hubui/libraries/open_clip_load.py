"""Load an open_clip model from a pretrained tag, a Hub repo, a local checkpoint, or random weights.

What :meth:`hubui.libraries.open_clip.OpenClip.load` does, after the generic spec checks of
:func:`hubui.loading.load_model` and :func:`check_spec` here:

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
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from hubui.checkpoints import check_fits, read_checkpoint, record_checkpoint, seeded
from hubui.errors import (
    CheckpointMismatchError,
    HubUnreachableError,
    InvalidInputError,
    InvalidRepoIdError,
    ModelError,
    ModelNotFoundError,
    exception_chain,
    first_line,
)
from hubui.facts import CatalogEntry
from hubui.hub_errors import hub_errors
from hubui.libraries.open_clip_catalog import _weight_bytes, open_clip_tokenizer_info, split_open_clip_hf_hub
from hubui.libraries.open_clip_names import _OPEN_CLIP_CONFIG, _OPEN_CLIP_FILES_HINT, OPEN_CLIP_RESIZE_MODES
from hubui.spec import LoadedModel, ModelSpec

Progress = Callable[[str], None]

_SHOWN = 5  # config differences named in a message


def check_spec(spec: ModelSpec) -> None:
    """Refuse the overrides open_clip has no such thing as, and resize modes it does not know.

    Args:
        spec: The spec, past the generic checks.

    Raises:
        InvalidInputError: ``crop_pct`` or ``num_classes`` set, or an unknown ``resize_mode``.
    """
    for flag, hint in (
        ("crop_pct", "open_clip crops by resize_mode ('shortest', 'longest', 'squash')."),
        ("num_classes", "open_clip models are image-text embedding models without a classifier."),
    ):
        if getattr(spec, flag) is not None:
            raise InvalidInputError(
                f"{flag}={getattr(spec, flag)!r} applies to timm models, not open_clip.",
                hint=f"Leave it unset; {hint}",
            )
    if spec.resize_mode is not None and spec.resize_mode not in OPEN_CLIP_RESIZE_MODES:
        raise InvalidInputError(
            f"Unknown open_clip resize_mode {spec.resize_mode!r}.",
            hint=f"Use one of: {', '.join(OPEN_CLIP_RESIZE_MODES)}.",
        )


def _resolve(name: str) -> CatalogEntry:
    """``name`` checked against open_clip's zoo (what ``hubui.catalog.resolve_model_name`` does for it)."""
    from hubui.catalog_names import resolve_name
    from hubui.libraries import get_source  # by name: importing open_clip.py from its part would be a cycle

    return resolve_name(get_source("open_clip"), name)


def _head_hint() -> str:
    """The hint for a checkpoint that does not fit: open_clip has no classifier whose size could be the cause."""
    return (
        "Pick the open_clip architecture the checkpoint was trained with "
        "(`hubui models open_clip PATTERN` lists them); open_clip models have no classifier to resize."
    )


def load(spec: ModelSpec, progress: Progress, checkpoint_key: str | None) -> LoadedModel:
    """Build the open_clip model ``spec`` names, with its weights, tokenizer and preprocessing config.

    Args:
        spec: What to load (checked by :func:`hubui.loading.load_model` and :func:`check_spec`).
        progress: Called with short status lines.
        checkpoint_key: The nesting key of a checkpoint's tensors, or None for the first of the usual ones.

    Returns:
        The model (eval, fp32, CPU) with ``pretrained_cfg``, ``data_config`` and ``extra`` filled.

    Raises:
        InvalidInputError: A tag in the architecture, a QuickGELU mismatch, a Hub repo whose config differs.
        ModelNotFoundError: Unknown architecture or tag, the Hub has no such repo, weights or tokenizer.
        HubUnreachableError: The Hub (``HF_ENDPOINT``) could not be reached.
        CheckpointError: The checkpoint cannot be read safely.
        CheckpointMismatchError: The weights do not fit the architecture.
        ModelError: open_clip could not build the model, or gave another tokenizer than the config names.
    """
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
        entry = _resolve(spec.architecture)
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
    errors = hub_errors(hf_text, f"the text tower config of {arch!r}") if hf_text else nullcontext()
    with seeded(spec.seed), errors:
        # pretrained_text=False: a Hugging Face text tower would otherwise download its own weights.
        return open_clip.create_model(
            arch, pretrained=None, pretrained_text=False, force_preprocess_cfg=force, weights_only=True
        )


def _openclip_from_tag(spec: ModelSpec, arch: str, progress: Progress, overrides: dict[str, Any]) -> tuple[Any, str]:
    import open_clip

    entry = _resolve(f"{arch}:{spec.pretrained}")
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
        with hub_errors(repo_id, what, missing_hint=_OPEN_CLIP_FILES_HINT, pretrained=entry.name):
            _openclip_download_weights(repo_id, filename)
        source = f"hf-hub:{repo_id}"
    progress(f"building {arch} with weights {tag}")
    with hub_errors(repo_id or arch, what, missing_hint=_OPEN_CLIP_FILES_HINT):
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
    with hub_errors(hub_id, _OPEN_CLIP_CONFIG, missing_hint=_OPEN_CLIP_FILES_HINT):
        config_file = hf_hub_download(hub_id, _OPEN_CLIP_CONFIG)
    model_cfg = _openclip_read_config(Path(config_file), hub_id)
    _openclip_check_repo_architecture(spec.architecture, model_cfg, hub_id)
    progress(f"downloading {hub_id}")
    with hub_errors(hub_id, "open_clip weights", missing_hint=_OPEN_CLIP_FILES_HINT):
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
            f"Hub repo '{hub_id}' has an unreadable {_OPEN_CLIP_CONFIG}: {first_line(exc)}.",
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
        expected_bytes=lambda: _weight_bytes(arch),
        architecture=arch,
    )
    record_checkpoint(ckpt, extra)
    progress(f"building {arch}")
    model = _openclip_create(arch, spec, model_cfg, overrides)
    where = f"Checkpoint '{ckpt.path}'" + (f" [{ckpt.key!r}]" if ckpt.key else "")
    progress(f"checking checkpoint against {arch}")
    check_fits(model, ckpt.state_dict, where, spec, hint=_head_hint)
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:  # a model's own load hooks can still refuse what the key check passed
        raise CheckpointMismatchError(
            f"{where} does not fit open_clip architecture {arch!r}: {first_line(exc)}.",
            hint=_head_hint(),
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
                f"Could not download the model's {label} from {endpoint}: {first_line(exc)}."
            ) from exc
        raise ModelError(
            f"Could not load the model's {label}: {type(exc).__name__}: {first_line(exc)}.", hint=hint
        ) from exc


__all__ = ["check_spec", "load"]
