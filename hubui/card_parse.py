"""Card fields from a README already on the Hub ("Load existing card"): its metadata, its evaluation results, and
the text of its description and writing-guidance sections, so that editing a card starts from what it says.

The README is someone else's input: its metadata is read with the bounded loader of :mod:`hubui.card_yaml` (an
alias bomb is refused), and each value is checked as a typed-in one would be. A value hubui would refuse is left
out of the fields and named in :attr:`LoadedCard.left_out`, so the rest of the card still loads.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub.repocard import REGEX_YAML_BLOCK
from huggingface_hub.repocard_data import model_index_to_eval_results

from hubui.card_fields import CardEvalResult, CardFields, validate_fields
from hubui.card_parity import _FENCE_RE
from hubui.card_rules import check_metadata
from hubui.card_sections import find_sections, headings
from hubui.card_yaml import load_card_metadata
from hubui.errors import InvalidCardError

_LISTS = ("language", "tags", "datasets")
_EVAL_KEYS = tuple(f.name for f in dataclasses.fields(CardEvalResult))
# hubui's own parity-override note sits between the title and the description (see hubui.card.build_card).
_OVERRIDE_RE = re.compile(r"\A> \[!WARNING\]\r?\n> \*\*Parity override:\*\*.*?(?:\n(?!>)|\Z)", re.DOTALL)


@dataclass(frozen=True)
class LoadedCard:
    """The card fields read from a README, and what of it could not be taken.

    Args:
        fields: The fields (``usage`` is never restored: the snippet is written for the repo pushed to).
        left_out: One line per value hubui would refuse (it names the field and the value); empty when all loaded.
    """

    fields: CardFields
    left_out: tuple[str, ...] = field(default=())


def _problem(changes: dict[str, Any]) -> str | None:
    """Why hubui would refuse these field values (checked alone, on otherwise empty fields), or None."""
    try:
        validate_fields(dataclasses.replace(CardFields(pipeline_tag=None), **changes))
    except InvalidCardError as exc:
        return str(exc)
    return None


def _items(meta: dict[str, Any], key: str) -> list[Any]:
    value = meta.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]  # one string stands for a list of one


class _Reader:
    """Takes each value that passes hubui's checks; notes each one that does not."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.left_out: list[str] = []

    def take(self, changes: dict[str, Any]) -> bool:
        problem = _problem(changes)
        if problem is None:
            self.values.update(changes)
            return True
        self.left_out.append(problem)
        return False

    def take_list(self, key: str, items: list[Any]) -> list[Any]:
        kept = [item for item in items if self.take({key: [item]})]
        self.values[key] = kept
        return kept


def _metadata(meta: dict[str, Any], reader: _Reader) -> None:
    if meta.get("license") is not None:
        reader.take({k: meta.get(k) for k in ("license", "license_name", "license_link")})
    for key in _LISTS:
        reader.take_list(key, _items(meta, key))
    bases = reader.take_list("base_model", _items(meta, "base_model"))
    reader.values["base_model"] = bases[0] if len(bases) == 1 else (bases or None)
    reader.values["pipeline_tag"] = None  # a README without one has none
    for key in ("pipeline_tag", "library_name"):
        if meta.get(key) is not None:
            reader.take({key: meta[key]})
    if "model-index" in meta:
        _eval_results(meta["model-index"], reader)


def _eval_results(model_index: Any, reader: _Reader) -> None:
    errors = [p for p in check_metadata({"model-index": model_index}) if p.severity == "error"]
    if errors:
        reader.left_out.append(f"The evaluation results (model-index) are not in the Hub's format: {errors[0].message}")
        return
    try:
        _, results = model_index_to_eval_results(model_index)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        reader.left_out.append(f"The evaluation results (model-index) could not be read: {exc!r}")
        return
    rows = []
    for result in results:
        values: dict[str, Any] = {k: getattr(result, k, None) for k in _EVAL_KEYS}
        row = CardEvalResult(**values)
        if reader.take({"eval_results": [row]}):
            rows.append(row)
    reader.values["eval_results"] = rows


def _body_parts(body: str) -> tuple[str, dict[str, str], str | None]:
    """The description (under the title, before the first heading), the sections, and the citation."""
    found = list(headings(body))
    start = 0
    if found and found[0][1] == 1 and not body[: found[0][3]].strip():
        title_end = body.find("\n", found[0][3])
        start = len(body) if title_end == -1 else title_end + 1
        found = found[1:]
    end = found[0][3] if found else len(body)
    description = _OVERRIDE_RE.sub("", body[start:end].strip("\n")).strip()
    citation = None
    for index, (_, level, title, offset) in enumerate(found):
        if title.lower() == "citation":
            stop = next((o for _, lvl, _, o in found[index + 1 :] if lvl <= level), len(body))
            citation = _fenced_code(body[offset:stop])
            break
    return description, find_sections(body[start:]), citation


def _fenced_code(section: str) -> str | None:
    """The code of the first fenced block in ``section`` (a citation's BibTeX), else its text under the heading."""
    lines = section.splitlines()[1:]
    for i, line in enumerate(lines):
        match = _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            for j in range(i + 1, len(lines)):
                close = _FENCE_RE.match(lines[j])
                if close and close.group(1)[0] == marker[0] and len(close.group(1)) >= len(marker):
                    return "\n".join(lines[i + 1 : j]).strip("\n") or None
            return None
    return "\n".join(lines).strip() or None


def fields_from_readme(readme: str, what: str = "The README") -> LoadedCard:
    """The card fields an existing README holds, to edit it in the form.

    Args:
        readme: The README text (at most :data:`hubui.card_yaml.MAX_README_BYTES`).
        what: How to name it in messages (``"alice/x's README"``).

    Returns:
        The :class:`LoadedCard`: licence, language, tags, datasets, pipeline tag, library, base model, evaluation
        results (``model-index``), the description, the writing-guidance sections (also under the Model Card
        Writing Tool's headings) and the citation; values hubui would refuse are named in ``left_out``.

    Raises:
        InvalidCardError: The README is too large, or its metadata is over the YAML limits, not valid YAML, or not
            a mapping.
    """
    meta = load_card_metadata(readme, what)
    reader = _Reader()
    _metadata(meta, reader)
    match = REGEX_YAML_BLOCK.search(readme)
    body = readme[match.end() :] if match else readme
    description, sections, citation = _body_parts(body)
    if description:
        reader.take({"description": description})
    for name, text in sections.items():
        reader.take({name: text})
    if citation:
        reader.take({"citation": citation})
    return LoadedCard(CardFields(**reader.values), tuple(reader.left_out))


__all__ = ["LoadedCard", "fields_from_readme"]
