"""Parity plots, shared by the app and the notebooks.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state), so concurrent app sessions
can draw at the same time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from hubui.errors import InvalidInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hubui.parity import ParityReport

PlotKind = Literal["scatter", "histogram"]


def plot_parity(report: ParityReport, kind: PlotKind = "scatter") -> Figure:
    """Original vs converted outputs as a scatter (one panel per output), or a histogram of abs diffs.

    Uses ``report.samples``: a bounded, deterministic subsample of each output's values, collected batch
    by batch, so a partial report plots what has run so far.

    Args:
        report: A partial or final parity report.
        kind: ``"scatter"`` or ``"histogram"``.

    Returns:
        A matplotlib figure (display it in a notebook, or hand it to ``gr.Plot``).

    Raises:
        InvalidInputError: For an unknown ``kind``.
    """
    from matplotlib.figure import Figure

    if kind not in ("scatter", "histogram"):
        raise InvalidInputError(f"Unknown plot kind {kind!r}", "Use 'scatter' or 'histogram'.")
    samples = {name: pair for name, pair in report.samples.items() if pair.get("original")}
    fig = Figure(figsize=(4.2 * max(1, len(samples)), 3.8), layout="constrained")
    if not samples:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no outputs compared yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    axes = fig.subplots(1, len(samples), squeeze=False)[0]
    for ax, (name, pair) in zip(axes, samples.items(), strict=True):
        original, converted = pair["original"], pair["converted"]
        if kind == "scatter":
            ax.scatter(original, converted, s=4, alpha=0.5)
            finite = [v for v in original + converted if math.isfinite(v)]
            lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
            ax.plot([lo, hi], [lo, hi], linewidth=0.8, color="grey")
            ax.set_xlabel("original")
            ax.set_ylabel("converted")
        else:
            diffs = [abs(a - b) for a, b in zip(original, converted, strict=True)]
            ax.hist(diffs, bins=40)
            ax.set_xlabel("|original - converted|")
            ax.set_ylabel("count")
        ax.set_title(name, fontsize=10)
    status = report.verdict if report.status == "done" else f"batch {report.batches_done}/{report.batches_total}"
    fig.suptitle(f"{report.architecture or 'model'} {report.precision}: {status}", fontsize=11)
    return fig


__all__ = ["PlotKind", "plot_parity"]
