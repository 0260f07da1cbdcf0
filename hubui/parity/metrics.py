"""Tolerances and per-output metrics (the weight comparison is in :mod:`hubui.parity.weights`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from hubui.export_folder import check_precision


# --- tolerances -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """What an export must achieve to pass. ``None`` disables a check.

    Args:
        max_abs_diff: An output passes the closeness test if its largest absolute difference is at most
            this, or (like ``numpy.isclose``'s atol/rtol) if ``max_rel_diff`` passes.
        max_rel_diff: Largest per-sample ``max|a-b| / max|a|`` allowed (scale-free, so it means the same
            for logits of size 1 and of size 50).
        cosine_min: Smallest per-sample cosine similarity allowed.
        top1_agreement_min: Smallest fraction of samples whose argmax must agree.
        weights_exact: Every saved floating tensor must equal the original cast to the export precision,
            bit for bit, with that dtype (integer tensors: equal and same dtype).
    """

    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    cosine_min: float | None = None
    top1_agreement_min: float | None = None
    weights_exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tolerance:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in names})


# Calibrated on random-weight models (seeded; no pretrained weights are reachable here) with the 8 default
# inputs, on CPU, torch 2.15 / timm 1.0.31, rebuilt by timm from the exported file. Norm scales were drawn
# in [0.5, 1.5] (timm zero-inits the last norm of ResNet branches and ConvNeXt layer scales, which would
# hide most of the network). Measured per-sample worst cosine, max |diff| of the logits, top-1 agreement:
#   fp16: test_resnet 0.9999996 / 3.9e-4 / 1.0, test_vit 0.9999996 / 4.5e-4 / 1.0,
#         resnet50 0.9999998 / 0.20 / 1.0, vit_base_patch16_224 0.9999995 / 2.2e-3 / 1.0,
#         convnext_tiny 0.9999997 / 1.5e-3 / 1.0
#   bf16: test_resnet 0.99998 / 4.1e-3 / 1.0, test_vit 0.99997 / 3.5e-3 / 1.0,
#         resnet50 0.99998 / 2.3 / 1.0, vit_base_patch16_224 0.99997 / 1.8e-2 / 1.0,
#         convnext_tiny 0.99998 / 1.4e-2 / 1.0
# Absolute differences scale with the logits (resnet50's reach ~400 here), so halves are judged by cosine.
# The cosine floors leave a wide margin (1 - cosine measured ~5e-7 fp16, ~3.5e-5 bf16) for trained models,
# whose activations drift more, and still fail a single corrupted layer (cosine < 0.99 in the tests).
# Top-1 is the noisiest number: on noise images a trained model's top classes can be near-ties, so one
# flip in 8 inputs is allowed for fp16 and two for bf16; cosine is the primary guard.
_PRESETS: dict[str, Tolerance] = {
    # Same fp32 weights, same kernels, same inputs: outputs are normally bit-identical. 1e-6 absolute, or
    # 1e-6 of the output's own scale (about 8 float32 ulps of the largest logit), lets through only
    # benign reordering of float32 sums (e.g. a different thread count) and nothing a weight change makes.
    "fp32": Tolerance(max_abs_diff=1e-6, max_rel_diff=1e-6, cosine_min=0.999999, top1_agreement_min=1.0),
    "fp16": Tolerance(cosine_min=0.999, top1_agreement_min=0.85),
    "bf16": Tolerance(cosine_min=0.99, top1_agreement_min=0.75),
}


def tolerance_preset(precision: str) -> Tolerance:
    """The default tolerance for an export precision.

    Args:
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.

    Returns:
        The preset; change fields with ``dataclasses.replace(preset, cosine_min=...)``.

    Raises:
        InvalidInputError: For an unknown precision.
    """
    check_precision(precision)
    return _PRESETS[precision]


# --- output metrics ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputMetrics:
    """How far one output of the rebuilt model is from the original's, over all inputs so far.

    Args:
        name: ``"logits"`` for timm.
        shape: Full shape over the inputs compared, e.g. ``(8, 1000)``.
        max_abs_diff: Largest ``|a - b|``.
        mean_abs_diff: Mean ``|a - b|``.
        max_rel_diff: Largest per-sample ``max|a - b| / max|a|``.
        cosine_min: Smallest per-sample cosine similarity.
        top1_agreement: Fraction of samples with the same argmax; None for outputs that are not class scores
            (embeddings, token ids), where the largest coordinate means nothing.
        top5_overlap: Mean fraction of shared top-5 indices (top-k with k = min(5, classes)); None likewise.
        nonfinite: Number of NaN/inf values in the rebuilt output where the original has none.
        exact: The output must be equal whatever the precision (open_clip's ``text_tokens``).
    """

    name: str
    shape: tuple[int, ...]
    max_abs_diff: float
    mean_abs_diff: float
    max_rel_diff: float
    cosine_min: float
    top1_agreement: float | None
    top5_overlap: float | None
    nonfinite: int = 0
    exact: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return {k: _json_float(v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputMetrics:
        def f(key: str) -> float:
            value = data.get(key)
            return float("nan") if value is None else float(value)

        return cls(
            name=str(data["name"]),
            shape=tuple(int(x) for x in data.get("shape", ())),
            max_abs_diff=f("max_abs_diff"),
            mean_abs_diff=f("mean_abs_diff"),
            max_rel_diff=f("max_rel_diff"),
            cosine_min=f("cosine_min"),
            top1_agreement=None if data.get("top1_agreement") is None else f("top1_agreement"),
            top5_overlap=None if data.get("top5_overlap") is None else f("top5_overlap"),
            nonfinite=int(data.get("nonfinite", 0)),
            exact=bool(data.get("exact", False)),
        )


def _json_float(value: Any) -> Any:
    # JSON has no NaN/inf; None says "not measurable" (the ``nonfinite`` count says why).
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sample_stats(ref: torch.Tensor, test: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample statistics of two ``(N, ...)`` tensors, computed in float64."""
    r = ref.detach().to("cpu", torch.float64).flatten(1)
    t = test.detach().to("cpu", torch.float64).flatten(1)
    d = (r - t).abs()
    dmax = d.amax(dim=1)
    scale = r.abs().amax(dim=1).clamp_min(torch.finfo(torch.float64).tiny)
    cos = torch.nn.functional.cosine_similarity(r, t, dim=1, eps=1e-30)
    # Two identical all-zero rows have cosine 0 by the formula, but they are a perfect match.
    cos = torch.where(dmax == 0, torch.ones_like(cos), cos)
    return {"r": r, "t": t, "d": d, "dmax": dmax, "rel": dmax / scale, "cos": cos}


class _OutputAccumulator:
    """Running metrics for one named output across batches."""

    def __init__(self, name: str, ranked: bool = True, exact: bool = False) -> None:
        self.name = name
        self.ranked = ranked
        self.exact = exact
        self.count = 0
        self.sample_shape: tuple[int, ...] = ()
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.elements = 0
        self.max_rel = 0.0
        self.cos_min = 1.0
        self.top1 = 0
        self.top5 = 0.0
        self.nonfinite = 0

    def update(self, ref: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
        """Add a batch; returns the per-sample cosine (used to pick the worst sample)."""
        if ref.shape != test.shape:
            raise _ShapeMismatch(self.name, tuple(ref.shape), tuple(test.shape))
        s = _sample_stats(ref, test)
        self.nonfinite += int((~torch.isfinite(s["t"]) & torch.isfinite(s["r"])).sum())
        self.count += ref.shape[0]
        self.sample_shape = tuple(ref.shape[1:])
        self.max_abs = max(self.max_abs, float(s["dmax"].max()))
        self.sum_abs += float(s["d"].sum())
        self.elements += s["d"].numel()
        self.max_rel = max(self.max_rel, float(s["rel"].max()))
        self.cos_min = min(self.cos_min, float(s["cos"].min()))
        if self.ranked:
            r, t = s["r"], s["t"]
            self.top1 += int((r.argmax(dim=1) == t.argmax(dim=1)).sum())
            k = min(5, r.shape[1])
            rk = r.topk(k, dim=1).indices
            tk = t.topk(k, dim=1).indices
            self.top5 += float((rk.unsqueeze(2) == tk.unsqueeze(1)).any(dim=2).sum(dim=1).double().div(k).sum())
        # Python's max/min silently drop NaN; make an inf/NaN output impossible to miss in the metrics.
        if self.nonfinite:
            self.max_abs = self.max_rel = self.cos_min = float("nan")
        return s["cos"]

    def result(self) -> OutputMetrics:
        n = max(self.count, 1)
        return OutputMetrics(
            name=self.name,
            shape=(self.count, *self.sample_shape),
            max_abs_diff=self.max_abs,
            mean_abs_diff=self.sum_abs / max(self.elements, 1),
            max_rel_diff=self.max_rel,
            cosine_min=self.cos_min,
            top1_agreement=self.top1 / n if self.ranked else None,
            top5_overlap=self.top5 / n if self.ranked else None,
            nonfinite=self.nonfinite,
            exact=self.exact,
        )


class _ShapeMismatch(Exception):
    def __init__(self, name: str, ref: tuple[int, ...], test: tuple[int, ...]) -> None:
        super().__init__(f"output {name!r} has shape {test} after export, {ref} before")
        self.name, self.ref, self.test = name, ref, test


def check_output(metrics: OutputMetrics, tolerance: Tolerance) -> list[str]:
    """Why an output fails its tolerance (empty when it passes).

    Args:
        metrics: Measured metrics.
        tolerance: The thresholds.

    Returns:
        Human-readable reasons, e.g. ``"logits: cosine_min 0.981 < 0.99"``.
    """
    reasons: list[str] = []
    n = metrics.name
    if metrics.nonfinite:
        reasons.append(f"{n}: {metrics.nonfinite} NaN/inf values")
        return reasons
    if metrics.exact:
        # Token ids: any difference means another tokenizer, whatever the precision; closeness means nothing.
        if metrics.max_abs_diff != 0:
            reasons.append(f"{n}: differ from the original's (they must be equal); the rebuilt tokenizer is another")
        return reasons
    abs_ok = tolerance.max_abs_diff is not None and metrics.max_abs_diff <= tolerance.max_abs_diff
    rel_ok = tolerance.max_rel_diff is not None and metrics.max_rel_diff <= tolerance.max_rel_diff
    if (tolerance.max_abs_diff is not None or tolerance.max_rel_diff is not None) and not (abs_ok or rel_ok):
        reasons.append(
            f"{n}: max_abs_diff {metrics.max_abs_diff:.3g} > {tolerance.max_abs_diff} "
            f"and max_rel_diff {metrics.max_rel_diff:.3g} > {tolerance.max_rel_diff}"
        )
    if tolerance.cosine_min is not None and not metrics.cosine_min >= tolerance.cosine_min:
        reasons.append(f"{n}: cosine_min {metrics.cosine_min:.6g} < {tolerance.cosine_min}")
    if (
        tolerance.top1_agreement_min is not None
        and metrics.top1_agreement is not None
        and not metrics.top1_agreement >= tolerance.top1_agreement_min
    ):
        reasons.append(f"{n}: top1_agreement {metrics.top1_agreement:.4g} < {tolerance.top1_agreement_min}")
    return reasons
