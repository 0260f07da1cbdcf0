"""Search a library's model zoo and read a model's facts without downloading its weights.

Each library plugs in through one entry of ``_BACKENDS`` (an index of names and a facts function),
so adding open_clip means adding ``_openclip_index`` / ``_openclip_facts`` and one table row; the
public functions stay as they are.

Example:
    >>> [e.name for e in search_models("timm", "resnet18.*in1k", pretrained=True)][:2]
    ['resnet18.a1_in1k', 'resnet18.a2_in1k']
    >>> model_facts("timm", "resnet50").num_params
    25557032
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hubui.errors import InvalidInputError, ModelNotFoundError
from hubui.spec import LIBRARIES

_WILDCARDS = frozenset("*?[")
_SUGGESTIONS = 5


@dataclass(frozen=True)
class CatalogEntry:
    """One searchable name of a model zoo.

    Args:
        name: The full name: ``"resnet50"`` or, for a pretrained tag, ``"resnet50.a1_in1k"``.
        architecture: The architecture part (``"resnet50"``).
        tag: The pretrained tag (``"a1_in1k"``), or None for a bare architecture.
        library: ``"timm"`` or ``"open_clip"``.
    """

    name: str
    architecture: str
    tag: str | None
    library: str


@dataclass(frozen=True)
class ModelFacts:
    """What is known about a model before any weights are downloaded.

    Preprocessing, license and origin come from the library's pretrained config: for an
    ``arch.tag`` name that tag's config, for a bare architecture the default tag's (named in ``tag``),
    or the architecture's defaults when it has no pretrained weights (``tag`` is None).

    Args:
        library: ``"timm"``.
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

    def to_dict(self) -> dict[str, Any]:
        """The facts as a JSON-ready dict (tuples become lists)."""
        return {
            key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()
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


# --- public API -------------------------------------------------------------------------------------
def search_models(
    library: str, pattern: str = "", pretrained: bool = False, limit: int | None = None
) -> list[CatalogEntry]:
    """Search a model zoo by name. Answers from an index built once per process; builds no model.

    Args:
        library: ``"timm"`` (``"open_clip"`` lands in a later change).
        pattern: A wildcard pattern (``*``, ``?``, ``[...]``) matched against the whole name, or a
            plain substring. Both ignore case. Empty matches everything.
        pretrained: Search ``arch.tag`` names of pretrained weights instead of architectures.
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


def resolve_model_name(library: str, name: str) -> CatalogEntry:
    """Check that a model name exists in a zoo and split it into architecture and tag.

    Args:
        library: ``"timm"``.
        name: ``"arch"`` or ``"arch.tag"``.

    Returns:
        The catalog entry for the name.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or the name is empty.
        ModelNotFoundError: No such architecture or pretrained tag; the hint names close matches.
    """
    index = _backend(library).index()
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"Model name must be a non-empty string: {name!r}.")
    name = name.strip()
    arch, _, tag = name.partition(".")
    if arch not in index.tags:
        candidates = [e.name for e in (index.pretrained if tag else index.architectures)]
        raise ModelNotFoundError(f"Unknown {library} model {name!r}.", hint=_suggestion_hint(name, candidates, library))
    if not tag:
        return CatalogEntry(name=arch, architecture=arch, tag=None, library=library)
    if tag not in index.tags[arch]:
        known = index.tags[arch]
        if not known:
            hint = f"{arch!r} has no pretrained weights in {library}; load a checkpoint or use random weights."
        else:
            hint = _suggestion_hint(tag, list(known), library, listing=f"Tags of {arch!r}")
        raise ModelNotFoundError(f"{library} model {arch!r} has no pretrained tag {tag!r}.", hint=hint)
    return CatalogEntry(name=f"{arch}.{tag}", architecture=arch, tag=tag, library=library)


def model_facts(library: str, name: str) -> ModelFacts:
    """Parameter count, preprocessing, license and origin of a model, without downloading weights.

    The model is built on the ``meta`` device (no memory for weights, so even huge models are cheap);
    only when an architecture cannot be built there is it built on the CPU. Results are cached.

    Args:
        library: ``"timm"``.
        name: ``"arch"`` or ``"arch.tag"``.

    Returns:
        The model's facts.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or the name is empty.
        ModelNotFoundError: No such architecture or pretrained tag.
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
            f"Library {library!r} is not supported yet: open_clip support lands in a later change.",
            hint="Use library 'timm' for now.",
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
    close = difflib.get_close_matches(value.lower(), candidates, n=_SUGGESTIONS, cutoff=0.6)
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


# One row per library: adding open_clip is one more row and its two functions.
_BACKENDS: dict[str, _Backend] = {
    "timm": _Backend(index=_timm_index, facts=_timm_facts),
}

__all__ = ["CatalogEntry", "ModelFacts", "model_facts", "resolve_model_name", "search_models"]
