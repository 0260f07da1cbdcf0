"""The parity plot: the original model's output values against the converted model's, one point each.

It reads ``ParityReport.samples``: ``{output_name: {"original": [...], "converted": [...]}}``, cumulative
over batches, at most 2048 values per output. Points on the diagonal are values the export reproduced;
an fp16/bf16 export shows a thin band around it, a broken one a cloud. The data goes to
``gr.ScatterPlot`` as a pandas DataFrame (drawn by gradio's bundled Vega-Lite, so it works offline).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from hubui import ParityReport

COLUMNS = ("original", "converted", "output")
PLOT_LABEL = "Original vs converted output values"
NO_SAMPLES = "no samples yet"


def samples_of(report: ParityReport | None) -> dict[str, dict[str, list[float]]]:
    """The report's ``samples`` (``{}`` before any report)."""
    return report.samples if report is not None else {}


def samples_frame(report: ParityReport | None) -> pd.DataFrame:
    """One row per sampled value: ``original``, ``converted`` and the ``output`` it belongs to.

    Pairs with a non-finite value are left out (a plot cannot place them; the table counts them).
    """
    rows: list[tuple[float, float, str]] = []
    for name, pair in samples_of(report).items():
        original, converted = pair.get("original") or [], pair.get("converted") or []
        rows += [
            (float(a), float(b), str(name))
            for a, b in zip(original, converted, strict=False)
            if math.isfinite(a) and math.isfinite(b)
        ]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def plot_label(frame: pd.DataFrame) -> str:
    """The plot's label: says when there is nothing to draw yet."""
    return PLOT_LABEL if len(frame) else f"{PLOT_LABEL} ({NO_SAMPLES})"


__all__ = ["COLUMNS", "NO_SAMPLES", "PLOT_LABEL", "plot_label", "samples_frame", "samples_of"]
