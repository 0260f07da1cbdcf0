"""Finding the first module whose output diverges, with forward hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hubui.parity.metrics import Tolerance, _sample_stats
from hubui.parity.weights import WeightComparison


# --- divergence -------------------------------------------------------------------------------------
def _first_weight_owner(model: torch.nn.Module, weights: WeightComparison) -> str | None:
    """The module owning the first differing tensor, in the model's own state_dict order."""
    bad = {
        n for k in ("value_mismatch", "shape_mismatch", "dtype_mismatch", "missing") for n in weights.names.get(k, [])
    }
    for name in model.state_dict():
        if name in bad:
            return name.rsplit(".", 1)[0] if "." in name else name
    return None


class _StopForward(Exception):
    """Raised inside a hook to abandon a forward pass once the first divergence is known."""


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            t = _first_tensor(item)
            if t is not None:
                return t
    if isinstance(out, dict):
        for item in out.values():
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _module_diverges(ref: torch.Tensor, test: torch.Tensor, tolerance: Tolerance) -> bool:
    if ref.shape != test.shape:
        return True
    if not ref.is_floating_point():
        return not torch.equal(ref, test)
    if ref.ndim == 0:
        ref, test = ref.reshape(1, 1), test.reshape(1, 1)
    elif ref.ndim == 1:
        ref, test = ref.unsqueeze(0), test.unsqueeze(0)
    s = _sample_stats(ref, test)
    if not bool(torch.isfinite(s["t"]).all()) and bool(torch.isfinite(s["r"]).all()):
        return True
    if tolerance.max_abs_diff is not None or tolerance.max_rel_diff is not None:
        abs_ok = tolerance.max_abs_diff is not None and float(s["dmax"].max()) <= tolerance.max_abs_diff
        rel_ok = tolerance.max_rel_diff is not None and float(s["rel"].max()) <= tolerance.max_rel_diff
        if not (abs_ok or rel_ok):
            return True
    return tolerance.cosine_min is not None and float(s["cos"].min()) < tolerance.cosine_min


def find_diverging_module(
    original: torch.nn.Module,
    rebuilt: torch.nn.Module,
    pixels: torch.Tensor,
    tolerance: Tolerance,
    forward: Callable[[torch.nn.Module, torch.Tensor], Any] | None = None,
) -> str | None:
    """Name the first module, in execution order, whose output differs beyond ``tolerance``.

    Forward hooks record every module's output in the original (cloned, because later in-place ops
    such as ``ReLU(inplace=True)`` would change it), then the rebuilt model runs with hooks that compare
    each module's output as it completes and stop at the first divergence. Hooks fire when a module
    *finishes*, so a leaf (``layer2.0.conv1``) is reported before the block that contains it.
    A module called several times is matched call by call.

    Args:
        original: The reference model.
        rebuilt: The model under test (same architecture, so the same module names).
        pixels: A small batch (one sample is enough).
        tolerance: Thresholds; the closeness and cosine checks apply to every module output.
        forward: How to call a model; ``model(pixels)`` by default.

    Returns:
        The dotted module name, or None if no module output is beyond tolerance.
    """
    call = forward or (lambda m, x: m(x))
    recorded: dict[tuple[str, int], torch.Tensor] = {}
    calls: dict[str, int] = {}
    found: list[str] = []

    def record(name: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, _args: Any, output: Any) -> None:
            t = _first_tensor(output)
            idx = calls.get(name, 0)
            calls[name] = idx + 1
            if t is not None:
                recorded[(name, idx)] = t.detach().clone()

        return hook

    def compare(name: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, _args: Any, output: Any) -> None:
            idx = calls.get(name, 0)
            calls[name] = idx + 1
            t = _first_tensor(output)
            ref = recorded.get((name, idx))
            if t is None or ref is None:
                return
            if _module_diverges(ref, t.detach(), tolerance):
                found.append(name)
                raise _StopForward

        return hook

    def run(model: torch.nn.Module, make_hook: Callable[[str], Callable[..., None]]) -> None:
        handles = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if n]
        calls.clear()
        try:
            with torch.inference_mode():
                call(model, pixels)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()

    run(original, record)
    run(rebuilt, compare)
    return found[0] if found else None
