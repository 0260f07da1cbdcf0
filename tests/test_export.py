"""hubui.export: the Hub folder in timm's format, cast exactly as asked, written atomically, rebuilt by timm."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from safetensors import safe_open

from hubui import export
from hubui.errors import CheckpointMismatchError, ExportError, InvalidInputError
from hubui.export import export_model, read_export_precision, rebuild_from_folder, rebuild_from_hub
from hubui.spec import LoadedModel, ModelSpec


def make_loaded(name: str = "test_resnet", label_names: list[str] | None = None) -> LoadedModel:
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False).eval()
    data_config = timm.data.resolve_data_config({}, model=m)
    return LoadedModel(
        spec=ModelSpec("timm", name),
        model=m,
        pretrained_cfg=dict(m.pretrained_cfg),
        data_config=data_config,
        label_names=label_names,
        source="random",
    )


@pytest.fixture(scope="module")
def resnet() -> LoadedModel:
    return make_loaded("test_resnet")


def test_fp32_export_writes_timm_folder(resnet: LoadedModel, tmp_path: Path):
    steps: list[tuple[str, float]] = []
    result = export_model(resnet, tmp_path / "out", progress=lambda msg, frac: steps.append((msg, frac)))

    assert steps[0] == ("casting weights to fp32", 0.0) and steps[-1] == ("done", 1.0)
    assert [f for _, f in steps] == sorted(f for _, f in steps)
    names = [n for n, _ in result.files]
    assert names == ["config.json", "model.safetensors"]
    assert all(size > 0 for _, size in result.files)
    assert dict(result.files)["model.safetensors"] == (tmp_path / "out" / "model.safetensors").stat().st_size
    assert result.precision == "fp32" and result.library == "timm"
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config == result.config
    assert config["architecture"] == "test_resnet"
    assert config["num_classes"] == 1000
    assert config["hubui"]["precision"] == "fp32"
    assert config["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5]
    # source keys of the original weights must not leak into the export
    assert "hf_hub_id" not in config["pretrained_cfg"]
    assert read_export_precision(tmp_path / "out") == "fp32"


def test_fp32_weights_are_bit_identical(resnet: LoadedModel, tmp_path: Path):
    export_model(resnet, tmp_path / "out")
    saved = safetensors.torch.load_file(tmp_path / "out" / "model.safetensors")
    original = resnet.model.state_dict()
    assert saved.keys() == original.keys()
    for key, tensor in original.items():
        assert saved[key].dtype == tensor.dtype, key
        assert torch.equal(saved[key], tensor), key


@pytest.mark.parametrize(("precision", "dtype"), [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_precision_casts_floats_only(resnet: LoadedModel, tmp_path: Path, precision: str, dtype: torch.dtype):
    result = export_model(resnet, tmp_path / "out", precision=precision)

    assert result.config["hubui"]["precision"] == precision
    original = resnet.model.state_dict()
    with safe_open(str(tmp_path / "out" / "model.safetensors"), framework="pt") as f:
        assert f.metadata()["hubui_precision"] == precision
        for key in f.keys():  # noqa: SIM118 - safe_open is not a dict
            saved = f.get_tensor(key)
            if original[key].is_floating_point():
                assert saved.dtype == dtype, key
                assert torch.equal(saved, original[key].to(dtype)), key
            else:  # BN num_batches_tracked stays int64
                assert saved.dtype == original[key].dtype == torch.int64, key
    # the model in memory is untouched
    assert next(resnet.model.parameters()).dtype == torch.float32


def test_pytorch_bin_only_when_asked(resnet: LoadedModel, tmp_path: Path):
    result = export_model(resnet, tmp_path / "out", precision="fp16", include_pytorch_bin=True)

    assert [n for n, _ in result.files] == ["config.json", "model.safetensors", "pytorch_model.bin"]
    pickled = torch.load(tmp_path / "out" / "pytorch_model.bin", weights_only=True)
    safe = safetensors.torch.load_file(tmp_path / "out" / "model.safetensors")
    assert pickled.keys() == safe.keys()
    assert all(torch.equal(pickled[k], safe[k]) for k in safe)


def test_invalid_precision_is_named(resnet: LoadedModel, tmp_path: Path):
    with pytest.raises(InvalidInputError, match="'fp8'"):
        export_model(resnet, tmp_path / "out", precision="fp8")
    assert not (tmp_path / "out").exists()


def test_label_names_round_trip(tmp_path: Path):
    labels = [f"class_{i}" for i in range(1000)]
    loaded = make_loaded("test_resnet", label_names=labels)
    result = export_model(loaded, tmp_path / "out")
    assert result.config["label_names"] == labels
    rebuilt = rebuild_from_folder(tmp_path / "out")
    assert rebuilt.pretrained_cfg["label_names"] == labels


def test_wrong_number_of_label_names(tmp_path: Path):
    loaded = make_loaded("test_resnet", label_names=["cat", "dog"])
    with pytest.raises(InvalidInputError, match="2 label names for a model with 1000 classes"):
        export_model(loaded, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_non_empty_folder_unless_overwrite(resnet: LoadedModel, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_model(resnet, out)
    assert (out / "keep.txt").read_text() == "mine"
    # overwrite replaces only an earlier export, never a user's files (tests/test_overwrite_safety.py)
    with pytest.raises(ExportError, match=r"keep\.txt"):
        export_model(resnet, out, overwrite=True)
    assert (out / "keep.txt").read_text() == "mine"

    (out / "keep.txt").unlink()
    export_model(resnet, out)
    with pytest.raises(ExportError, match="not empty"):
        export_model(resnet, out)
    result = export_model(resnet, out, precision="bf16", overwrite=True)
    assert [n for n, _ in result.files] == ["config.json", "model.safetensors"]
    assert read_export_precision(out) == "bf16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or backup folders left


def test_empty_existing_folder_is_fine(resnet: LoadedModel, tmp_path: Path):
    (tmp_path / "out").mkdir()
    export_model(resnet, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.parametrize("stage", ["weights", "config"])
def test_failed_write_leaves_nothing(resnet: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str):
    def disk_full(*args, **kwargs):
        # Write a little first, like a real disk that fills up mid-file.
        target = Path(args[1])
        target.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    if stage == "weights":
        monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    else:
        monkeypatch.setattr(timm.models._hub, "save_config_for_hf", disk_full)

    out = tmp_path / "out"
    with pytest.raises(ExportError) as info:
        export_model(resnet, out)
    assert str(out) in info.value.message
    assert "No space left on device" in info.value.message
    assert isinstance(info.value.__cause__, OSError)
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_previous_export(resnet: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "out"
    export_model(resnet, out, precision="fp16")
    before = (out / "model.safetensors").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(ExportError):
        export_model(resnet, out, overwrite=True)
    assert (out / "model.safetensors").read_bytes() == before
    assert read_export_precision(out) == "fp16"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_cast_makes_no_copy_for_fp32(resnet: LoadedModel):
    tensors = export.cast_state_dict(resnet.model, "fp32")
    original = resnet.model.state_dict()
    shared = sum(tensors[k].data_ptr() == original[k].data_ptr() for k in original)
    assert shared == len(original)


def test_tied_weights_are_saved_and_reload(tmp_path: Path):
    loaded = make_loaded("test_resnet")
    # Tie two same-shaped tensors, as some architectures do; safetensors refuses aliased tensors.
    loaded.model.layer1[0].bn2.weight = loaded.model.layer1[0].bn1.weight
    result = export_model(loaded, tmp_path / "out")
    assert "model.safetensors" in dict(result.files)
    rebuilt = rebuild_from_folder(tmp_path / "out")
    assert torch.equal(rebuilt.layer1[0].bn2.weight, loaded.model.layer1[0].bn1.weight)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_rebuild_from_folder_uses_timm_local_dir(resnet: LoadedModel, tmp_path: Path, precision: str):
    export_model(resnet, tmp_path / "out", precision=precision)
    rebuilt = rebuild_from_folder(tmp_path / "out")

    # the same thing a user types, for comparison
    direct = timm.create_model(f"local-dir:{tmp_path / 'out'}", pretrained=True)
    assert not rebuilt.training
    assert all(p.dtype == torch.float32 for p in rebuilt.parameters())
    assert rebuilt.pretrained_cfg["source"] == "local-dir"
    dtype = export.DTYPES[precision]
    for key, tensor in resnet.model.state_dict().items():
        expected = tensor.to(dtype).to(tensor.dtype) if tensor.is_floating_point() else tensor
        assert torch.equal(rebuilt.state_dict()[key], expected), key
        assert torch.equal(direct.state_dict()[key], expected), key


def test_rebuild_from_folder_errors(resnet: LoadedModel, tmp_path: Path):
    with pytest.raises(InvalidInputError, match=r"No config\.json"):
        rebuild_from_folder(tmp_path)
    export_model(resnet, tmp_path / "out")
    # swap in the weights of a different architecture: timm's strict load must refuse them
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in make_loaded("test_vit").model.state_dict().items()},
        str(tmp_path / "out" / "model.safetensors"),
    )
    with pytest.raises(CheckpointMismatchError):
        rebuild_from_folder(tmp_path / "out")
    with pytest.raises(InvalidInputError, match="open_clip"):
        rebuild_from_folder(tmp_path / "out", library="open_clip")


def test_rebuild_from_hub_with_revision(localhub, users, repo_name, fresh_cache, resnet, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=localhub.url, token=users.alice)
    repo_id = f"alice/{repo_name}"
    api.create_repo(repo_id)
    export_model(resnet, tmp_path / "fp32", precision="fp32")
    api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "fp32")
    api.create_branch(repo_id, branch="half")
    export_model(resnet, tmp_path / "fp16", precision="fp16")
    api.upload_folder(repo_id=repo_id, folder_path=tmp_path / "fp16", revision="half")

    main = rebuild_from_hub(repo_id, cache_dir=fresh_cache)
    half = rebuild_from_hub(repo_id, revision="half", cache_dir=fresh_cache)

    assert main.pretrained_cfg["source"] == "hf-hub"
    w = resnet.model.state_dict()["layer2.0.conv1.weight"]
    assert torch.equal(main.state_dict()["layer2.0.conv1.weight"], w)
    assert torch.equal(half.state_dict()["layer2.0.conv1.weight"], w.half().float())
    assert not torch.equal(w.half().float(), w)  # the two revisions really differ
    assert any(fresh_cache.iterdir())  # downloads went to the cache we asked for


def test_rebuild_from_hub_rejects_at_sign():
    with pytest.raises(InvalidInputError, match="'@'"):
        rebuild_from_hub("alice/model@main")
