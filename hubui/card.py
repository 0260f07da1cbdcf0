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
    ...     library_versions={"timm": "1.0.31"},
    ...     source="timm:resnet18",
    ... )
    >>> card.data.license
    'apache-2.0'
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from hubui.card_rules import raise_for_card_text
from hubui.card_yaml import load_card_metadata
from hubui.errors import InvalidCardError, InvalidInputError, InvalidRepoIdError
from hubui.spec import PRECISIONS

# License identifiers the Hub accepts in card metadata, from https://huggingface.co/docs/hub/repositories-licenses
# (huggingface_hub does not ship this list). "other" needs license_name (and usually license_link).
HUB_LICENSES: frozenset[str] = frozenset(
    {
        "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
        "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd",
        "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0",
        "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0",
        "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0",
        "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl",
        "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research",
        "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0",
        "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr",
        "deepfloyd-if-license", "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1",
        "llama3.2", "llama3.3", "llama4", "grok2-community", "gemma", "unknown", "other",
    }
)  # fmt: skip

MergeMode = Literal["keep", "replace", "merge"]
MERGE_MODES: tuple[str, ...] = ("keep", "replace", "merge")

PARITY_HEADING = "Conversion and parity"
_PARITY_START = "<!-- hubui:parity:start -->"
_PARITY_END = "<!-- hubui:parity:end -->"

_TEMPLATE = "modelcard.md"
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
# A line that a naive front-matter splitter would read as a YAML block delimiter.
_DELIMITER_RE = re.compile(r"^[ \t]*---[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


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
        library_name: ``"timm"`` (default) or ``"open_clip"``; decides the usage snippet.
        base_model: The Hub repo(s) this model derives from.
        description: Markdown shown under the title.
        usage: Markdown that replaces the generated usage snippet.
        citation: Citation text (usually BibTeX), shown in a code block.
        eval_results: Evaluation results, written to ``model-index``.
        model_name: Name used in ``model-index``; defaults to the repo name.
    """

    license: str | None = None
    license_name: str | None = None
    license_link: str | None = None
    language: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    pipeline_tag: str | None = "image-classification"
    library_name: str = "timm"
    base_model: str | list[str] | None = None
    description: str = ""
    usage: str | None = None
    citation: str | None = None
    eval_results: list[CardEvalResult | dict[str, Any]] = field(default_factory=list)
    model_name: str | None = None


# Card defaults per library: the Hub's library id, its task and tags (open_clip's own push script writes
# library_name open_clip, pipeline_tag zero-shot-image-classification and the tag clip).
LIBRARY_DEFAULTS: dict[str, dict[str, Any]] = {
    "timm": {"library_name": "timm", "pipeline_tag": "image-classification", "tags": []},
    "open_clip": {"library_name": "open_clip", "pipeline_tag": "zero-shot-image-classification", "tags": ["clip"]},
    # hubui's transformers target (hubui.to_transformers): timm models converted to transformers classes.
    "transformers": {"library_name": "transformers", "pipeline_tag": "image-classification", "tags": ["timm"]},
}


def default_fields(library: str = "timm") -> CardFields:
    """The card fields for a model of ``library`` when the user gives none.

    Args:
        library: ``"timm"`` or ``"open_clip"``.

    Returns:
        Fresh :class:`CardFields` (``CardFields()`` itself holds timm's defaults).

    Raises:
        InvalidCardError: For a library hubui has no defaults for.
    """
    defaults = LIBRARY_DEFAULTS.get(library)
    if defaults is None:
        raise _bad("library_name", library, "has no card defaults.", f"Use one of: {', '.join(LIBRARY_DEFAULTS)}.")
    return CardFields(
        library_name=defaults["library_name"], pipeline_tag=defaults["pipeline_tag"], tags=list(defaults["tags"])
    )


# --- validation -----------------------------------------------------------------------------------------
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
    _check_pattern("library_name", fields.library_name, _LIBRARY_RE, "a library id like 'timm' or 'open_clip'")
    if fields.base_model is not None:
        bases = (
            [fields.base_model] if isinstance(fields.base_model, str) else _check_list("base_model", fields.base_model)
        )
        for i, base in enumerate(bases):
            _check_pattern(f"base_model[{i}]", base, _REPO_REF_RE, "a Hub model id like 'timm/resnet50.a1_in1k'")
    _check_text("description", fields.description)
    if fields.usage is not None:
        _check_text("usage", fields.usage)
    elif fields.library_name not in _SNIPPETS:
        raise _bad(
            "usage",
            None,
            f"is required for library {fields.library_name!r} (hubui writes snippets for timm and open_clip).",
            "Give a usage text, or set library_name to 'timm' or 'open_clip'.",
        )
    if fields.citation is not None:
        _check_text("citation", fields.citation)
    if fields.model_name is not None:
        _check_line("model_name", fields.model_name)
    for i, item in enumerate(_check_list("eval_results", fields.eval_results)):
        _check_eval(i, item)


# --- rendering ----------------------------------------------------------------------------------------
def _neutralize_delimiters(markdown: str) -> str:
    """Turn bare ``---`` lines outside code fences into ``***`` (also a thematic break).

    The Hub only reads the metadata block at the very top, but tools that split front matter
    naively would take a ``---`` line in the body as the start of another YAML block.
    """
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines(keepends=True):
        match = _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
        elif fence is None and _DELIMITER_RE.match(line.rstrip("\r\n")):
            ending = line[len(line.rstrip("\r\n")) :]
            line = "***" + ending
        out.append(line)
    return "".join(out)


def _fenced(code: str, language: str) -> str:
    """A fenced block that the code cannot close early: the fence is longer than any backtick run inside."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{code.strip(chr(10))}\n{fence}"


def _cell(value: object) -> str:
    """Text that is safe inside a Markdown table cell."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|") or " "


def _inline_code(value: object) -> str:
    text = " ".join(str(value).split()).replace("`", "'")
    return f"`{text}`"


def _num(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) < 1e-3 or abs(value) >= 1e5:
            return f"{value:.2e}"
        return f"{value:.4g}"
    return _cell(value)


def _shape(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value) or "scalar"
    return _cell(value if value is not None else "n/a")


def _pairs(mapping: object) -> str:
    """``key=value`` for the scalar entries of a mapping; nested data (per-tensor tables) is left out."""
    if not isinstance(mapping, Mapping):
        return ""
    items = [(k, v) for k, v in mapping.items() if v is not None and isinstance(v, (str, int, float, bool))]
    return ", ".join(f"{_cell(k)}={_num(v)}" for k, v in items)


def _cosine(value: object) -> str:
    # Tolerances sit at 0.999999 and above: four significant digits would print 1 for a failing value.
    return f"{value:.8g}" if isinstance(value, float) and math.isfinite(value) else _num(value)


def _fraction(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value * 100:.4g}%"
    return _num(value)


_PARITY_COLUMNS = (
    ("output", "name", _cell),
    ("shape", "shape", _shape),
    ("max abs diff", "max_abs_diff", _num),
    ("mean abs diff", "mean_abs_diff", _num),
    ("max rel diff", "max_rel_diff", _num),
    ("min cosine", "cosine_min", _cosine),
    ("top-1 agreement", "top1_agreement", _fraction),
    ("top-5 overlap", "top5_overlap", _fraction),
)


def _parity_section(
    parity: Mapping[str, Any] | None,
    *,
    precision: str,
    library_versions: Mapping[str, str],
    source: str,
    override_note: str | None,
) -> str:
    lines = [_PARITY_START, f"## {PARITY_HEADING}", ""]
    lines.append(
        f"Converted from {_inline_code(source)} with hubui. The original model and "
        "the model loaded back from the exported files were run on the same inputs and their outputs compared."
    )
    lines.append("")
    if parity is None:
        lines += ["No parity check was run for this upload.", ""]
    else:
        outputs = [o for o in parity.get("outputs") or [] if isinstance(o, Mapping)]
        if outputs:
            lines.append("| " + " | ".join(title for title, _, _ in _PARITY_COLUMNS) + " |")
            lines.append("|" + "---|" * len(_PARITY_COLUMNS))
            for out in outputs:
                cells = [fmt(out.get(key)) for _, key, fmt in _PARITY_COLUMNS]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        verdict = _cell(parity.get("verdict", "n/a"))
        status = parity.get("status")
        verdict_line = f"- **Verdict:** {verdict}" + (f" ({_cell(status)})" if status else "")
        if override_note:
            verdict_line += " — **overridden at push time**, see the note above"
        lines.append(verdict_line)
        reasons = parity.get("reasons")
        if isinstance(reasons, (list, tuple)):
            lines += [f"  - {_cell(reason)}" for reason in reasons[:20]]
    precision_line = f"- **Precision:** {_cell(precision)}"
    reported = parity.get("precision") if parity is not None else None
    if reported and reported != precision:
        # A card must not claim a precision the check did not run at.
        precision_line += f" (the parity report was run at {_cell(reported)})"
    lines.append(precision_line)
    if parity is not None:
        if _pairs(parity.get("tolerance")):
            lines.append(f"- **Tolerance:** {_pairs(parity.get('tolerance'))}")
        inputs = parity.get("inputs")
        if isinstance(inputs, Mapping):
            parts = [
                f"{_num(inputs.get(k, 0))} {label}"
                for k, label in (("real", "real images"), ("synthetic", "synthetic"), ("user", "user-supplied"))
            ]
            lines.append(f"- **Inputs:** {_num(inputs.get('count'))} ({', '.join(parts)})")
        if _pairs(parity.get("weights")):
            lines.append(f"- **Weights:** {_pairs(parity.get('weights'))}")
        if parity.get("diverging_module"):
            lines.append(f"- **First diverging module:** {_inline_code(parity['diverging_module'])}")
    versions: dict[str, str] = {}
    if parity is not None and isinstance(parity.get("versions"), Mapping):
        versions.update({str(k): str(v) for k, v in parity["versions"].items()})
    versions.update({str(k): str(v) for k, v in library_versions.items()})
    if versions:
        lines += ["", "| library | version |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in versions.items()]
    lines += ["", _PARITY_END]
    return "\n".join(lines)


def _timm_snippet(repo_id: str) -> str:
    ref = json.dumps(f"hf-hub:{repo_id}")
    return f"""import timm
import torch
from PIL import Image

model = timm.create_model({ref}, pretrained=True)
model = model.eval()

# The preprocessing stored with the model (input size, mean, std, interpolation, crop).
data_config = timm.data.resolve_model_data_config(model)
transforms = timm.data.create_transform(**data_config, is_training=False)

# A grey stand-in image; use your own: Image.open("photo.jpg").convert("RGB")
image = Image.new("RGB", (256, 256), (128, 128, 128))
with torch.inference_mode():
    output = model(transforms(image).unsqueeze(0))  # a batch of one image

probabilities = output.softmax(dim=-1)
top5_probabilities, top5_class_indices = torch.topk(probabilities, k=min(5, probabilities.shape[-1]))
print(top5_class_indices.tolist(), top5_probabilities.tolist())"""


def _open_clip_snippet(repo_id: str) -> str:
    ref = json.dumps(f"hf-hub:{repo_id}")
    return f"""import open_clip
import torch
from PIL import Image

model, preprocess = open_clip.create_model_from_pretrained({ref})
tokenizer = open_clip.get_tokenizer({ref})
model = model.eval()

# A grey stand-in image; use your own: Image.open("photo.jpg").convert("RGB")
image = preprocess(Image.new("RGB", (256, 256), (128, 128, 128))).unsqueeze(0)
labels = ["a diagram", "a dog", "a cat"]
text = tokenizer(labels)

with torch.inference_mode():
    image_features = model.encode_image(image, normalize=True)
    text_features = model.encode_text(text, normalize=True)
    text_probs = (100.0 * image_features @ text_features.T).softmax(dim=-1)

print(dict(zip(labels, text_probs[0].tolist())))"""


def _transformers_snippet(repo_id: str) -> str:
    ref = json.dumps(repo_id)
    return f"""import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification

processor = AutoImageProcessor.from_pretrained({ref})
model = AutoModelForImageClassification.from_pretrained({ref}).eval()

# A grey stand-in image; use your own: Image.open("photo.jpg").convert("RGB")
image = Image.new("RGB", (256, 256), (128, 128, 128))
with torch.inference_mode():
    logits = model(**processor(images=image, return_tensors="pt")).logits

print(model.config.id2label[int(logits.argmax(-1))])"""


_SNIPPETS = {"timm": _timm_snippet, "open_clip": _open_clip_snippet, "transformers": _transformers_snippet}


def usage_snippet(repo_id: str, library_name: str = "timm") -> str:
    """The Python code of the generated usage section: it loads ``repo_id`` from the Hub and runs one image.

    Args:
        repo_id: The target repo, ``namespace/name``.
        library_name: ``"timm"`` or ``"open_clip"``.

    Returns:
        Runnable Python source (no Markdown fence).

    Raises:
        InvalidCardError: If hubui has no snippet for ``library_name``.
    """
    maker = _SNIPPETS.get(library_name)
    if maker is None:
        raise _bad("library_name", library_name, "has no generated usage snippet.", "Give a usage text instead.")
    return maker(repo_id)


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
        source: Where the weights came from, e.g. ``"timm:resnet18.a1_in1k"``.
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


# --- existing READMEs ---------------------------------------------------------------------------------
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


__all__ = [
    "HUB_LICENSES",
    "LIBRARY_DEFAULTS",
    "MERGE_MODES",
    "PARITY_HEADING",
    "CardEvalResult",
    "CardFields",
    "build_card",
    "card_diff",
    "default_fields",
    "load_card_file",
    "merge_card",
    "python_blocks",
    "usage_snippet",
    "validate_fields",
]
