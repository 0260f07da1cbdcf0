"""What the ``hubui`` command prints, and the small input files it reads.

Mostly pure functions from core dataclasses (or their ``to_dict()``) to strings: parity tables, file
lists, model facts, dry-run plans, push results. Nothing here talks to the Hub or builds a model;
the CLI decides where the text goes. Progress lines are :mod:`hubui.cli_progress`'s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.errors import InvalidInputError
from hubui.provenance import UNKNOWN_ORIGIN_TEXT, describe_origin, origin_of_report

if TYPE_CHECKING:
    from hubui.pipeline import ConvertResult

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """A byte count for people: ``1,895,136 B (1.9 MB)``; small sizes stay in bytes.

    Args:
        size: Bytes.

    Returns:
        The exact count, and a rounded decimal size when it is 1 kB or more.
    """
    exact = f"{size:,} B"
    value, unit = float(size), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return exact if unit == 0 else f"{exact} ({value:.1f} {_UNITS[unit]})"


def _num(value: Any) -> str:
    """A metric for a table: 0 stays ``0``, NaN/None (not measurable) become ``n/a``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if value == 0:
        return "0"
    return f"{float(value):.3g}"


def _cosine(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):.7f}"


def _fraction(value: Any, count: int | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    pct = f"{100 * float(value):.0f}%"
    return f"{round(float(value) * count)}/{count} {pct}" if count else pct


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, with the header on top.

    Args:
        header: Column titles.
        rows: Cells, already formatted.

    Returns:
        The table, one line per row, without a trailing newline.
    """
    body = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body)


def files_table(files: Iterable[tuple[str, int]], indent: str = "  ") -> str:
    """``name  size`` lines for a list of files.

    Args:
        files: ``(name, size_bytes)`` pairs.
        indent: Prefix of each line.

    Returns:
        The lines, joined.
    """
    pairs = list(files)
    if not pairs:
        return f"{indent}(no files)"
    width = max(len(n) for n, _ in pairs)
    return "\n".join(f"{indent}{n.ljust(width)}  {human_size(s)}" for n, s in pairs)


def _weights_line(weights: Mapping[str, Any] | None) -> str:
    if not weights:
        return "weights: not compared"
    precision = weights.get("precision", "")
    if weights.get("identical"):
        drift = _num(weights.get("max_abs_diff"))
        worst = f" (worst: {weights['worst_tensor']})" if weights.get("worst_tensor") else ""
        return (
            f"weights: {weights.get('compared', 0)} tensors saved exactly as the original cast to {precision}; "
            f"max abs diff vs the fp32 original {drift}{worst}"
        )
    counts = ", ".join(
        f"{weights.get(key, 0)} {label}"
        for key, label in (
            ("missing", "missing"),
            ("extra", "extra"),
            ("shape_mismatch", "shape mismatches"),
            ("dtype_mismatch", "dtype mismatches"),
            ("value_mismatch", "value mismatches"),
        )
        if weights.get(key)
    )
    lines = [f"weights: MISMATCH in {weights.get('file', 'the weights file')}: {counts}"]
    for key, names in (weights.get("names") or {}).items():
        if names:
            lines.append(f"  {key}: {', '.join(names[:5])}" + (", ..." if len(names) > 5 else ""))
    return "\n".join(lines)


def _preprocessing_line(pre: Mapping[str, Any]) -> str:
    """The transformers target's image-processor check, with the known one-pixel crop offset spelled out."""
    offset = list(pre.get("crop_offset") or ())
    differs = list(pre.get("differs") or ())
    line = (
        f"preprocessing: {pre.get('processor')} vs timm's transform on {pre.get('images')} images: "
        f"{pre.get('matching')} identical"
    )
    if offset:
        # transformers floors the centre-crop offset where torchvision rounds half to even: a known, bounded difference.
        line += f", {len(offset)} cropped one pixel apart (transformers floors the crop offset, timm rounds)"
    if differs:
        line += f", {len(differs)} DIFFERENT: {', '.join(differs[:5])}"
    return line + f"; max abs diff {_num(pre.get('max_abs_diff'))}"


def parity_text(report: Mapping[str, Any], files: Iterable[tuple[str, int]] = (), folder: str | None = None) -> str:
    """The parity report as a person reads it.

    Args:
        report: ``ParityReport.to_dict()`` (the ``parity.json`` schema).
        files: The folder's files, ``(name, size_bytes)``.
        folder: The folder written, if any.

    Returns:
        Verdict line (with the weights' origin), per-output metrics table, weights check, tolerance, reasons and
        diverging module on failure, and the files with their sizes.
    """
    verdict = str(report.get("verdict", "?"))
    inputs = report.get("inputs") or {}
    count = inputs.get("count")
    kinds = ", ".join(f"{inputs[k]} {k}" for k in ("real", "synthetic", "user") if inputs.get(k))
    origin = describe_origin(origin_of_report(report))  # part of the verdict: a PASS on random weights is no model
    lines = [
        f"parity: {verdict.upper()} — {origin}  ({report.get('precision')} export of "
        f"{report.get('library')}:{report.get('architecture')}; {count} inputs{': ' + kinds if kinds else ''}; "
        f"{report.get('batches_done')}/{report.get('batches_total')} batches, {report.get('elapsed_s', 0):.1f} s)",
        "",
    ]
    rows = [
        (
            str(o.get("name")),
            "x".join(str(d) for d in o.get("shape") or ()),
            _num(o.get("max_abs_diff")),
            _num(o.get("mean_abs_diff")),
            _num(o.get("max_rel_diff")),
            _cosine(o.get("cosine_min")),
            _fraction(o.get("top1_agreement"), count),
            _fraction(o.get("top5_overlap"), None),
        )
        for o in report.get("outputs") or ()
    ]
    header = ("output", "shape", "max abs diff", "mean abs diff", "max rel diff", "min cosine", "top-1", "top-5")
    lines += [table(header, rows), "", _weights_line(report.get("weights"))]
    if inputs.get("preprocessing"):
        lines.append(_preprocessing_line(inputs["preprocessing"]))
    tol = report.get("tolerance") or {}
    limits = [
        f"{label} {fmt(tol[key])}"
        for key, label, fmt in (
            ("max_abs_diff", "max abs diff <=", _num),
            ("max_rel_diff", "max rel diff <=", _num),
            ("cosine_min", "cosine >=", _cosine),
            ("top1_agreement_min", "top-1 >=", lambda v: _fraction(v, None)),
        )
        if tol.get(key) is not None
    ]
    if limits:
        lines.append(f"tolerance ({report.get('precision')}): {', '.join(limits)}")
    for reason in report.get("reasons") or ():
        lines.append(f"reason: {reason}")
    if report.get("diverging_module"):
        lines.append(f"first diverging module: {report['diverging_module']}")
    pairs = list(files)
    if folder is not None or pairs:
        lines += ["", f"folder: {folder}" if folder else "files:", files_table(pairs)]
    return "\n".join(lines)


def facts_text(facts: Mapping[str, Any]) -> str:
    """``ModelFacts.to_dict()`` as a two-column table.

    Args:
        facts: The facts.

    Returns:
        One ``field  value`` line per fact.
    """

    def show(value: Any) -> str:
        if value is None or value == [] or value == ():
            return "-"
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return str(value)

    tags = list(facts.get("pretrained_tags") or ())
    shown_tags = ", ".join(tags[:12]) + (f" (and {len(tags) - 12} more)" if len(tags) > 12 else "") if tags else "-"
    rows = [
        ("name", show(facts.get("name"))),
        ("library", show(facts.get("library"))),
        ("architecture", show(facts.get("architecture"))),
        ("tag", show(facts.get("tag"))),
        ("parameters", f"{facts.get('num_params', 0):,}"),
        ("size fp32", human_size(int(facts.get("size_fp32_bytes", 0)))),
        ("size fp16", human_size(int(facts.get("size_fp16_bytes", 0)))),
        ("input size", "x".join(str(v) for v in facts.get("input_size") or ())),
        ("mean", show(facts.get("mean"))),
        ("std", show(facts.get("std"))),
        ("interpolation", show(facts.get("interpolation"))),
        ("crop pct", show(facts.get("crop_pct"))),
        ("crop mode", show(facts.get("crop_mode"))),
        ("classes", show(facts.get("num_classes"))),
        ("license", show(facts.get("license"))),
        ("paper", show(facts.get("paper_name"))),
        ("paper ids", show(facts.get("paper_ids"))),
        ("origin", show(facts.get("origin_url"))),
        ("hub repo", show(facts.get("hf_hub_id"))),
        ("pretrained tags", shown_tags),
    ]
    return table(("field", "value"), rows)


def plan_text(plan: Mapping[str, Any]) -> str:
    """A dry run's ``PushPlan.to_dict()`` for people.

    Args:
        plan: The plan.

    Returns:
        Target, files with sizes, README action and the README diff.
    """
    files = [(f["path"], int(f["size"])) for f in plan.get("files") or ()]
    state = "exists" if plan.get("repo_exists") else "will be created"
    lines = [
        "dry run: nothing was uploaded",
        f"repo:    {plan.get('repo_id')} ({state}), pushing as {plan.get('user')}",
        f"target:  {plan.get('target')}",
        f"parity:  {plan.get('parity_verdict') or 'no parity.json'}",
        f"weights: {plan.get('weights_origin') or UNKNOWN_ORIGIN_TEXT}",
        *(f"warning: {w}" for w in plan.get("warnings") or ()),
        f"files that would be committed: {len(files)}, {human_size(int(plan.get('total_bytes', 0)))} in all",
        files_table(files),
        f"README:  {plan.get('readme_action')}",
    ]
    diff = str(plan.get("readme_diff") or "")
    lines.append(diff.rstrip("\n") if diff else "(README unchanged)")
    return "\n".join(lines)


def publish_text(result: Mapping[str, Any], verify: bool) -> str:
    """``PublishResult.to_dict()`` for people: where it landed and whether the check passed.

    Args:
        result: The result.
        verify: Whether verification was asked for (``--no-verify`` turns it off).

    Returns:
        The commit URL, the PR URL, the files and the verification line.
    """
    files = [(f["path"], int(f["size"])) for f in result.get("files") or ()]
    lines = []
    if result.get("changed", True):
        lines.append(f"pushed:       {result.get('repo_id')} @ {result.get('revision')} ({len(files)} files)")
    else:
        lines.append(
            f"nothing changed: every file is already at {result.get('repo_id')} @ {result.get('revision')}; "
            "no commit or pull request was made"
        )
    lines.append(f"repo:         {result.get('repo_url')}")
    lines.append(f"commit:       {result.get('commit_url')}")
    if result.get("pr_url"):
        lines.append(f"pull request: {result.get('pr_url')}")
    lines.append(files_table(files))
    verification = result.get("verification")
    if not verify or verification is None:
        lines.append("verification: skipped (--no-verify); the pushed copy was not checked")
    else:
        status = str(verification.get("status"))
        if status == "passed":
            lines.append(f"verification: passed: {verification.get('detail')}")
        elif status == "failed":
            lines.append(f"verification: FAILED: {verification.get('detail')}")
            for reason in (verification.get("parity") or {}).get("reasons") or ():
                lines.append(f"  reason: {reason}")
        else:
            lines.append(
                f"verification: NOT COMPLETED: {verification.get('detail')} "
                "The model was pushed but hubui could not check it; download it and check it yourself."
            )
    return "\n".join(lines)


def convert_dict(result: ConvertResult) -> dict[str, Any]:
    """What ``hubui convert --json`` prints: the parity report, the folder and its files.

    Args:
        result: The finished conversion.

    Returns:
        ``ParityReport.to_dict()`` plus ``folder`` and ``files`` (``name``, ``size`` in bytes).
    """
    return {
        **result.report.to_dict(),
        "folder": str(result.export.folder),
        "files": [{"name": name, "size": size} for name, size in result.export.files],
    }


def read_label_names(path: str | Path) -> tuple[str, ...]:
    """Class names from a file: a JSON list of strings, or one name per line (blank lines skipped).

    Args:
        path: The file (``--label-names``).

    Returns:
        The names, in order.

    Raises:
        InvalidInputError: The file cannot be read, or looks like JSON but is not a list of strings.
    """
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"Cannot read label names file {str(path)!r}: {exc}", "Check the path.") from exc
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"Label names file {str(path)!r} is not a valid JSON list: {exc}") from exc
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidInputError(f"Label names file {str(path)!r} must hold a JSON list of strings.")
        return tuple(names)
    return tuple(line.strip() for line in text.splitlines() if line.strip())


__all__ = [
    "convert_dict",
    "facts_text",
    "files_table",
    "human_size",
    "parity_text",
    "plan_text",
    "publish_text",
    "read_label_names",
    "table",
]
