"""Search a library's model zoo and read a model's facts without downloading its weights.

Each source library (:mod:`hubui.libraries`) supplies its zoo's index (every architecture and pretrained name),
the facts of one name, and the separator between architecture and tag in a pretrained name (each library's
module says which, and why the split is unambiguous). The functions here are the same for all of them: they
answer from an index built once per process and build no model, except ``model_facts``, which builds one on the
``meta`` device.

Example:
    >>> from hubui.libraries import DEFAULT_SOURCE, moved_names
    >>> [e.name for e in search_models(DEFAULT_SOURCE, "resnet18.*in1k", pretrained=True)][:2]
    ['resnet18.a1_in1k', 'resnet18.a2_in1k']
    >>> model_facts(DEFAULT_SOURCE, "resnet50").num_params
    25557032
"""

from __future__ import annotations

import fnmatch
import functools

from hubui.catalog_names import resolve_name
from hubui.errors import InvalidInputError
from hubui.facts import CatalogEntry, ModelFacts, PretrainedTag
from hubui.libraries import get_source, moved_names

_WILDCARDS = frozenset("*?[")

# Library-specific names that lived here before hubui.libraries; kept as aliases for one release.
_MOVED = frozenset(
    {
        "open_clip_tokenizer_info",
        "split_open_clip_hf_hub",
    }
)

__getattr__ = moved_names(__name__, _MOVED)


# --- public API -------------------------------------------------------------------------------------
def search_models(
    library: str, pattern: str = "", pretrained: bool = False, limit: int | None = None
) -> list[CatalogEntry]:
    """Search a model zoo by name. Answers from an index built once per process; builds no model.

    Args:
        library: A registered library (:func:`hubui.libraries.source_names`).
        pattern: A wildcard pattern (``*``, ``?``, ``[...]``) matched against the whole name, or a
            plain substring. Both ignore case. Empty matches everything.
        pretrained: Search names of pretrained weights instead of architectures: ``arch<separator>tag``
            (the library's ``Source.separator``: ``arch.tag``, ``arch:tag``).
        limit: Return at most this many entries (a positive integer), or all when None.

    Returns:
        Matching entries. For a substring, the exact match comes first, then names starting with it,
        then the rest, each in the library's order; for a wildcard, the library's order.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or ``pattern`` / ``limit``
            is malformed.
    """
    source = get_source(library)
    if not isinstance(pattern, str):
        raise InvalidInputError(f"Search pattern must be a string, not {type(pattern).__name__}: {pattern!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInputError(f"limit must be a positive integer or None: {limit!r}.", hint="Pass e.g. limit=20.")
    index = source.index()
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
    """The catalog name of ``architecture`` with ``tag`` (``arch<separator>tag``, the library's separator).

    Raises:
        InvalidInputError: For an unknown library.
    """
    return f"{architecture}{get_source(library).separator}{tag}" if tag else architecture


def resolve_model_name(library: str, name: str) -> CatalogEntry:
    """Check that a model name exists in a zoo and split it into architecture and tag.

    Args:
        library: A registered library (:func:`hubui.libraries.source_names`).
        name: ``"arch"``, or ``"arch<separator>tag"``. Tags are normalised as the library does
            (``Source.clean_tag``).

    Returns:
        The catalog entry for the name, with the tag as the library spells it.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or the name is empty.
        ModelNotFoundError: No such architecture or pretrained tag; the hint names close matches.
    """
    return resolve_name(get_source(library), name)


def model_facts(library: str, name: str) -> ModelFacts:
    """Parameter count, preprocessing, license and origin of a model, without downloading weights.

    The model is built on the ``meta`` device (no memory for weights, so even huge models are cheap);
    only when an architecture cannot be built there is it built on the CPU. Results are cached.

    Args:
        library: A registered library (:func:`hubui.libraries.source_names`).
        name: ``"arch"``, or ``"arch<separator>tag"``.

    Returns:
        The model's facts.

    Raises:
        InvalidInputError: The library is unknown or not supported yet, or the name is empty.
        ModelNotFoundError: No such architecture or pretrained tag.
        HubUnreachableError: open_clip architectures whose text tower is a Hugging Face model
            (``roberta-ViT-B-32``...) need that model's config.json from the Hub to be built.
        ModelError: The library could not build the architecture.
    """
    entry = resolve_model_name(library, name)
    return _cached_facts(library, entry)


@functools.lru_cache(maxsize=256)
def _cached_facts(library: str, entry: CatalogEntry) -> ModelFacts:
    return get_source(library).facts(entry)


def _substring_rank(entry: CatalogEntry, needle: str) -> int:
    name = entry.name.lower()
    if name == needle or entry.architecture.lower() == needle:
        return 0
    return 1 if name.startswith(needle) else 2


__all__ = [
    "CatalogEntry",
    "ModelFacts",
    "PretrainedTag",
    "model_facts",
    "pretrained_name",
    "resolve_model_name",
    "search_models",
]
