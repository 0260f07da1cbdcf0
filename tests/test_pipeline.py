"""The timm flow in-process, beyond the round trip that tests/test_library_matrix.py runs for every library:
pretrained tags, half precision, cancelling, and a conversion whose weights differ."""

from __future__ import annotations

import json
import threading

import pytest
import timm
import torch
from huggingface_hub import HfApi, ModelCard
from safetensors.torch import load_file, save_file

from hubui.errors import ParityFailedError
from hubui.pipeline import ConvertOptions, convert, iter_convert, publish
from hubui.publishing import PushRequest
from hubui.spec import ModelSpec


def test_pretrained_tag_is_found_by_name_on_the_hub(localhub, tmp_path):
    # Seed timm/test_vit.r160_in1k where timm's own pretrained config looks for it.
    torch.manual_seed(5)
    seeded = timm.create_model("test_vit", pretrained=False).eval()
    folder = tmp_path / "seed"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in seeded.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"architecture": "test_vit", "num_classes": 1000}))
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo("timm/test_vit.r160_in1k", exist_ok=True)
    api.upload_folder(repo_id="timm/test_vit.r160_in1k", folder_path=folder, commit_message="seed")

    result = convert(ModelSpec("timm", "test_vit", pretrained="r160_in1k"), ConvertOptions(tmp_path / "out"))
    assert result.passed
    assert "test_vit.r160_in1k" in result.loaded.source
    exported = load_file(result.export.folder / "model.safetensors")
    assert all(torch.equal(exported[k], v) for k, v in seeded.state_dict().items())


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_reports_drift_and_says_so_everywhere(localhub, tmp_path, repo_name, precision):
    result = convert(ModelSpec("timm", "test_vit", seed=1), ConvertOptions(tmp_path / "out", precision=precision))
    assert result.passed
    logits = result.report.outputs[0]
    assert logits.max_abs_diff > 0 and logits.cosine_min < 1.0
    config = json.loads((result.export.folder / "config.json").read_text())
    assert config["hubui"]["precision"] == precision
    dtypes = {t.dtype for t in load_file(result.export.folder / "model.safetensors").values() if t.is_floating_point()}
    assert dtypes == {torch.float16 if precision == "fp16" else torch.bfloat16}

    repo = f"alice/{repo_name}"
    published = publish(
        PushRequest(result.export.folder, repo, allow_random_weights=True),
        token=localhub.users.alice,
        original=result.loaded,
    )
    assert published.verification.status == "passed"
    card = ModelCard.load(repo).text
    assert (
        f"`{precision}`" in card or f"| {precision}" in card or f"{precision}" in card.split("Conversion and parity")[1]
    )


def test_cancelled_conversion_cannot_be_pushed(localhub, tmp_path, repo_name):
    cancel = threading.Event()
    final = None
    for event in iter_convert(
        ModelSpec("timm", "test_resnet"), ConvertOptions(tmp_path / "out", batch_size=1), cancel=cancel
    ):
        if event.stage == "parity":
            cancel.set()
        final = event
    assert final.stage == "done" and final.report.verdict == "cancelled"
    assert json.loads((tmp_path / "out" / "parity.json").read_text())["verdict"] == "cancelled"
    with pytest.raises(ParityFailedError, match="cancelled"):
        publish(
            PushRequest(tmp_path / "out", f"alice/{repo_name}", allow_random_weights=True), token=localhub.users.alice
        )
    assert HfApi(endpoint=localhub.url).repo_exists(f"alice/{repo_name}") is False


def test_a_conversion_whose_weights_differ_fails_and_names_the_module(localhub, tmp_path, repo_name, monkeypatch):
    # Simulate a converter bug: the written safetensors has one tensor shifted. fc1 reads a LayerNorm output
    # (zero mean per token), so a constant shift barely reaches the logits: the weight check must catch it.
    import hubui.export_folder as export_module  # where every format's folder writer casts the state dict

    real = export_module.cast_state_dict

    def corrupting(model, precision):
        sd = real(model, precision)
        sd["blocks.1.mlp.fc1.weight"] = sd["blocks.1.mlp.fc1.weight"] + 0.05
        return sd

    monkeypatch.setattr(export_module, "cast_state_dict", corrupting)
    result = convert(ModelSpec("timm", "test_vit", seed=2), ConvertOptions(tmp_path / "out"))
    assert not result.passed
    assert result.report.diverging_module == "blocks.1.mlp.fc1"
    with pytest.raises(ParityFailedError):
        publish(
            PushRequest(result.export.folder, f"alice/{repo_name}", allow_random_weights=True),
            token=localhub.users.alice,
        )
    assert HfApi(endpoint=localhub.url).repo_exists(f"alice/{repo_name}") is False
