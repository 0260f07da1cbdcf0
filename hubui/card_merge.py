"""What to do with the README already in a repo: keep, replace or merge it; the dry run's diff; and the
``python`` blocks of a card (its usage snippet)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import yaml
from huggingface_hub import ModelCard, ModelCardData

from hubui.card_parity import _FENCE_RE, _PARITY_END, _PARITY_START, PARITY_HEADING
from hubui.card_rules import raise_for_card_text
from hubui.card_yaml import load_card_metadata
from hubui.errors import InvalidCardError, InvalidInputError

MergeMode = Literal["keep", "replace", "merge"]
MERGE_MODES: tuple[str, ...] = ("keep", "replace", "merge")


def _heading_level(line: str) -> int | None:
    match = re.match(r"^ {0,3}(#{1,6})[ \t]+\S", line)
    return len(match.group(1)) if match else None


def _find_section(body: str) -> tuple[int, int] | None:
    """Span of the "Conversion and parity" section in a card body: its markers, else its heading."""
    start = body.find(_PARITY_START)
    if start != -1:
        end = body.find(_PARITY_END, start)
        if end != -1:
            return start, end + len(_PARITY_END)
    lines = body.splitlines(keepends=True)
    offset = 0
    fence: str | None = None
    begin: int | None = None
    level = 0
    for line in lines:
        match = _FENCE_RE.match(line)
        if match:
            fence = match.group(1) if fence is None else None
        elif fence is None:
            lvl = _heading_level(line)
            if begin is None and lvl is not None and line.strip().lstrip("#").strip().lower() == PARITY_HEADING.lower():
                begin, level = offset, lvl
            elif begin is not None and lvl is not None and lvl <= level:
                return begin, offset
        offset += len(line)
    return (begin, len(body)) if begin is not None else None


def _parity_block(card_text: str) -> str:
    span = _find_section(card_text)
    return card_text[span[0] : span[1]] if span else ""


def merge_card(existing: str | None, new: ModelCard, mode: MergeMode) -> str | None:
    """Decide the README to upload, given the one already in the repo.

    Args:
        existing: The repo's current README text, or ``None`` when it has none.
        new: The card hubui built.
        mode: ``"keep"``: an existing README stays untouched (returns ``None``). ``"replace"``: the
            new card replaces it. ``"merge"``: the existing text stays, its metadata is updated
            (new keys win) and the "Conversion and parity" section is replaced, or appended when
            the existing card has none.

    Returns:
        The README text to upload, or ``None`` for "do not upload a README". Without an existing
        README every mode returns the new card.

    Raises:
        InvalidInputError: If ``mode`` is not one of ``keep``, ``replace``, ``merge``.
        InvalidCardError: If ``mode`` is ``merge`` and the existing metadata cannot be parsed, or is over the
            limits of :mod:`hubui.card_yaml` (a YAML alias bomb, a README over 1 MiB).
    """
    if mode not in MERGE_MODES:
        raise InvalidInputError(f"Unknown README mode {mode!r}.", f"Use one of: {', '.join(MERGE_MODES)}.")
    raise_for_card_text(str(new))  # the Hub's own metadata rules: never push a card it would refuse
    if existing is None or not existing.strip():
        return str(new)
    if mode == "keep":
        return None
    if mode == "replace":
        return str(new)
    # Someone else's YAML: parsed with limits first, so that ModelCard's own parse below is known to be bounded.
    load_card_metadata(existing, "The README already in the repo")
    try:
        merged = ModelCard(existing)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidCardError(
            f"The README already in the repo has metadata that cannot be parsed: {exc}",
            "Fix it on the Hub, or push with the 'replace' README mode.",
        ) from exc
    metadata = merged.data.to_dict()
    metadata.update(new.data.to_dict())
    merged.data = ModelCardData(**metadata)
    section = _parity_block(new.text)
    body = merged.text
    span = _find_section(body)
    if span is not None:
        body = body[: span[0]] + section + body[span[1] :]
    elif section:
        body = body.rstrip("\n") + "\n\n" + section + "\n"
    merged.text = body
    return str(merged)


def card_diff(old: str | None, new: str) -> str:
    """A unified diff between the README on the Hub and the one a push would upload, for dry runs.

    Args:
        old: The current README, or ``None`` when the repo has none.
        new: The README that would be uploaded.

    Returns:
        The diff text; empty when nothing changes.
    """

    def lines(text: str) -> list[str]:
        out = text.splitlines(keepends=True)
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        return out

    return "".join(
        difflib.unified_diff(
            lines(old or ""),
            lines(new),
            fromfile="README.md (on the Hub)" if old is not None else "/dev/null",
            tofile="README.md (new)",
        )
    )


def _iter_python_blocks(markdown: str) -> Iterable[str]:
    """The ``python`` fenced blocks of a Markdown text (used by tests and the UI preview)."""
    for match in re.finditer(r"^(`{3,})python[ \t]*\n(.*?)\n\1[ \t]*$", markdown, re.MULTILINE | re.DOTALL):
        yield match.group(2)


def python_blocks(markdown: str) -> Sequence[str]:
    """Return the code of every ``python`` fenced block in ``markdown``, in order.

    Args:
        markdown: Card text.

    Returns:
        The code of each block, without the fences.
    """
    return list(_iter_python_blocks(markdown))


__all__ = ["MERGE_MODES", "MergeMode", "card_diff", "merge_card", "python_blocks"]
