"""Parity samples and the plot drawn from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubui.parity import ParityReport
from hubui.pipeline import ConvertOptions, iter_convert
from hubui.plots import plot_parity
from hubui.spec import ModelSpec


def test_samples_grow_batch_by_batch_and_plot(tmp_path: Path):
    reports = [
        e.report
        for e in iter_convert(ModelSpec("timm", "test_resnet"), ConvertOptions(tmp_path / "o", batch_size=2))
        if e.report is not None
    ]
    sizes = [len(r.samples["logits"]["original"]) for r in reports]
    assert sizes == sorted(sizes) and 0 < sizes[0] < sizes[-1] <= 2048
    final = reports[-1]
    # fp32: every sampled pair is identical, as the metrics say
    assert final.samples["logits"]["original"] == final.samples["logits"]["converted"]
    for kind in ("scatter", "histogram"):
        fig = plot_parity(final, kind)
        assert len(fig.axes) == 1 and fig.axes[0].get_title() == "logits"
    assert "samples" not in final.to_dict()  # parity.json stays small


def test_plot_without_samples_and_bad_kind(tmp_path: Path):
    empty = ParityReport.from_dict({"verdict": "pending", "status": "running", "precision": "fp32"})
    assert plot_parity(empty).axes[0].texts[0].get_text() == "no outputs compared yet"
    with pytest.raises(ValueError, match="'pie'"):
        plot_parity(empty, "pie")  # type: ignore[arg-type]
