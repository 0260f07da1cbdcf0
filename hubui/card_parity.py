"""The "Conversion and parity" section of a model card, rendered from a parity report, and the Markdown helpers
that keep user text from breaking the card (fences, table cells, ``---`` lines)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from hubui.provenance import WeightsOrigin, describe_origin, origin_of_report

PARITY_HEADING = "Conversion and parity"
_PARITY_START = "<!-- hubui:parity:start -->"
_PARITY_END = "<!-- hubui:parity:end -->"
# A line that a naive front-matter splitter would read as a YAML block delimiter.
_DELIMITER_RE = re.compile(r"^[ \t]*---[ \t]*$")
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")


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


def _origin_phrase(origin: WeightsOrigin | None) -> str:
    """What the card's first sentence says about the weights (a Markdown fragment)."""
    if origin is None:
        return "; where its weights came from is not recorded in this export"
    if origin.is_random:
        return f" with random weights (seed {origin.seed}): **this is not a trained model**"
    if origin.kind == "pretrained":
        text = f" with the weights of the pretrained tag {_inline_code(origin.tag)}"
    elif origin.kind == "checkpoint":
        text = (
            f" with the weights of checkpoint {_inline_code(origin.checkpoint_name)} "
            f"(sha256 {_inline_code(origin.checkpoint_sha256)})"
        )
    else:
        text = f" with the weights of the Hub repo {_inline_code(origin.repo_id)} at {_inline_code(origin.revision)}"
    if origin.new_classifier is not None:
        text += (
            f", and a new {origin.new_classifier}-class classifier with random weights (seed {origin.seed}): "
            "**the classifier is not trained**"
        )
    return text


def _parity_section(
    parity: Mapping[str, Any] | None,
    *,
    precision: str,
    library_versions: Mapping[str, str],
    source: str,
    override_note: str | None,
) -> str:
    lines = [_PARITY_START, f"## {PARITY_HEADING}", ""]
    origin = origin_of_report(parity)
    lines.append(
        f"Converted from {_inline_code(source)}{_origin_phrase(origin)}. hubui ran the original model and the model "
        "loaded back from the exported files on the same inputs and compared their outputs."
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
        lines.append(f"- **Weights:** {_cell(describe_origin(origin))}")
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
            lines.append(f"- **Saved weights check:** {_pairs(parity.get('weights'))}")
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


__all__ = ["PARITY_HEADING"]
