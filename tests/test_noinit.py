"""Rebuilding without the random initialisation that loading overwrites (hubui._noinit)."""

from __future__ import annotations

import logging
import threading

import pytest
import torch

from hubui._noinit import without_random_init


def _model() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 4))
    # A deterministic buffer no checkpoint holds, built the way open_clip builds its causal mask.
    mask = torch.empty(4, 4)
    mask.fill_(float("-inf"))
    mask.triu_(1)
    model.register_buffer("mask", mask, persistent=False)
    return model


def _checkpoint() -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return {k: v.clone() for k, v in _model().state_dict().items()}


def test_a_strict_load_gives_the_checkpoint_and_skips_the_random_fills(caplog: pytest.LogCaptureFixture) -> None:
    ckpt = _checkpoint()
    calls = 0

    def build() -> torch.nn.Module:
        nonlocal calls
        calls += 1
        model = _model()
        model.load_state_dict(ckpt, strict=True)
        return model

    with caplog.at_level(logging.DEBUG, logger="hubui._noinit"):
        model = without_random_init(build, "toy")
    assert calls == 1
    assert "without 4 random fills" in caplog.text  # two Linear layers: weight and bias each
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, ckpt[name]), name
    # Deterministic buffers are built as usual.
    assert torch.equal(model.mask, torch.full((4, 4), float("-inf")).triu(1))


def test_a_tensor_the_loader_leaves_unwritten_means_a_second_build_with_random_init(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A loader that resets the head (as timm does for a different num_classes) and loads the rest non-strict.
    ckpt = {k: v for k, v in _checkpoint().items() if not k.startswith("2.")}
    calls = 0

    def build() -> torch.nn.Module:
        nonlocal calls
        calls += 1
        torch.manual_seed(7)
        model = _model()
        model.load_state_dict(ckpt, strict=False)
        return model

    with caplog.at_level(logging.INFO, logger="hubui._noinit"):
        model = without_random_init(build, "toy")
    assert calls == 2
    assert "left 2 tensor(s) of toy unwritten (2.weight, 2.bias)" in caplog.text
    # The head is exactly what the library's own random init gives under that seed, not uninitialised memory.
    torch.manual_seed(7)
    expected = _model()
    assert torch.equal(model[2].weight, expected[2].weight)
    assert torch.equal(model[2].bias, expected[2].bias)
    assert torch.equal(model[0].weight, ckpt["0.weight"])


def test_other_threads_keep_their_random_init() -> None:
    """The app builds models for several sessions at once: the skip must stay in the thread that asked for it."""
    inside, release = threading.Event(), threading.Event()
    ckpt = _checkpoint()

    def build() -> torch.nn.Module:
        model = _model()
        inside.set()
        assert release.wait(30)
        model.load_state_dict(ckpt)
        return model

    result: list[torch.nn.Module] = []
    worker = threading.Thread(target=lambda: result.append(without_random_init(build, "toy")))
    worker.start()
    try:
        assert inside.wait(30)
        # While the worker is inside the mode: a model built here is initialised, with the usual numbers.
        gen = torch.Generator().manual_seed(0)
        here = torch.nn.Linear(64, 64)
        torch.nn.init.normal_(here.weight, generator=gen)
        expected = torch.empty(64, 64).normal_(generator=torch.Generator().manual_seed(0))
        assert torch.equal(here.weight, expected)
    finally:
        release.set()
        worker.join(30)
    assert torch.equal(result[0][0].weight, ckpt["0.weight"])


def test_errors_of_the_loader_pass_through() -> None:
    def build() -> torch.nn.Module:
        model = _model()
        model.load_state_dict({"0.weight": torch.zeros(1)}, strict=True)
        return model

    with pytest.raises(RuntimeError, match=r"size mismatch|Missing key"):
        without_random_init(build, "toy")
