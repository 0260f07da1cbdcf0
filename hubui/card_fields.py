"""The card fields a user edits (:class:`CardFields`, :class:`CardEvalResult`) and their local checks.

:func:`validate_fields` runs them on every field, before anything is uploaded; :mod:`hubui.card` re-exports all
three.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hubui.card_licenses import HUB_LICENSES
from hubui.card_sections import CARD_SECTIONS, check_section_text
from hubui.errors import InvalidCardError
from hubui.libraries import DEFAULT_SOURCE, format_names

_MAX_LINE = 200  # single-line metadata values (names, ids)
_MAX_TAG = 128
_MAX_ITEMS = 100
_MAX_TEXT = 50_000  # description, usage, citation
_SPECIAL_LANGUAGES = frozenset({"code", "multilingual"})
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*$")
_LIBRARY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REPO_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
_URL_RE = re.compile(r"^(https?://\S+|[A-Za-z0-9_./-]+)$")


@dataclass
class CardEvalResult:
    """One evaluation result for the card's ``model-index`` (mirrors :class:`huggingface_hub.EvalResult`).

    Args:
        task_type: Task id, e.g. ``"image-classification"``.
        dataset_type: Dataset id on the Hub, e.g. ``"imagenet-1k"``.
        dataset_name: A readable dataset name, e.g. ``"ImageNet-1k"``.
        metric_type: Metric id, e.g. ``"accuracy"``.
        metric_value: The value, a number or a short string like ``"80.1 ± 0.2"``.
        task_name, dataset_config, dataset_split, dataset_revision, metric_name, source_name, source_url:
            Optional, as in :class:`huggingface_hub.EvalResult`.
    """

    task_type: str
    dataset_type: str
    dataset_name: str
    metric_type: str
    metric_value: float | int | str
    task_name: str | None = None
    dataset_config: str | None = None
    dataset_split: str | None = None
    dataset_revision: str | None = None
    metric_name: str | None = None
    source_name: str | None = None
    source_url: str | None = None


@dataclass
class CardFields:
    """The card fields a user may edit (UI form, ``--card FILE.json|FILE.yaml``).

    Args:
        license: A Hub license identifier (see :data:`HUB_LICENSES`), e.g. ``"apache-2.0"``.
        license_name: With ``license="other"``: a short slug naming the license.
        license_link: With ``license="other"``: a URL or a file in the repo (``"LICENSE"``).
        language: Language codes (ISO 639-1/2/3, optionally with a region) or ``"code"``/``"multilingual"``.
        tags: Free tags shown on the Hub.
        datasets: Hub dataset ids the model was trained on.
        pipeline_tag: The Hub task, ``"image-classification"`` by default.
        library_name: A registered library (``hubui.libraries.format_names()``; by default
            ``hubui.libraries.DEFAULT_SOURCE``); decides the usage snippet.
        base_model: The Hub repo(s) this model derives from.
        description: Markdown shown under the title.
        usage: Markdown that replaces the generated usage snippet.
        citation: Citation text (usually BibTeX), shown in a code block.
        eval_results: Evaluation results, written to ``model-index``.
        model_name: Name used in ``model-index``; defaults to the repo name.
        intended_use, limitations, training_data, evaluation: Optional Markdown for the card's writing-guidance
            sections (:data:`hubui.card_sections.SECTION_PROMPTS` says what each should hold), each rendered under
            its own ``##`` heading when filled and left out when empty. Headings inside start at ``###``.
    """

    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    language: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    pipeline_tag: str | None = "image-classification"
    library_name: str = DEFAULT_SOURCE
    base_model: str | list[str] | None = None
    description: str = ""
    usage: str | None = None
    citation: str | None = None
    eval_results: list[CardEvalResult | dict[str, Any]] = field(default_factory=list)
    model_name: str | None = None
    intended_use: str | None = None
    limitations: str | None = None
    training_data: str | None = None
    evaluation: str | None = None


def _show(value: object, limit: int = 60) -> str:
    """A short, printable rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _bad(name: str, value: object, problem: str, hint: str | None = None) -> InvalidCardError:
    return InvalidCardError(f"Card field {name!r} = {_show(value)} {problem}", hint)


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _bad(name, value, f"must be text, not {type(value).__name__}.", f"Give {name!r} as a string.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Lone surrogates come from mis-decoded bytes (os.fsdecode, surrogateescape): the Hub stores UTF-8.
        raise _bad(
            name,
            value,
            "is not valid Unicode text (it holds a lone surrogate from non-UTF-8 bytes).",
            f"Re-save the source of {name!r} as UTF-8.",
        ) from exc
    return value


def _check_text(name: str, value: object, max_len: int = _MAX_TEXT) -> str:
    """Multi-line text: valid UTF-8, no control characters except tab and newlines, bounded."""
    text = _check_str(name, value)
    if len(text) > max_len:
        raise _bad(name, value, f"is {len(text)} characters long (at most {max_len}).", f"Shorten {name!r}.")
    for ch in text:
        if ch not in "\t\n\r" and unicodedata.category(ch) == "Cc":
            raise _bad(name, value, f"contains the control character {ch!r}.", f"Remove it from {name!r}.")
    return text


def _check_line(name: str, value: object, max_len: int = _MAX_LINE) -> str:
    """A single-line metadata value: text, not empty, no line breaks or control characters."""
    text = _check_text(name, value, max_len)
    if not text.strip():
        raise _bad(name, value, "is empty.", f"Give {name!r} a value or leave it out.")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
        raise _bad(name, value, "spans several lines or holds control characters.", f"Put {name!r} on one line.")
    if text != text.strip():
        raise _bad(name, value, "has leading or trailing spaces.", "Remove them.")
    return text


def _check_list(name: str, value: object) -> list[object]:
    if not isinstance(value, (list, tuple)):
        raise _bad(name, value, f"must be a list, not {type(value).__name__}.", f"Give {name!r} as a list of strings.")
    if len(value) > _MAX_ITEMS:
        raise _bad(name, value, f"has {len(value)} entries (at most {_MAX_ITEMS}).", "Keep the important ones.")
    return list(value)


def _check_pattern(name: str, value: object, pattern: re.Pattern[str], what: str, max_len: int = _MAX_LINE) -> str:
    text = _check_line(name, value, max_len)
    if not pattern.match(text):
        raise _bad(name, value, f"is not {what}.", f"Use {what} for {name!r}.")
    return text


def _check_license(fields: CardFields) -> None:
    lic = fields.license
    if lic is not None:
        text = _check_line("license", lic)
        if text not in HUB_LICENSES:
            close = difflib.get_close_matches(text.lower(), sorted(HUB_LICENSES), n=3)
            suggestion = f"Did you mean {', '.join(close)}? " if close else ""
            raise _bad(
                "license",
                lic,
                "is not a license identifier the Hub knows.",
                f"{suggestion}Use an identifier from https://huggingface.co/docs/hub/repositories-licenses "
                "(e.g. apache-2.0, mit, cc-by-4.0), or 'other' with license_name and license_link.",
            )
    if lic == "other":
        if fields.license_name is None:
            raise _bad(
                "license_name", None, "is required with license 'other'.", "Name the license, e.g. 'my-license'."
            )
    elif fields.license_name is not None or fields.license_link is not None:
        which = "license_name" if fields.license_name is not None else "license_link"
        raise _bad(
            which, getattr(fields, which), "is only used with license 'other'.", "Set license to 'other' or drop it."
        )
    if fields.license_name is not None:
        _check_pattern("license_name", fields.license_name, _SLUG_RE, "a lowercase slug like 'my-license-1.0'")
    if fields.license_link is not None:
        _check_pattern("license_link", fields.license_link, _URL_RE, "an http(s) URL or a file path such as 'LICENSE'")


def _check_tag(name: str, tag: object) -> None:
    text = _check_line(name, tag, _MAX_TAG)
    if ": " in text or text.endswith(":"):
        raise _bad(name, tag, "contains ': ', which YAML would read as a key.", "Use '-' or ':' without a space.")
    if text.startswith("---"):
        raise _bad(name, tag, "starts with '---', a YAML block delimiter.", "Remove the dashes.")
    if text.startswith(("#", "&", "*", "!", "|", ">", "%", "@", "`")):
        raise _bad(
            name, tag, f"starts with {text[0]!r}, which YAML treats specially.", "Start the tag with a letter or digit."
        )


def _coerce_eval(index: int, item: object) -> CardEvalResult:
    name = f"eval_results[{index}]"
    if isinstance(item, CardEvalResult):
        return item
    if not isinstance(item, Mapping):
        raise _bad(
            name, item, "must be a mapping with task_type, dataset_type, dataset_name, metric_type, metric_value."
        )
    known = {f.name for f in dataclasses.fields(CardEvalResult)}
    unknown = sorted(str(k) for k in item if k not in known)
    if unknown:
        raise InvalidCardError(
            f"Card field {name!r} has unknown key(s): {', '.join(unknown)}",
            f"Allowed keys: {', '.join(sorted(known))}.",
        )
    required = [f.name for f in dataclasses.fields(CardEvalResult) if f.default is dataclasses.MISSING]
    missing = [k for k in required if k not in item]
    if missing:
        raise InvalidCardError(f"Card field {name!r} lacks: {', '.join(missing)}", "Add the missing keys.")
    return CardEvalResult(**{str(k): v for k, v in item.items()})


def _check_eval(index: int, item: object) -> CardEvalResult:
    result = _coerce_eval(index, item)
    name = f"eval_results[{index}]"
    for key in ("task_type", "dataset_type", "metric_type"):
        _check_pattern(f"{name}.{key}", getattr(result, key), _REPO_REF_RE, "an identifier like 'image-classification'")
    _check_line(f"{name}.dataset_name", result.dataset_name)
    value = result.metric_value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad(f"{name}.metric_value", value, "must be a number or a short string.")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(f"{name}.metric_value", value, "is not a finite number.")
    if isinstance(value, str):
        _check_line(f"{name}.metric_value", value)
    for key in ("task_name", "dataset_config", "dataset_split", "dataset_revision", "metric_name", "source_name"):
        if getattr(result, key) is not None:
            _check_line(f"{name}.{key}", getattr(result, key))
    if result.source_url is not None:
        _check_pattern(f"{name}.source_url", result.source_url, _URL_RE, "an http(s) URL")
    if result.source_name is not None and result.source_url is None:
        raise _bad(f"{name}.source_url", None, "is required when source_name is set.", "Add the URL of the source.")
    return result


def validate_fields(fields: CardFields) -> None:
    """Check every user-editable card field locally, before anything is uploaded.

    Args:
        fields: The fields to check.

    Raises:
        InvalidCardError: On the first bad field. The message names the field and the (truncated)
            bad value; the hint says what to do.
    """
    if not isinstance(fields, CardFields):
        raise InvalidCardError(f"Expected CardFields, got {type(fields).__name__}.")
    _check_license(fields)
    for i, lang in enumerate(_check_list("language", fields.language)):
        text = _check_line(f"language[{i}]", lang, 35)
        if text not in _SPECIAL_LANGUAGES and not _LANGUAGE_RE.match(text):
            raise _bad(
                f"language[{i}]",
                lang,
                "is not a language code.",
                "Use ISO 639-1/2/3 codes such as 'en', 'fr', 'zh-Hans', or 'multilingual'.",
            )
    for i, tag in enumerate(_check_list("tags", fields.tags)):
        _check_tag(f"tags[{i}]", tag)
    for i, ds in enumerate(_check_list("datasets", fields.datasets)):
        _check_pattern(f"datasets[{i}]", ds, _REPO_REF_RE, "a Hub dataset id like 'imagenet-1k' or 'org/name'")
    if fields.pipeline_tag is not None:
        _check_pattern("pipeline_tag", fields.pipeline_tag, _SLUG_RE, "a Hub task id like 'image-classification'")
    library = _check_line("library_name", fields.library_name)
    if not _LIBRARY_RE.match(library):
        what = f"a library id like {' or '.join(map(repr, format_names()[:2]))}"  # two registered ones as examples
        raise _bad("library_name", library, f"is not {what}.", f"Use {what} for 'library_name'.")
    if fields.base_model is not None:
        bases = (
            [fields.base_model] if isinstance(fields.base_model, str) else _check_list("base_model", fields.base_model)
        )
        for i, base in enumerate(bases):
            _check_pattern(f"base_model[{i}]", base, _REPO_REF_RE, "a Hub model id like 'timm/resnet50.a1_in1k'")
    _check_text("description", fields.description)
    if fields.usage is not None:
        _check_text("usage", fields.usage)
    elif fields.library_name not in (names := format_names()):
        raise _bad(
            "usage",
            None,
            f"is required for library {fields.library_name!r} "
            f"(hubui writes snippets for {', '.join(names[:-1])} and {names[-1]}).",
            f"Give a usage text, or set library_name to {_one_of(names)}.",
        )
    if fields.citation is not None:
        _check_text("citation", fields.citation)
    if fields.model_name is not None:
        _check_line("model_name", fields.model_name)
    for i, item in enumerate(_check_list("eval_results", fields.eval_results)):
        _check_eval(i, item)
    for name in CARD_SECTIONS:
        text = getattr(fields, name)
        if text is not None:
            problem = check_section_text(name, _check_text(name, text))
            if problem:
                raise _bad(name, text, f"{problem}.", "Start headings inside a section at '###'.")


def _one_of(names: tuple[str, ...]) -> str:
    quoted = [repr(n) for n in names]
    return " or ".join(quoted) if len(quoted) < 3 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


__all__ = ["CardEvalResult", "CardFields", "validate_fields"]
