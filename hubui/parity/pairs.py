"""What one parity run compares: both sides' named outputs, and how to probe the part of a model behind each.

A format (:mod:`hubui.libraries`) builds a :class:`Pair` for an original and its rebuilt copy; the parity
runner (:mod:`hubui.parity.run`) calls both sides batch by batch and, on a failure, a :class:`Probe` to find the
first diverging module. This module imports no library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

SideFn = Callable[[torch.Tensor, bool], dict[str, torch.Tensor]]
"""``side(pixels, first_batch)``: the outputs for one batch; outputs that do not depend on the images (open_clip's
text side) are returned with the first batch only."""


@dataclass(frozen=True)
class Probe:
    """How to re-run the part of both models that produced one output, on one sample.

    Args:
        forward: ``forward(model, inputs)``; what :func:`find_diverging_module` calls on each model.
        sample: ``sample(index, pixels)``: the inputs for sample ``index`` of that output (a batch of one).
    """

    forward: Callable[[torch.nn.Module, torch.Tensor], Any]
    sample: Callable[[int, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Pair:
    """Both sides of one parity run.

    Args:
        ref: The original's outputs.
        test: The rebuilt model's outputs.
        probes: Output name to probe, in the order the module search tries them.
        per_image: Outputs with one row per image (the others have one row per prompt).
        ranked: Outputs whose top-1/top-5 mean something (class scores).
        exact: Outputs that must be equal whatever the precision (token ids).
        describe: Extra facts for the report's ``inputs`` (the prompts).
    """

    ref: SideFn
    test: SideFn
    probes: dict[str, Probe]
    per_image: frozenset[str]
    ranked: frozenset[str]
    exact: frozenset[str] = frozenset()
    describe: dict[str, Any] = field(default_factory=dict)


def pixels_sample(index: int, pixels: torch.Tensor) -> torch.Tensor:
    return pixels[index : index + 1]


__all__ = ["Pair", "Probe", "SideFn", "pixels_sample"]
