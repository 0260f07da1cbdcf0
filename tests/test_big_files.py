"""Big files (issue 18): sharded transformers folders, the Hub's 50 GB file limit, and the preflight of disk and
memory before anything is written.

Sizes are forced small through the options or by lowering hubui.preflight's limits; no test writes a big file.
A full disk or a short memory is the one reading function of hubui.preflight monkeypatched at its boundary.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoModelForImageClassification

from hubui import preflight
from hubui.cli import main
from hubui.errors import ExportError, InvalidInputError
from hubui.loading import load_model
from hubui.parity import build_parity_inputs
from hubui.pipeline import ConvertOptions, convert
from hubui.spec import ModelSpec

INDEX = "model.safetensors.index.json"


def _shards(folder):
    return sorted(p.name for p in folder.glob("model-*-of-*.safetensors"))


@pytest.fixture(scope="module")
def resnet18():
    return load_model(ModelSpec("timm", "resnet18", seed=3))


def _timm_logits(loaded):
    pixels = build_parity_inputs(loaded.data_config).pixels
    with torch.inference_mode():
        return pixels, loaded.model(pixels)


def test_sharded_transformers_export_loads_from_folder_and_hub(
    resnet18, localhub, tmp_path, repo_name, fresh_cache, monkeypatch, capsys
):
    out = tmp_path / "out"
    result = convert(resnet18.spec, ConvertOptions(out, target="transformers", max_shard_size="10MB"), loaded=resnet18)
    assert result.passed, result.report.reasons
    shards = _shards(out)
    assert len(shards) >= 4 and not (out / "model.safetensors").exists()
    index = json.loads((out / INDEX).read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert index["metadata"]["total_size"] == sum(
        t.numel() * t.element_size() for s in shards for t in load_file(out / s).values()
    )
    for s in shards:  # no shard over the limit unless one tensor alone is (resnet18's biggest is 9.4 MB)
        assert (out / s).stat().st_size <= 10 * 10**6 + 100_000
        with safe_open(str(out / s), "pt") as f:
            assert f.metadata()["format"] == "pt"
            assert all(index["weight_map"][k] == s for k in f.keys())  # noqa: SIM118 (safe_open is no dict)
    # Parity read every shard: all transformers tensors compared, none missing.
    weights = result.report.weights
    assert weights is not None and weights.compared == len(index["weight_map"]) and weights.identical
    assert weights.file == INDEX
    assert {n for n, _ in result.export.files} >= {INDEX, *shards, "config.json", "parity.json"}

    pixels, expected = _timm_logits(resnet18)
    folder_model = AutoModelForImageClassification.from_pretrained(out).eval()
    with torch.inference_mode():
        got = folder_model(pixel_values=pixels).logits
    assert (got - expected).abs().max() <= 1e-5

    # Push: every shard and the index go up; the verification reads them all again.
    monkeypatch.setenv("HF_TOKEN", localhub.users.alice)
    repo = f"alice/{repo_name}"
    code = main(["push", "--from", str(out), "--repo-id", repo, "--allow-random-weights", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    pushed = json.loads(captured.out)
    assert pushed["verification"]["status"] == "passed"
    assert pushed["verification"]["parity"]["weights"]["compared"] == len(index["weight_map"])
    from huggingface_hub import HfApi

    on_hub = set(HfApi(token=localhub.users.alice).list_repo_files(repo))
    assert {INDEX, *shards} <= on_hub and "model.safetensors" not in on_hub
    hub_model = AutoModelForImageClassification.from_pretrained(repo, cache_dir=fresh_cache).eval()
    with torch.inference_mode():
        assert torch.equal(hub_model(pixel_values=pixels).logits, got)


def test_parity_checks_every_shard(resnet18, tmp_path):
    from hubui.libraries.transformers import iter_transformers_parity, load_transformers

    out = tmp_path / "out"
    convert(resnet18.spec, ConvertOptions(out, target="transformers", max_shard_size="10MB"), loaded=resnet18)
    last = out / _shards(out)[-1]
    tensors = load_file(last)
    key = next(k for k, t in tensors.items() if t.is_floating_point() and t.numel() > 100)
    tensors[key] = tensors[key] * 1.01
    save_file(tensors, last, metadata={"format": "pt"})
    *_, report = iter_transformers_parity(resnet18, load_transformers(out), "fp32", folder=out)
    assert report.verdict == "fail"
    assert report.weights.value_mismatch == 1 and report.weights.worst_tensor == key


def test_small_model_is_one_file_and_timm_never_shards(resnet18, tmp_path):
    result = convert(resnet18.spec, ConvertOptions(tmp_path / "t", target="transformers"), loaded=resnet18)
    assert (tmp_path / "t" / "model.safetensors").is_file() and not (tmp_path / "t" / INDEX).exists()
    assert result.report.weights.file == "model.safetensors"
    native = convert(resnet18.spec, ConvertOptions(tmp_path / "n", max_shard_size="10MB"), loaded=resnet18)
    assert native.passed and (tmp_path / "n" / "model.safetensors").is_file()
    assert not list((tmp_path / "n").glob("*index.json"))


def test_cli_max_shard_size(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["convert", "--model", "resnet18", "--target", "transformers", "--out", str(out)]
    assert main([*args, "--max-shard-size", "20MB", "--json"]) == 0, capsys.readouterr().err
    assert len(_shards(out)) >= 2 and (out / INDEX).is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # argparse refuses it before anything is loaded
        main([*args[:-1], str(tmp_path / "bad"), "--max-shard-size", "banana"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--max-shard-size" in err and "'banana'" in err and "5GB" in err
    assert not (tmp_path / "bad").exists()


# --- the Hub's file size limits (timm and open_clip write one file) ---------------------------------------
def _sizes(loaded):
    fp32 = sum(t.numel() * t.element_size() for t in loaded.model.state_dict().values())
    return fp32


def test_one_file_over_the_hub_limit_is_refused_with_the_precision_that_fits(
    resnet18, localhub, alice, repo_name, tmp_path, monkeypatch, capsys
):
    fp32 = _sizes(resnet18)
    monkeypatch.setattr(preflight, "HUB_FILE_LIMIT_BYTES", int(fp32 * 0.75))  # fp32 over, fp16 under
    out = tmp_path / "out"
    with pytest.raises(ExportError) as info:
        convert(resnet18.spec, ConvertOptions(out), loaded=resnet18)
    text = str(info.value)
    assert "model.safetensors" in text and f"would be {preflight.human_size(fp32)} at fp32" in text
    assert f"fp16 or bf16 halves it to {preflight.human_size(fp32 // 2)}" in text
    assert "--allow-unpushable-size" in info.value.hint
    assert list(tmp_path.iterdir()) == []  # nothing written, no staging left
    # fp16 fits: the same model converts.
    assert convert(resnet18.spec, ConvertOptions(out, precision="fp16"), loaded=resnet18).passed
    # A user who will not push may write it anyway; the push is then refused before anything is uploaded.
    big = tmp_path / "big"
    assert convert(resnet18.spec, ConvertOptions(big, allow_unpushable_size=True), loaded=resnet18).passed
    capsys.readouterr()
    monkeypatch.setenv("HF_TOKEN", localhub.users.alice)
    repo = f"alice/{repo_name}"
    code = main(["push", "--from", str(big), "--repo-id", repo])
    err = capsys.readouterr().err
    assert code == 2 and "model.safetensors" in err and "over the Hub's limit" in err and "nothing was uploaded" in err
    assert not alice.repo_exists(repo)


def test_no_precision_fits_says_so(resnet18, tmp_path, monkeypatch):
    fp32 = _sizes(resnet18)
    monkeypatch.setattr(preflight, "HUB_FILE_LIMIT_BYTES", int(fp32 * 0.3))
    with pytest.raises(ExportError, match="even at fp16"):
        convert(resnet18.spec, ConvertOptions(tmp_path / "out", precision="fp16"), loaded=resnet18)


def test_a_file_over_the_recommended_size_is_a_warning(resnet18, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(preflight, "HUB_RECOMMENDED_BYTES", 10**6)
    with caplog.at_level(logging.WARNING, logger="hubui.preflight"):
        assert convert(resnet18.spec, ConvertOptions(tmp_path / "out"), loaded=resnet18).passed
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("model.safetensors" in m and "recommends" in m for m in warned), warned


# --- preflight: disk and memory ---------------------------------------------------------------------------
def test_full_disk_is_refused_before_writing_with_the_numbers(resnet18, tmp_path, monkeypatch):
    fp32 = _sizes(resnet18)
    monkeypatch.setattr(preflight, "disk_free_bytes", lambda path: fp32 // 2)
    out = tmp_path / "out"
    with pytest.raises(ExportError) as info:
        convert(resnet18.spec, ConvertOptions(out, include_pytorch_bin=True), loaded=resnet18)
    text = str(info.value)
    need = 2 * fp32 + preflight.DISK_MARGIN_BYTES
    assert f"needs {preflight.human_size(need)} free" in text and f"{preflight.human_size(fp32 // 2)} free" in text
    assert str(tmp_path) in text and "--out" in info.value.hint
    assert list(tmp_path.iterdir()) == []
    # Without the pickle and at fp16 it fits.
    monkeypatch.setattr(preflight, "disk_free_bytes", lambda path: fp32 // 2 + preflight.DISK_MARGIN_BYTES + 10**5)
    assert convert(resnet18.spec, ConvertOptions(out, precision="fp16"), loaded=resnet18).passed


def test_short_memory_is_refused_and_can_be_overridden(resnet18, tmp_path, monkeypatch):
    fp32 = _sizes(resnet18)
    monkeypatch.setattr(preflight, "mem_available_bytes", lambda: fp32 // 4)
    out = tmp_path / "out"
    with pytest.raises(ExportError) as info:
        convert(resnet18.spec, ConvertOptions(out), loaded=resnet18)
    text = str(info.value)
    assert f"needs about {preflight.human_size(fp32)} more memory" in text  # 2x fp32, less the released original
    assert f"{preflight.human_size(fp32 // 4)} is available" in text and "--no-memory-check" in info.value.hint
    assert list(tmp_path.iterdir()) == []
    assert convert(resnet18.spec, ConvertOptions(out, memory_check=False), loaded=resnet18).passed


def test_room_needed_counts_precision_pickle_and_shards(resnet18, tmp_path):
    from hubui.libraries import target_format

    fp32 = _sizes(resnet18)
    fmt = target_format("timm", "transformers")
    need = preflight.room_needed(resnet18, tmp_path / "x", "fp16", fmt.files, include_pickle=True)
    assert abs(need.disk_bytes - preflight.DISK_MARGIN_BYTES - fp32) < 10**5  # fp16 weights + fp16 pickle
    assert need.largest_file_bytes <= fp32 // 2 + 10**5
    sharded = preflight.room_needed(resnet18, tmp_path / "x", "fp32", fmt.files, max_shard_size="10MB")
    assert sharded.largest_file_bytes <= 10 * 10**6
    with pytest.raises(InvalidInputError, match="banana"):
        preflight.room_needed(resnet18, tmp_path / "x", "fp32", fmt.files, max_shard_size="banana")
