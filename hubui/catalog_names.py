"""Check a catalog name against a source's zoo and split it into architecture and pretrained tag.

:func:`resolve_name` is what :func:`hubui.catalog.resolve_model_name` does, for any
:class:`~hubui.libraries.base.Source`: the source gives its index, the separator between architecture and tag
(``"."`` for timm, ``":"`` for open_clip), its own tag normalisation and the names it refuses outright. A source
module calls it to resolve the names it loads without importing :mod:`hubui.catalog` (a core job module that
calls the registry), and the catalog calls it for the user's searches, so the messages are one piece of code.

This module imports no library and no core job module.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from hubui.errors import InvalidInputError, ModelNotFoundError
from hubui.facts import CatalogEntry

if TYPE_CHECKING:
    from hubui.libraries.base import Source

_SUGGESTIONS = 5


def resolve_name(source: Source, name: str) -> CatalogEntry:
    """Check that a model name exists in a source's zoo and split it into architecture and tag.

    The source's :meth:`~hubui.libraries.base.Source.index` is asked every time; each source caches its own
    (timm's once per process, open_clip's per content of its registry, which can grow at run time).

    Args:
        source: The library whose zoo is searched.
        name: ``"arch"``, or ``"arch<separator>tag"`` (``"resnet50.a1_in1k"``, ``"ViT-B-32:laion2b_s34b_b79k"``).
            A tag unknown as written is tried again as :meth:`~hubui.libraries.base.Source.clean_tag` spells it.

    Returns:
        The catalog entry for the name, with the tag as the library spells it.

    Raises:
        InvalidInputError: The name is empty.
        ModelNotFoundError: No such architecture or pretrained tag, or a name the source refuses
            (:meth:`~hubui.libraries.base.Source.check_name`); the hint names close matches.
    """
    library = source.name
    index = source.index()
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"Model name must be a non-empty string: {name!r}.")
    name = name.strip()
    source.check_name(name)
    sep = source.separator
    arch, _, tag = name.partition(sep)
    if arch not in index.tags:
        candidates = [e.name for e in (index.pretrained if tag else index.architectures)]
        raise ModelNotFoundError(f"Unknown {library} model {name!r}.", hint=suggestion_hint(name, candidates, library))
    if not tag:
        return CatalogEntry(name=arch, architecture=arch, tag=None, library=library)
    if tag not in index.tags[arch] and source.clean_tag(tag) in index.tags[arch]:
        tag = source.clean_tag(tag)
    if tag not in index.tags[arch]:
        known = index.tags[arch]
        if not known:
            hint = f"{arch!r} has no pretrained weights in {library}; load a checkpoint or use random weights."
        else:
            hint = suggestion_hint(tag, list(known), library, listing=f"Tags of {arch!r}")
        raise ModelNotFoundError(f"{library} model {arch!r} has no pretrained tag {tag!r}.", hint=hint)
    return CatalogEntry(name=f"{arch}{sep}{tag}", architecture=arch, tag=tag, library=library)


def suggestion_hint(value: str, candidates: list[str], library: str, listing: str | None = None) -> str:
    """The hint for an unknown name: close matches, else a listing of ``candidates``, else how to search.

    Args:
        value: The name (or tag) asked for.
        candidates: The names it could have meant, as the library spells them.
        library: The library, for the ``hubui models LIBRARY PATTERN`` advice.
        listing: When given and nothing is close, list the candidates under this heading (``"Tags of 'x'"``).

    Returns:
        One or two sentences.
    """
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


__all__ = ["resolve_name", "suggestion_hint"]
