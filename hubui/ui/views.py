"""How the core's results look in the app: Markdown and tables built from hubui's dataclasses.

Pure functions, no gradio: they take what the core returns and give text or a DataFrame. Every value
that comes from a user or the Hub is escaped before it goes into Markdown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from hubui.progress import STAGE_LABELS, STAGES, duration_text, percent_text, time_left_text

if TYPE_CHECKING:
    from hubui import CardFields, Identity, ModelFacts, ParityReport, PublishResult, PushPlan, Verification
    from hubui.progress import StageStatus

PARITY_COLUMNS = (
    "output",
    "shape",
    "max abs diff",
    "mean abs diff",
    "max rel diff",
    "min cosine",
    "top-1",
    "top-5",
)
FILE_COLUMNS = ("file", "size")
VERDICTS = {"pass": "PASS", "fail": "FAIL", "cancelled": "CANCELLED", "pending": "RUNNING"}


def md(value: object) -> str:
    """Text shown as written in Markdown: no HTML, links or emphasis from user or Hub values."""
    return re.sub(r"([\\`*_{}\[\]<>#|~!])", r"\\\1", " ".join(str(value).split()))


def code(value: object) -> str:
    """Inline code for a value (backticks in it are replaced)."""
    return "`" + " ".join(str(value).split()).replace("`", "'") + "`"


def human_size(size: int) -> str:
    """``1536`` -> ``1.5 kB`` (decimal units, like the Hub)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


def num(value: float | None) -> str:
    """A metric for a table cell: exact zero stays ``0``, tiny or huge values use an exponent."""
    if value is None or not isinstance(value, (int, float)):
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    return f"{value:.3e}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.6g}"


# --- login ------------------------------------------------------------------------------------------
def identity_markdown(identity: Identity | None, source: str = "") -> str:
    """The login status line: who, from where, orgs, and whether the token can write."""
    if identity is None:
        return "Not logged in."
    rights = "**can write**" if identity.can_write else "**read-only** (this token cannot push)"
    orgs = ", ".join(md(o) for o in identity.orgs) or "none"
    where = f" from {source}" if source else ""  # one of the app's own fixed phrases
    return (
        f"Logged in as **{md(identity.name)}**{where} on {md(identity.endpoint)}  \n"
        f"Organizations: {orgs}  \nToken: {rights} (role {md(identity.role)})"
    )


# --- model ------------------------------------------------------------------------------------------
def facts_markdown(facts: ModelFacts) -> str:
    """The facts panel of a model."""
    mean = ", ".join(f"{v:.4g}" for v in facts.mean) or "n/a"
    std = ", ".join(f"{v:.4g}" for v in facts.std) or "n/a"
    rows = [
        ("model", code(facts.name)),
        ("library", md(facts.library)),
        ("pretrained tag", code(facts.tag) if facts.tag else "none (random weights unless you upload a checkpoint)"),
        ("parameters", f"{facts.num_params:,} ({facts.num_params / 1e6:.1f} M)"),
        ("size", f"{human_size(facts.size_fp32_bytes)} fp32, {human_size(facts.size_fp16_bytes)} fp16/bf16"),
        ("input size", "×".join(str(v) for v in facts.input_size)),
        ("mean / std", f"({mean}) / ({std})"),
        ("interpolation, crop", f"{md(facts.interpolation)}, {facts.crop_pct:g} ({md(facts.crop_mode)})"),
        ("classes", str(facts.num_classes)),
        ("licence", md(facts.license) if facts.license else "unknown: check the source before publishing"),
        ("paper", md(facts.paper_name) if facts.paper_name else "n/a"),
        ("origin", md(facts.origin_url) if facts.origin_url else "n/a"),
        ("weights on the Hub", code(facts.hf_hub_id) if facts.hf_hub_id else "n/a"),
        ("pretrained tags", str(len(facts.pretrained_tags))),
    ]
    return "| fact | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


# --- parity -----------------------------------------------------------------------------------------
def parity_frame(report: ParityReport | None) -> pd.DataFrame:
    """The parity table: one row per compared output."""
    rows = []
    for o in report.outputs if report is not None else ():
        rows.append(
            [
                o.name,
                "×".join(str(v) for v in o.shape),
                num(o.max_abs_diff),
                num(o.mean_abs_diff),
                num(o.max_rel_diff),
                _cosine(o.cosine_min),
                _percent(o.top1_agreement),
                _percent(o.top5_overlap),
            ]
        )
    return pd.DataFrame(rows, columns=list(PARITY_COLUMNS))


def _cosine(value: float | None) -> str:
    # Tolerances sit at 0.999999 and above: fewer digits would show a failing value as 1.
    return f"{value:.8g}" if isinstance(value, (int, float)) and math.isfinite(value) else num(value)


def _percent(value: float | None) -> str:
    """A fraction as a percentage; ``n/a`` for outputs that are not class scores (``None``)."""
    return f"{value:.1%}" if isinstance(value, (int, float)) and math.isfinite(value) else num(value)


def verdict_markdown(report: ParityReport | None, cancelled: bool = False) -> str:
    """``PASS`` / ``FAIL`` / ``CANCELLED`` with the reasons and the first diverging module."""
    if report is None:
        return "## CANCELLED\nStopped before parity ran; nothing can be pushed from this run." if cancelled else ""
    word = VERDICTS.get(report.verdict, report.verdict.upper())
    lines = [f"## {word}"]
    if report.verdict == "pass":
        lines.append(f"The {md(report.precision)} export reproduces the original on {_inputs(report)}.")
    lines += [f"- {md(reason)}" for reason in report.reasons[:10]]
    if report.diverging_module:
        lines.append(f"\nFirst diverging module: {code(report.diverging_module)}")
    if report.weights is not None and report.verdict != "pass":
        lines.append(f"\nSaved weights identical to the original: {'yes' if report.weights.identical else 'no'}")
    return "\n".join(lines)


def _inputs(report: ParityReport) -> str:
    count = report.inputs.get("count")
    return f"{count} inputs" if count else "its inputs"


def progress_markdown(running: Sequence[StageStatus], finished: Iterable[tuple[str, float]] = ()) -> str:
    """The running conversion: each running stage, its own progress, its time so far; then the time left.

    Args:
        running: The stages running now (:meth:`hubui.progress.StageTracker.running`; two while the folder is
            written and the reference outputs computed), or the ``done`` status; empty before the first event.
        finished: The stages done so far, with their durations.

    Returns:
        Markdown: a bold line per running stage (``stage 3 of 5: reference``) with the pipeline's line, the
        whole conversion's progress with the time left, and the finished stages.
    """
    if not running:
        return "starting…"
    done = " · ".join(f"{md(stage)} {duration_text(seconds)}" for stage, seconds in finished)
    latest = running[-1]
    if latest.stage == "done":
        lines = [f"**done** in {duration_text(latest.total_s)}: {md(latest.message)}"]
    else:
        lines = []
        for status in running:
            head = f"stage {status.number} of {len(STAGES)}: {status.stage}" if status.number else md(status.stage)
            pct = percent_text(status.stage_fraction)
            parts = [f"{pct} of this stage" if pct else "running", f"{duration_text(status.elapsed_s)} so far"]
            label = f" ({STAGE_LABELS[status.stage]})" if status.stage in STAGE_LABELS else ""
            lines.append(f"**{head}**{label}: " + " · ".join([*parts, md(status.message)]))
        whole = [f"{latest.fraction:.0%} of the whole conversion"]
        if latest.eta_s is not None:
            whole.append(time_left_text(latest.eta_s))
        lines.append(" · ".join(whole))
    if done:
        lines.append(f"finished: {done}")
    return "  \n".join(lines)


def files_frame(files: Iterable[tuple[str, int]]) -> pd.DataFrame:
    """Exported files with their sizes."""
    return pd.DataFrame([[name, human_size(size)] for name, size in files], columns=list(FILE_COLUMNS))


# --- card and push ----------------------------------------------------------------------------------
def card_markdown(readme: str) -> str:
    """A README for the preview: its YAML metadata as a code block, then the body."""
    match = re.match(r"^---\r?\n(.*?)\r?\n---[ \t]*\r?\n?", readme, re.DOTALL)
    if not match:
        return readme
    return f"```yaml\n{match.group(1)}\n```\n\n{readme[match.end() :]}"


def plan_markdown(plan: PushPlan) -> str:
    """The dry run: target, files and sizes, the card's warnings, and the README's diff, collapsed.

    The diff can run to thousands of lines: it sits in a closed ``<details>`` block (click "Card diff" to open it),
    so that what comes after it on the page stays in view.
    """
    lines = [
        f"**Dry run: nothing was uploaded.** {md(plan.user)} → {code(plan.repo_id)} "
        f"({'existing repo' if plan.repo_exists else 'new repo'}), {md(plan.target)}",
        "",
        "| file | size |",
        "|---|---|",
        *[f"| {md(f.path)} | {human_size(f.size)} |" for f in plan.files],
        f"| **total** | **{human_size(plan.total_bytes)}** |",
        "",
        f"README: {md(plan.readme_action)}; parity verdict of the folder: {md(plan.parity_verdict or 'none')}",
    ]
    if plan.weights_origin:
        lines += ["", f"Weights: {md(plan.weights_origin)}"]
    if plan.warnings:
        lines += ["", "The card will lack:", *[f"- {md(warning)}" for warning in plan.warnings]]
    if plan.readme_diff:
        diff = plan.readme_diff.rstrip("\n")
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", diff)), default=0))
        count = diff.count("\n") + 1
        lines += ["", f"<details><summary>Card diff ({count} lines)</summary>", "", f"{fence}diff", diff, fence]
        lines += ["", "</details>"]
    return "\n".join(lines)


def defaults_markdown(defaults: CardFields) -> str:
    """The note over the card form: which fields were filled from the model, and that they can be edited."""
    base = defaults.base_model
    bases = ", ".join(base) if isinstance(base, list) else base
    licence = code(defaults.license) if defaults.license else "unknown (pick the one the weights' source states)"
    if defaults.license == "other" and defaults.license_name:
        licence += f" ({code(defaults.license_name)})"
    return (
        f"Filled from the model: licence {licence}, base model {code(bases) if bases else 'none'}, "
        f"pipeline tag {code(defaults.pipeline_tag) if defaults.pipeline_tag else 'none'}. "
        "Check and edit them: the card says what this form says."
    )


def result_markdown(result: PublishResult) -> str:
    """Where the push landed, with links."""
    push = result.push
    if not push.changed:
        head = f"Nothing changed: every file is already at {md(push.revision)}; no commit or PR was made."
    else:
        head = f"Pushed {len(push.files)} files to {code(push.repo_id)} at {code(push.revision)}."
    links = [f"[commit {push.commit_oid[:10]}]({push.commit_url})", f"[repo]({push.repo_url})"]
    if push.pr_url:
        links.insert(0, f"[pull request]({push.pr_url})")
    return head + "  \n" + " · ".join(links)


def verification_markdown(verification: Verification | None) -> str:
    """The verification verdict: passed / failed / not completed."""
    if verification is None:
        return "Verification: **not completed** (it did not run)."
    return f"Verification: **{verification.status}**. {md(verification.detail)}"


__all__ = [
    "FILE_COLUMNS",
    "PARITY_COLUMNS",
    "card_markdown",
    "defaults_markdown",
    "facts_markdown",
    "files_frame",
    "human_size",
    "identity_markdown",
    "md",
    "num",
    "parity_frame",
    "plan_markdown",
    "progress_markdown",
    "result_markdown",
    "verdict_markdown",
    "verification_markdown",
]
