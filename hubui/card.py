"""Model cards: the user's fields, local validation, rendering, and what to do with an existing README.

Cards are built with huggingface_hub's :class:`~huggingface_hub.ModelCard`,
:class:`~huggingface_hub.ModelCardData` and :class:`~huggingface_hub.EvalResult`, so the YAML
metadata is always written by a YAML dumper, never by string concatenation. The body comes from
``hubui/templates/modelcard.md`` and carries a usage snippet that really loads the repo and a
"Conversion and parity" section built from the parity report (``parity.json``).

Example:
    >>> from hubui.card import CardFields, build_card
    >>> card = build_card(
    ...     CardFields(license="apache-2.0", description="A ResNet."),
    ...     repo_id="alice/resnet18",
    ...     parity=None,
    ...     precision="fp32",
    ...     library_versions={"torch": "2.5.1"},
    ...     source="hf-hub:alice/resnet18-original",
    ... )
    >>> card.data.license
    'apache-2.0'
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from hubui.card_fields import (
    CardEvalResult,
    CardFields,
    _bad,
    _check_eval,
    _check_line,
    _check_list,
    _check_text,
    _coerce_eval,
    _show,
    validate_fields,
)
from hubui.card_licenses import HUB_LICENSES
from hubui.card_merge import MERGE_MODES, MergeMode, card_diff, merge_card, python_blocks
from hubui.card_parity import PARITY_HEADING, _cell, _fenced, _neutralize_delimiters, _parity_section
from hubui.card_sections import CARD_SECTIONS, EVAL_PROMPT, SECTION_HEADINGS, SECTION_PROMPTS
from hubui.errors import InvalidCardError, InvalidInputError, InvalidRepoIdError
from hubui.libraries import DEFAULT_SOURCE, format_names, get_format
from hubui.spec import PRECISIONS

if TYPE_CHECKING:
    from hubui.libraries.base import Format

_TEMPLATE = "modelcard.md"


def __getattr__(name: str) -> Any:
    # LIBRARY_DEFAULTS (library -> its card defaults) is kept for one release, now built from the registry
    # (each format's CardDefaults); use default_fields(library) or hubui.libraries.get_format(library).card.
    if name == "LIBRARY_DEFAULTS":
        cards = {n: get_format(n).card for n in format_names()}
        return {
            n: {"library_name": c.library_name, "pipeline_tag": c.pipeline_tag, "tags": list(c.tags)}
            for n, c in cards.items()
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _format(library: str, problem: str, hint: str) -> Format:
    """The registered format ``library`` names, or the card error saying it has none."""
    try:
        return get_format(library)
    except InvalidInputError:
        raise _bad("library_name", library, problem, hint) from None


def default_fields(library: str = DEFAULT_SOURCE) -> CardFields:
    """The card fields for a model of ``library`` when the user gives none.

    Args:
        library: A registered library (``hubui.libraries.format_names()``).

    Returns:
        Fresh :class:`CardFields` with the library's :class:`~hubui.libraries.base.CardDefaults`
        (``CardFields()`` itself holds those of ``hubui.libraries.DEFAULT_SOURCE``).

    Raises:
        InvalidCardError: For a library hubui has no defaults for.
    """
    defaults = _format(library, "has no card defaults.", f"Use one of: {', '.join(format_names())}.").card
    return CardFields(library_name=defaults.library_name, pipeline_tag=defaults.pipeline_tag, tags=list(defaults.tags))


def usage_snippet(repo_id: str, library_name: str = DEFAULT_SOURCE) -> str:
    """The Python code of the generated usage section: it loads ``repo_id`` from the Hub and runs one image.

    Args:
        repo_id: The target repo, ``namespace/name``.
        library_name: A registered library (``hubui.libraries.format_names()``); its format writes the snippet.

    Returns:
        Runnable Python source (no Markdown fence).

    Raises:
        InvalidCardError: If hubui has no snippet for ``library_name``.
    """
    fmt = _format(library_name, "has no generated usage snippet.", "Give a usage text instead.")
    return fmt.usage_snippet(repo_id)


def _check_repo_id(repo_id: str) -> str:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InvalidRepoIdError(f"Invalid repo id {_show(repo_id)}: {exc}") from exc
    if repo_id.count("/") != 1:
        raise InvalidRepoIdError(f"Repo id must be in the form 'namespace/name': {_show(repo_id)}")
    return repo_id


def _to_eval_result(item: CardEvalResult) -> EvalResult:
    return EvalResult(**{k: v for k, v in dataclasses.asdict(item).items()})


def _section_text(text: str | None) -> str | None:
    """A section's Markdown for the template; None (the section is left out) when it is empty."""
    return _neutralize_delimiters(text.strip("\n")) if text and text.strip() else None


def _template() -> str:
    return resources.files("hubui").joinpath(f"templates/{_TEMPLATE}").read_text(encoding="utf-8")


def build_card(
    fields: CardFields,
    *,
    repo_id: str,
    parity: Mapping[str, Any] | None,
    precision: str,
    library_versions: Mapping[str, str],
    source: str,
    override_note: str | None = None,
) -> ModelCard:
    """Build the model card for ``repo_id``.

    Args:
        fields: The user's fields; validated here too.
        repo_id: The target repo, ``namespace/name``; the usage snippet loads it.
        parity: The parity report (the ``parity.json`` schema), or ``None`` when no check ran. Extra
            keys are ignored and missing ones shown as ``n/a``.
        precision: The precision the parity check ran at (``"fp32"``, ``"fp16"``, ``"bf16"``).
        library_versions: Library name -> version, shown in the parity section (wins over the
            report's own ``versions``).
        source: Where the weights came from, e.g. ``"<library>:resnet18.a1_in1k"``.
        override_note: When the push overrode a failed parity check: why. Shown as a warning at the top.

    Returns:
        The card; ``str(card)`` is the README text.

    Raises:
        InvalidCardError: If a field, the precision, the source or the override note is invalid.
        InvalidRepoIdError: If ``repo_id`` is not ``namespace/name``.
    """
    validate_fields(fields)
    repo_id = _check_repo_id(repo_id)
    if precision not in PRECISIONS:
        raise _bad("precision", precision, f"is not one of {', '.join(PRECISIONS)}.")
    _check_line("source", source, 1000)
    if override_note is not None:
        _check_text("override_note", override_note, 5000)
    for name, version in library_versions.items():
        _check_line(f"library_versions[{name!r}]", version)
    if parity is not None and not isinstance(parity, Mapping):
        raise _bad("parity", parity, "must be the parity report as a mapping.")

    evals = [_check_eval(i, e) for i, e in enumerate(fields.eval_results)]
    model_name = fields.model_name or repo_id.split("/", 1)[1]
    card_data = ModelCardData(
        license=fields.license,
        license_name=fields.license_name,
        license_link=fields.license_link,
        language=list(fields.language) or None,
        tags=list(fields.tags) or None,
        datasets=list(fields.datasets) or None,
        pipeline_tag=fields.pipeline_tag,
        library_name=fields.library_name,
        base_model=fields.base_model,
        eval_results=[_to_eval_result(e) for e in evals] or None,
        model_name=model_name if evals else None,
    )
    if fields.usage is not None:
        usage = _neutralize_delimiters(fields.usage.strip("\n"))
    else:
        usage = _fenced(usage_snippet(repo_id, fields.library_name), "python")
    override_block = None
    if override_note:
        note_lines = [
            "> [!WARNING]",
            "> **Parity override:** the parity check for this upload failed and the push overrode it.",
        ]
        note_lines += [
            "> " + line if line.strip() else ">" for line in _neutralize_delimiters(override_note).splitlines()
        ]
        override_block = "\n".join(note_lines)
    return ModelCard.from_template(
        card_data,
        template_str=_template(),
        title=_cell(model_name),
        override_block=override_block,
        description=_neutralize_delimiters(fields.description.strip("\n")),
        usage=usage,
        citation_block=_fenced(fields.citation, "bibtex") if fields.citation and fields.citation.strip() else None,
        **{name: _section_text(getattr(fields, name)) for name in CARD_SECTIONS},
        parity_section=_parity_section(
            parity, precision=precision, library_versions=library_versions, source=source, override_note=override_note
        ),
    )


# --- card files ---------------------------------------------------------------------------------------


def load_card_file(path: str | Path) -> CardFields:
    """Read card fields from a JSON or YAML file (the CLI's ``--card FILE``).

    Args:
        path: A ``.json``, ``.yaml`` or ``.yml`` file holding a mapping of :class:`CardFields` keys.

    Returns:
        The validated fields.

    Raises:
        InvalidCardError: If the file cannot be read, is not UTF-8, does not parse, is not a
            mapping, has unknown keys (all listed), or a field is invalid.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise InvalidCardError(f"Card file {str(path)!r} must end in .json, .yaml or .yml.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidCardError(f"Cannot read card file {str(path)!r}: {exc.strerror}.", "Check the path.") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidCardError(
            f"Card file {str(path)!r} is not UTF-8 (bad byte at offset {exc.start}).", "Re-save the file as UTF-8."
        ) from exc
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidCardError(
            f"Card file {str(path)!r} is not valid {suffix[1:].upper()}: {exc}",
            "Fix the syntax at the line shown; use plain values only (one document, no '!!' tags).",
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidCardError(
            f"Card file {str(path)!r} must hold a mapping of card fields, not {type(data).__name__}."
        )
    known = [f.name for f in dataclasses.fields(CardFields)]
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise InvalidCardError(
            f"Card file {str(path)!r} has unknown key(s): {', '.join(unknown)}", f"Allowed keys: {', '.join(known)}."
        )
    for key in ("language", "tags", "datasets"):
        if key in data:
            # A single string for a list is a common hand-written shorthand ("language: en").
            value = data[key]
            data[key] = [] if value is None else [value] if isinstance(value, str) else value
    if data.get("eval_results") is None:
        data.pop("eval_results", None)
    else:
        data["eval_results"] = [
            _coerce_eval(i, e) for i, e in enumerate(_check_list("eval_results", data["eval_results"]))
        ]
    result = CardFields(**data)
    validate_fields(result)
    return result


__all__ = [
    "CARD_SECTIONS",
    "EVAL_PROMPT",
    "HUB_LICENSES",
    "MERGE_MODES",
    "PARITY_HEADING",
    "SECTION_HEADINGS",
    "SECTION_PROMPTS",
    "CardEvalResult",
    "CardFields",
    "MergeMode",
    "build_card",
    "card_diff",
    "default_fields",
    "load_card_file",
    "merge_card",
    "python_blocks",
    "usage_snippet",
    "validate_fields",
]
