"""Search a library's model zoo and read a model's facts without downloading its weights.

Each library plugs in through one entry of ``_BACKENDS`` (an index of names, a facts function and
the separator between architecture and tag); the public functions stay the same for all of them.

Names of pretrained weights:

* timm: ``"arch.tag"`` (``"resnet18.a1_in1k"``), as timm itself writes them.
* open_clip: ``"arch:tag"`` (``"ViT-B-32:laion2b_s34b_b79k"``), as ``open_clip.list_pretrained(as_str=True)``
  writes them. open_clip architecture names contain dots and dashes (``"EVA02-B-16"``,
  ``"ViT-B-32-quickgelu"``) but never a colon, so the split is unambiguous. ``CatalogEntry`` also carries
  ``architecture`` and ``tag`` separately, which is what ``ModelSpec(architecture=..., pretrained=...)`` takes.

Example:
    >>> [e.name for e in search_models("timm", "resnet18.*in1k", pretrained=True)][:2]
    ['resnet18.a1_in1k', 'resnet18.a2_in1k']
    >>> model_facts("timm", "resnet50").num_params
    25557032
    >>> search_models("open_clip", "ViT-B-32:laion2b*", pretrained=True)[0].tag
    'laion2b_e16'
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hubui.errors import HubUnreachableError, InvalidInputError, ModelError, ModelNotFoundError
from hubui.spec import LIBRARIES

_WILDCARDS = frozenset("*?[")
_SUGGESTIONS = 5


@dataclass(frozen=True)
class CatalogEntry:
    """One searchable name of a model zoo.

    Args:
        name: The full name: ``"resnet50"`` or, for a pretrained tag, ``"resnet50.a1_in1k"`` (timm) /
            ``"ViT-B-32:laion2b_s34b_b79k"`` (open_clip).
        architecture: The architecture part (``"resnet50"``, ``"ViT-B-32"``).
        tag: The pretrained tag (``"a1_in1k"``), or None for a bare architecture.
        library: ``"timm"`` or ``"open_clip"``.
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
        library: ``"timm"`` or ``"open_clip"``.
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
class _Index:
    """Every name of one library, built once per process."""

    architectures: tuple[CatalogEntry, ...]
    pretrained: tuple[CatalogEntry, ...]
    tags: dict[str, tuple[str, ...]]  # architecture -> its pretrained tags, sorted


@dataclass(frozen=True)
class _Backend:
    index: Callable[[], _Index]
    facts: Callable[[CatalogEntry], ModelFacts]
    separator: str  # between architecture and tag in a pretrained name
    clean_tag: Callable[[str], str] = str  # the library's own tag normalisation


# --- public API -------------------------------------------------------------------------------------
def search_models(
    library: str, pattern: str = "", pretrained: bool = False, limit: int | None = None
) -> list[CatalogEntry]:
    """Search a model zoo by name. Answers from an index built once per process; builds no model.

    Args:
        library: ``"timm"`` or ``"open_clip"``.
        pattern: A wildcard pattern (``*``, ``?``, ``[...]``) matched against the whole name, or a
            plain substring. Both ignore case. Empty matches everything.
        pretrained: Search names of pretrained weights instead of architectures: ``arch.tag`` for
            timm, ``arch:tag`` for open_clip.
        limit: Return at most this many entries (a positive integer), or all when None.

    Returns:
        Matching entries. For a substring, the exact match comes first, then names starting with it,
        then the rest, each in the library's order; for a wildcard, the library's order.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or ``pattern`` / ``limit``
            is malformed.
    """
    backend = _backend(library)
    if not isinstance(pattern, str):
        raise InvalidInputError(f"Search pattern must be a string, not {type(pattern).__name__}: {pattern!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInputError(f"limit must be a positive integer or None: {limit!r}.", hint="Pass e.g. limit=20.")
    index = backend.index()
    entries = index.pretrained if pretrained else index.architectures
    needle = pattern.strip().lower()
    if not needle:
        found = list(entries)
    elif _WILDCARDS.intersection(needle):
        found = [e for e in entries if fnmatch.fnmatchcase(e.name.lower(), needle)]
    else:
        found = [e for e in entries if needle in e.name.lower()]
        found.sort(key=lambda e: _substring_rank(e, needle))
    return found if limit is None else found[:limit]


def pretrained_name(library: str, architecture: str, tag: str | None) -> str:
    """The catalog name of ``architecture`` with ``tag`` (``arch.tag`` for timm, ``arch:tag`` for open_clip).

    Raises:
        InvalidInputError: For an unknown library.
    """
    return f"{architecture}{_backend(library).separator}{tag}" if tag else architecture


def resolve_model_name(library: str, name: str) -> CatalogEntry:
    """Check that a model name exists in a zoo and split it into architecture and tag.

    Args:
        library: ``"timm"`` or ``"open_clip"``.
        name: ``"arch"``, or ``"arch.tag"`` (timm) / ``"arch:tag"`` (open_clip). open_clip tags are
            normalised as open_clip does (lower case, ``-`` read as ``_``).

    Returns:
        The catalog entry for the name, with the tag as the library spells it.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or the name is empty.
        ModelNotFoundError: No such architecture or pretrained tag; the hint names close matches.
    """
    backend = _backend(library)
    index = backend.index()
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"Model name must be a non-empty string: {name!r}.")
    name = name.strip()
    if library == "open_clip" and name.startswith("hf-hub:"):
        raise ModelNotFoundError(
            f"{name!r} is a Hub repo, not a name in open_clip's catalog.",
            hint=f"Load it with hf_hub_id={name.removeprefix('hf-hub:')!r} (and a name for it as architecture).",
        )
    sep = backend.separator
    arch, _, tag = name.partition(sep)
    if arch not in index.tags:
        candidates = [e.name for e in (index.pretrained if tag else index.architectures)]
        raise ModelNotFoundError(f"Unknown {library} model {name!r}.", hint=_suggestion_hint(name, candidates, library))
    if not tag:
        return CatalogEntry(name=arch, architecture=arch, tag=None, library=library)
    if tag not in index.tags[arch] and backend.clean_tag(tag) in index.tags[arch]:
        tag = backend.clean_tag(tag)
    if tag not in index.tags[arch]:
        known = index.tags[arch]
        if not known:
            hint = f"{arch!r} has no pretrained weights in {library}; load a checkpoint or use random weights."
        else:
            hint = _suggestion_hint(tag, list(known), library, listing=f"Tags of {arch!r}")
        raise ModelNotFoundError(f"{library} model {arch!r} has no pretrained tag {tag!r}.", hint=hint)
    return CatalogEntry(name=f"{arch}{sep}{tag}", architecture=arch, tag=tag, library=library)


def model_facts(library: str, name: str) -> ModelFacts:
    """Parameter count, preprocessing, license and origin of a model, without downloading weights.

    The model is built on the ``meta`` device (no memory for weights, so even huge models are cheap);
    only when an architecture cannot be built there is it built on the CPU. Results are cached.

    Args:
        library: ``"timm"`` or ``"open_clip"``.
        name: ``"arch"``, or ``"arch.tag"`` (timm) / ``"arch:tag"`` (open_clip).

    Returns:
        The model's facts.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or the name is empty.
        ModelNotFoundError: No such architecture or pretrained tag.
        HubUnreachableError: open_clip architectures whose text tower is a Hugging Face model
            (``roberta-ViT-B-32``...) need that model's config.json from the Hub to be built.
        ModelError: The library could not build the architecture.
    """
    backend = _backend(library)
    entry = resolve_model_name(library, name)
    return _cached_facts(backend, entry)


# --- shared helpers ---------------------------------------------------------------------------------
def _backend(library: str) -> _Backend:
    if library not in LIBRARIES:
        raise InvalidInputError(f"Unknown library {library!r}.", hint=f"Use one of: {', '.join(map(repr, LIBRARIES))}.")
    backend = _BACKENDS.get(library)
    if backend is None:
        raise InvalidInputError(
            f"Library {library!r} is not supported yet.", hint=f"Use one of: {', '.join(map(repr, _BACKENDS))}."
        )
    return backend


@functools.lru_cache(maxsize=256)
def _cached_facts(backend: _Backend, entry: CatalogEntry) -> ModelFacts:
    return backend.facts(entry)


def _substring_rank(entry: CatalogEntry, needle: str) -> int:
    name = entry.name.lower()
    if name == needle or entry.architecture.lower() == needle:
        return 0
    return 1 if name.startswith(needle) else 2


def _suggestion_hint(value: str, candidates: list[str], library: str, listing: str | None = None) -> str:
    # Compare in lower case (open_clip names are mixed case: 'vit-b-32' should find 'ViT-B-32'), but
    # suggest the names as the library spells them.
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    close = [by_lower[c] for c in difflib.get_close_matches(value.lower(), by_lower, n=_SUGGESTIONS, cutoff=0.6)]
    search = f"search the catalog (`hubui models {library} PATTERN`) for the exact name."
    if close:
        return f"Did you mean {', '.join(map(repr, close))}? Otherwise {search}"
    if listing:
        shown = ", ".join(map(repr, candidates[:10]))
        more = f" and {len(candidates) - 10} more" if len(candidates) > 10 else ""
        return f"{listing}: {shown}{more}."
    return search[0].upper() + search[1:]


def _tensor_sizes(tensors: Any) -> tuple[int, int]:
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


def _paper_ids(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


# --- timm -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _timm_index() -> _Index:
    import timm

    architectures = tuple(CatalogEntry(name=a, architecture=a, tag=None, library="timm") for a in timm.list_models())
    tags: dict[str, list[str]] = {e.architecture: [] for e in architectures}
    pretrained = []
    for full in timm.list_pretrained():
        arch, _, tag = full.partition(".")
        if arch not in tags or not tag:
            continue
        tags[arch].append(tag)
        pretrained.append(CatalogEntry(name=full, architecture=arch, tag=tag, library="timm"))
    return _Index(
        architectures=architectures,
        pretrained=tuple(pretrained),
        tags={arch: tuple(sorted(t)) for arch, t in tags.items()},
    )


def _timm_build_without_weights(name: str) -> Any:
    import timm
    import torch

    try:
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False)
    # Some architectures compute values at construction (``.item()``, numpy) that meta tensors do not
    # support; whatever the reason, building on the CPU is the fallback, and it raises the real error.
    except Exception:
        return timm.create_model(name, pretrained=False)


def _timm_facts(entry: CatalogEntry) -> ModelFacts:
    model = _timm_build_without_weights(entry.name)
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    num_params = sum(p.numel() for p in model.parameters())
    fp32, fp16 = _tensor_sizes(model.state_dict().values())
    has_weights = bool(cfg.get("hf_hub_id") or cfg.get("url") or cfg.get("file"))
    return ModelFacts(
        library=entry.library,
        name=entry.name,
        architecture=entry.architecture,
        tag=(cfg.get("tag") or entry.tag) if has_weights else entry.tag,
        num_params=num_params,
        input_size=tuple(int(v) for v in cfg.get("input_size", (3, 224, 224))),
        mean=tuple(float(v) for v in cfg.get("mean", ())),
        std=tuple(float(v) for v in cfg.get("std", ())),
        interpolation=str(cfg.get("interpolation", "bicubic")),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
        crop_mode=str(cfg.get("crop_mode", "center")),
        num_classes=int(getattr(model, "num_classes", cfg.get("num_classes", 0)) or 0),
        license=cfg.get("license"),
        paper_name=cfg.get("paper_name"),
        paper_ids=_paper_ids(cfg.get("paper_ids")),
        origin_url=cfg.get("origin_url"),
        hf_hub_id=cfg.get("hf_hub_id") or None,
        pretrained_tags=_timm_index().tags.get(entry.architecture, ()),
        size_fp32_bytes=fp32,
        size_fp16_bytes=fp16,
    )


# --- open_clip --------------------------------------------------------------------------------------
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


def _openclip_index() -> _Index:
    import open_clip

    # open_clip's registry can grow at run time (open_clip.add_model_config); listing it is cheap, so
    # the index is cached per registry content rather than once per process.
    return _openclip_index_for(tuple(open_clip.list_models()), tuple(open_clip.list_pretrained()))


@functools.lru_cache(maxsize=4)
def _openclip_index_for(models: tuple[str, ...], pretrained_tags: tuple[tuple[str, str], ...]) -> _Index:
    architectures = tuple(CatalogEntry(name=a, architecture=a, tag=None, library="open_clip") for a in models)
    tags: dict[str, list[str]] = {e.architecture: [] for e in architectures}
    pretrained = []
    for arch, tag in pretrained_tags:
        if arch not in tags:  # a tag for an architecture whose config is missing cannot be built
            continue
        tags[arch].append(tag)
        pretrained.append(CatalogEntry(name=f"{arch}:{tag}", architecture=arch, tag=tag, library="open_clip"))
    return _Index(
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
            f"whose config could not be read: {_first_line(exc)}.",
            hint="Check HF_ENDPOINT and your network connection, or that the model is in the local cache.",
        ) from exc
    # Some towers compute values at construction that meta tensors do not support; whatever the
    # reason, the CPU is the fallback, and it raises the real error if there is one.
    except Exception:
        pass
    try:
        return open_clip.create_model(name, device="cpu", **kwargs), "cpu"
    except Exception as exc:
        raise ModelError(f"open_clip could not build {name!r}: {type(exc).__name__}: {_first_line(exc)}.") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


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
    fp32, fp16 = _tensor_sizes(model.state_dict().values())
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


# One row per library: an index, a facts function and the architecture/tag separator.
_BACKENDS: dict[str, _Backend] = {
    "timm": _Backend(index=_timm_index, facts=_timm_facts, separator="."),
    "open_clip": _Backend(index=_openclip_index, facts=_openclip_facts, separator=":", clean_tag=_openclip_clean_tag),
}

__all__ = [
    "CatalogEntry",
    "ModelFacts",
    "PretrainedTag",
    "model_facts",
    "open_clip_tokenizer_info",
    "resolve_model_name",
    "search_models",
    "split_open_clip_hf_hub",
]
