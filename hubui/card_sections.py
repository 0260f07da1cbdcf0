"""The card's writing-guidance sections (intended use, limitations, training data, evaluation): their headings,
the short prompts a form shows as placeholders, the checks on their text, and finding them in a README.

Each section is an optional :class:`~hubui.card.CardFields` field of Markdown. A filled one is rendered under its
own ``##`` heading (:data:`SECTION_HEADINGS`); an empty one is left out of the card. Reading a README back
(:func:`hubui.card_parse.fields_from_readme`) finds them under hubui's headings and under those of the Hub's
Model Card Writing Tool ("Uses", "Bias, Risks, and Limitations", "Training Data", "Evaluation").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hubui.card_parity import _FENCE_RE, PARITY_HEADING

CARD_SECTIONS: tuple[str, ...] = ("intended_use", "limitations", "training_data", "evaluation")
"""The section fields of :class:`~hubui.card.CardFields`, in the order the card shows them."""

SECTION_HEADINGS: dict[str, str] = {
    "intended_use": "Intended use",
    "limitations": "Limitations",
    "training_data": "Training data",
    "evaluation": "Evaluation",
}
"""Section field -> the heading it is rendered under (``## <heading>``)."""

SECTION_PROMPTS: dict[str, str] = {
    "intended_use": (
        "What is the model for, and for whom? Name the uses it is suited for, and those it is not "
        "(out-of-scope or harmful uses)."
    ),
    "limitations": (
        "Where does it fail or mislead? Known biases and risks, the inputs it was not tested on, and what users "
        "should check before relying on it."
    ),
    "training_data": (
        "What data were the weights trained on: datasets (with links), their size and licence, and any "
        "filtering. For converted weights, those of the original model."
    ),
    "evaluation": (
        "How was it evaluated: datasets and splits, metrics, and the results (put the numbers in the results "
        "table as well, so the Hub shows them). Say what was not evaluated."
    ),
}
"""Section field -> a short prompt for people writing it (a placeholder text for a form)."""

EVAL_PROMPT = (
    "One row per result: task (image-classification), dataset id (imagenet-1k), dataset name (ImageNet-1k), "
    "metric (accuracy) and value (0.713). The Hub shows them on the model page."
)
"""A prompt for the evaluation results table (the card's ``model-index``)."""

# Headings of existing READMEs that hold a section (lowercase, without '#'), hubui's own first. The Model Card
# Writing Tool's template (huggingface_hub's modelcard_template.md) nests "Direct Use" under "Uses" and
# "Training Data" under "Training Details".
SECTION_ALIASES: dict[str, tuple[str, ...]] = {
    "intended_use": ("intended use", "intended uses", "uses", "direct use", "intended uses & limitations"),
    "limitations": (
        "limitations",
        "bias, risks, and limitations",
        "bias, risks and limitations",
        "risks and limitations",
        "known limitations",
    ),
    "training_data": ("training data", "training dataset", "training datasets"),
    "evaluation": ("evaluation", "evaluation results", "results"),
}

_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")


def headings(markdown: str) -> Iterator[tuple[int, int, str, int]]:
    """Every ATX heading outside code fences: ``(line index, level, text, character offset)``."""
    fence: str | None = None
    offset = 0
    for index, line in enumerate(markdown.splitlines(keepends=True)):
        match = _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
        elif fence is None:
            heading = _HEADING_RE.match(line.rstrip("\r\n"))
            if heading:
                yield index, len(heading.group(1)), heading.group(2).strip(), offset
        offset += len(line)


def check_section_text(name: str, text: str) -> str | None:
    """Why ``text`` cannot be the section ``name``'s Markdown, or None when it can.

    A ``#`` or ``##`` heading inside a section would start a new section of the card (and end this one for
    whoever reads it back), and one named like the parity section would be taken for it by a later merge.
    """
    for _, level, title, _ in headings(text):
        if level <= 2:
            return f"holds the level-{level} heading {title!r}, which would start a new section of the card"
        if title.lower() == PARITY_HEADING.lower():
            return f"holds a heading named {PARITY_HEADING!r}, the section hubui writes itself"
    return None


def find_sections(body: str) -> dict[str, str]:
    """The sections of a card body, by field: the text under the first heading that names each one, up to the
    next heading of the same or a higher level (its sub-headings stay in it). Empty sections are left out."""
    found = list(headings(body))
    out: dict[str, str] = {}
    for i, (_, level, title, offset) in enumerate(found):
        key = next((k for k, names in SECTION_ALIASES.items() if title.lower() in names), None)
        if key is None or key in out:
            continue
        start = body.index("\n", offset) + 1 if "\n" in body[offset:] else len(body)
        end = next((o for _, lvl, _, o in found[i + 1 :] if lvl <= level), len(body))
        text = body[start:end].strip("\n").rstrip()
        if text.strip():
            out[key] = _demote(text, level)
    return out


def _demote(text: str, level: int) -> str:
    """Sub-headings of a section found at another ``level`` than 2 moved as the section moves to level 2: a
    "### Training Data" section's "#### Sources" becomes "### Sources" under "## Training data"."""
    shift = level - 2
    if shift == 0:
        return text
    lines = text.splitlines(keepends=True)
    for index, lvl, _, _ in headings(text):
        # Every heading inside is deeper than ``level`` (a shallower one would have ended the section).
        stripped = lines[index].lstrip(" ")
        lines[index] = "#" * min(lvl - shift, 6) + stripped[lvl:]
    return "".join(lines)


__all__ = [
    "CARD_SECTIONS",
    "EVAL_PROMPT",
    "SECTION_ALIASES",
    "SECTION_HEADINGS",
    "SECTION_PROMPTS",
    "check_section_text",
    "find_sections",
]
