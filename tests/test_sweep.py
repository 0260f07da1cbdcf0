"""The whole flow for every timm ``test_*`` model, plus resnet50 and one ViT.

Each model, with seeded random weights: convert to an fp32 folder (parity must pass with outputs and weights
bit-identical), publish it to the local Hub (the re-download verification must pass), and then, without any
hubui code, ``timm.create_model("hf-hub:...", pretrained=True)`` must reproduce the original's logits exactly.

The ``test_*`` list is read from timm when the tests are collected, so models that a new timm adds are swept
too. A model that cannot round-trip for a reason that is understood goes in ``KNOWN_FAILURES`` (an explicit
strict xfail); nothing is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from hubui import pipeline
from hubui.pipeline import ConvertOptions
from hubui.publishing import PushRequest
from hubui.spec import LoadedModel, ModelSpec

# Real architectures: slower, still part of the default run.
SLOW_MODELS = ("resnet50", "vit_base_patch16_224")

# Model name -> why it cannot round-trip (a timm limitation that hubui reports as a HubUIError). Empty: all
# 18 test_* models of timm 1.0.31 round-trip.
KNOWN_FAILURES: dict[str, str] = {}


def _params() -> list[pytest.ParameterSet]:
    params = []
    for name in timm.list_models("test_*"):
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])] if name in KNOWN_FAILURES else []
        params.append(pytest.param(name, marks=marks, id=name))
    params += [pytest.param(name, marks=pytest.mark.slow, id=name) for name in SLOW_MODELS]
    return params


def test_sweep_is_not_empty() -> None:
    # A renamed or removed family in a new timm would otherwise shrink the sweep without a word.
    assert timm.list_models("test_*"), "timm lists no test_* models any more; update the sweep"


def _fixed_batch(loaded: LoadedModel, n: int = 2) -> torch.Tensor:
    """A seeded random batch in the model's input size (not preprocessed images: any input must agree)."""
    gen = torch.Generator().manual_seed(1234)
    return torch.randn((n, *loaded.data_config["input_size"]), generator=gen)


@pytest.mark.parametrize("name", _params())
def test_timm_model_round_trips(name: str, tmp_path: Path, localhub, repo_name: str, fresh_cache: Path) -> None:
    folder = tmp_path / "export"

    # 1. convert: parity passes with nothing lost
    result = pipeline.convert(
        ModelSpec("timm", name, seed=0), ConvertOptions(folder, precision="fp32", keep_original=True)
    )
    report = result.report
    assert report.verdict == "pass", report.reasons
    assert report.outputs and all(o.max_abs_diff == 0 for o in report.outputs), [o.to_dict() for o in report.outputs]
    assert report.weights is not None and report.weights.identical, report.weights
    assert report.weights.compared == len(result.loaded.model.state_dict())
    assert (folder / "parity.json").is_file()
    assert {"config.json", "model.safetensors", "parity.json"} <= {f for f, _ in result.export.files}

    # 2. publish to the local Hub: the re-downloaded copy reproduces the original
    repo_id = f"alice/{repo_name}"
    published = pipeline.publish(
        PushRequest(folder, repo_id, allow_random_weights=True), token=localhub.users.alice, original=result.loaded
    )
    assert published.verification is not None
    assert published.verification.status == "passed", published.verification.detail
    assert published.verification.parity is not None and published.verification.parity["weights"]["identical"]

    # 3. independently of hubui: timm's own hf-hub: loader gives the same logits, bit for bit
    hub_model = timm.create_model(f"hf-hub:{repo_id}", pretrained=True, cache_dir=fresh_cache).eval()
    batch = _fixed_batch(result.loaded)
    with torch.inference_mode():
        expected = result.loaded.model(batch)
        got = hub_model(batch)
    # the logits depend on the input, so agreeing on them means something
    assert not torch.equal(expected[0], expected[1])
    assert got.shape == expected.shape
    assert torch.equal(got, expected), float((got - expected).abs().max())
