"""hubui.loading: real timm models, real files, and the session's local Hub over HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import HfApi

from hubui.errors import (
    CheckpointError,
    CheckpointMismatchError,
    HubUnreachableError,
    InvalidInputError,
    InvalidRepoIdError,
    ModelNotFoundError,
)
from hubui.loading import INTERPOLATIONS, load_model, read_checkpoint
from hubui.spec import ModelSpec

ARCH = "test_resnet"  # ~0.5M parameters, input 3x160x160
TAG = "r160_in1k"


# --- fixtures and helpers ---------------------------------------------------------------------------
def _build(arch: str = ARCH, seed: int = 123, **kwargs: object) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return timm.create_model(arch, **kwargs).eval()


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def source() -> torch.nn.Module:
    """The model whose weights the checkpoints hold: test_resnet with seed-123 random weights."""
    return _build()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def seeded_tag(localhub) -> torch.nn.Module:
    """Push random weights to ``timm/test_resnet.r160_in1k`` on the local Hub, where timm's config looks."""
    model = _build(f"{ARCH}.{TAG}", seed=7)
    timm.models.push_to_hf_hub(model, f"timm/{ARCH}.{TAG}", token=localhub.users.alice, safe_serialization=True)
    return model


# --- random weights ---------------------------------------------------------------------------------
def test_random_weights_are_seeded_and_leave_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = load_model(ModelSpec("timm", ARCH, seed=1))
    b = load_model(ModelSpec("timm", ARCH, seed=1))
    c = load_model(ModelSpec("timm", ARCH, seed=2))
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = (m.model.state_dict()["conv1.0.weight"] for m in (a, b, c))
    assert torch.equal(sa, sb) and not torch.equal(sa, sc)
    assert not a.model.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in a.model.parameters())
    assert a.source == "random weights (seed 1)"
    # random weights claim no tag, license or Hub origin of timm's default config
    assert not {"hf_hub_id", "license", "tag"} & set(a.pretrained_cfg)
    assert a.data_config["input_size"] == (3, 160, 160)


# --- checkpoints ------------------------------------------------------------------------------------
def test_safetensors_round_trip_reproduces_logits_exactly(source, images, tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file(source.state_dict(), str(path))
    messages: list[str] = []
    loaded = load_model(ModelSpec("timm", ARCH, checkpoint=str(path), seed=999), progress=messages.append)
    assert torch.equal(_logits(loaded.model, images), _logits(source, images))
    assert loaded.source == str(path.resolve())
    assert loaded.extra["checkpoint_key"] is None and loaded.extra["stripped_prefix"] is None
    assert any("loading checkpoint weights.safetensors" in m for m in messages)
    assert all(isinstance(m, str) and m for m in messages)


@pytest.mark.parametrize(("key", "suffix"), [("state_dict", ".pth"), ("model", ".ckpt"), (None, ".bin")])
def test_pickled_checkpoint_nested_with_module_prefix(source, images, tmp_path, key, suffix) -> None:
    tensors = {f"module.{k}": v for k, v in source.state_dict().items()}  # as saved from DDP
    payload = tensors if key is None else {key: tensors, "epoch": 12, "arch": ARCH}
    path = tmp_path / f"checkpoint{suffix}"
    torch.save(payload, path)
    loaded = load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    assert torch.equal(_logits(loaded.model, images), _logits(source, images))
    assert loaded.extra["checkpoint_key"] == key
    assert loaded.extra["stripped_prefix"] == "module."


def test_fp16_checkpoint_loads_into_an_fp32_model(source, tmp_path) -> None:
    path = tmp_path / "half.safetensors"
    safetensors.torch.save_file(
        {k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}, str(path)
    )
    loaded = load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert "float16" in loaded.extra["checkpoint_dtypes"]
    weight = loaded.model.state_dict()["conv1.0.weight"]
    assert torch.equal(weight, source.state_dict()["conv1.0.weight"].half().float())


def test_state_dict_wins_over_ema_unless_asked(source, images, tmp_path) -> None:
    ema = _build(seed=321)
    path = tmp_path / "train.pth"
    torch.save({"state_dict_ema": ema.state_dict(), "state_dict": source.state_dict()}, path)
    plain = load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    assert torch.equal(_logits(plain.model, images), _logits(source, images))
    chosen = load_model(ModelSpec("timm", ARCH, checkpoint=str(path)), checkpoint_key="state_dict_ema")
    assert torch.equal(_logits(chosen.model, images), _logits(ema, images))
    with pytest.raises(CheckpointError, match="'ema'") as info:
        load_model(ModelSpec("timm", ARCH, checkpoint=str(path)), checkpoint_key="ema")
    assert "'state_dict_ema'" in info.value.message  # says which keys there are


def test_other_architecture_is_a_mismatch_with_counts(tmp_path) -> None:
    vit = timm.create_model("test_vit")
    path = tmp_path / "vit.safetensors"
    safetensors.torch.save_file(vit.state_dict(), str(path))
    expected = set(timm.create_model(ARCH).state_dict())
    given = set(vit.state_dict())
    with pytest.raises(CheckpointMismatchError) as info:
        load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    message = info.value.message
    assert "vit.safetensors" in message and f"'{ARCH}'" in message
    assert f"{len(expected - given)} missing keys (" in message
    assert f"{len(given - expected)} unexpected keys (" in message
    assert "(conv1.0.weight, " in message  # the model's first key is missing, and named
    assert any(f"{k}," in message for k in given - expected)  # unexpected keys are named too
    shown = re.search(r"missing keys \(([^)]*)\)", message)
    assert shown is not None and len(shown.group(1).split(", ")) == 6  # five names and "..."


def test_classifier_size_must_match_num_classes(images, tmp_path) -> None:
    ten = _build(num_classes=10)
    path = tmp_path / "ten.safetensors"
    safetensors.torch.save_file(ten.state_dict(), str(path))
    with pytest.raises(CheckpointMismatchError, match=r"fc\.weight: checkpoint \(10, \d+\) vs model \(1000,") as info:
        load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    assert "num_classes=10" in info.value.hint
    with pytest.raises(CheckpointMismatchError) as info:
        load_model(ModelSpec("timm", ARCH, checkpoint=str(path), num_classes=5))
    assert "num_classes=5 was asked" in info.value.hint and "num_classes=10" in info.value.hint
    labels = tuple(f"class {i}" for i in range(10))
    loaded = load_model(ModelSpec("timm", ARCH, checkpoint=str(path), num_classes=10, label_names=labels))
    assert torch.equal(_logits(loaded.model, images), _logits(ten, images))
    assert loaded.label_names == list(labels)
    assert loaded.pretrained_cfg["num_classes"] == 10 and loaded.pretrained_cfg["label_names"] == list(labels)


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path) -> None:
    sentinel = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))  # unpickling this creates the sentinel file

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv1.0.weight": Payload()}}, path)
    with pytest.raises(CheckpointError, match=r"references (io|builtins)\.open") as info:
        load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    assert "evil.pth" in info.value.message
    assert isinstance(info.value.__cause__, Exception)
    assert not sentinel.exists()
    # the payload is real: an unsafe load (what hubui never does) would have run it
    torch.load(path, weights_only=False)
    assert sentinel.exists()


@pytest.mark.parametrize(
    ("payload", "found"),
    [({"epoch": 3, "best_top1": 71.5}, "'epoch' (int)"), ([1, 2, 3], "a list"), ({}, "an empty dict")],
)
def test_pickle_without_tensors(tmp_path, payload, found) -> None:
    path = tmp_path / "no_tensors.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as info:
        load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))
    assert "no_tensors.pt" in info.value.message and found in info.value.message


def test_tensor_dict_with_stray_values_is_rejected(source, tmp_path) -> None:
    path = tmp_path / "mixed.pth"
    torch.save({"state_dict": {**source.state_dict(), "best_acc": 0.5}}, path)
    with pytest.raises(CheckpointError, match=r"'best_acc' \(float\)"):
        read_checkpoint(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_checkpoint(source, tmp_path, suffix) -> None:
    path = tmp_path / f"cut{suffix}"
    if suffix == ".safetensors":
        safetensors.torch.save_file(source.state_dict(), str(path))
    else:
        torch.save(source.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=re.escape(f"cut{suffix}")):
        load_model(ModelSpec("timm", ARCH, checkpoint=str(path)))


def test_missing_or_unsupported_checkpoint_file(tmp_path) -> None:
    with pytest.raises(CheckpointError, match=re.escape("nope.pth")):
        load_model(ModelSpec("timm", ARCH, checkpoint=str(tmp_path / "nope.pth")))
    weird = tmp_path / "weights.npz"
    weird.write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError, match=re.escape("weights.npz")):
        load_model(ModelSpec("timm", ARCH, checkpoint=str(weird)))


# --- the Hub ----------------------------------------------------------------------------------------
def test_pretrained_tag_from_the_local_hub(seeded_tag, images) -> None:
    messages: list[str] = []
    loaded = load_model(ModelSpec("timm", ARCH, pretrained=TAG), progress=messages.append)
    assert torch.equal(_logits(loaded.model, images), _logits(seeded_tag, images))
    assert loaded.source == f"hf-hub:timm/{ARCH}.{TAG}"
    assert any(f"timm/{ARCH}.{TAG}" in m for m in messages)
    # the tag's own config: preprocessing, license and origin are kept
    assert loaded.pretrained_cfg["tag"] == TAG and loaded.pretrained_cfg["license"] == "apache-2.0"
    assert loaded.data_config == {
        "input_size": (3, 160, 160),
        "interpolation": "bilinear",
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "crop_pct": 0.95,
        "crop_mode": "center",
    }


def test_pretrained_tag_with_new_classifier(seeded_tag) -> None:
    spec = ModelSpec("timm", ARCH, pretrained=TAG, num_classes=3, label_names=("cat", "dog", "bird"), seed=5)
    loaded = load_model(spec)
    again = load_model(spec)
    backbone = "conv1.0.weight"
    assert torch.equal(loaded.model.state_dict()[backbone], seeded_tag.state_dict()[backbone])
    assert loaded.model.get_classifier().out_features == 3
    assert torch.equal(loaded.model.get_classifier().weight, again.model.get_classifier().weight)  # seeded
    assert loaded.extra["classifier_reset"] == {"from": 1000, "to": 3}
    assert loaded.label_names == ["cat", "dog", "bird"]
    assert loaded.pretrained_cfg["num_classes"] == 3


def test_hf_hub_id_from_the_local_hub(localhub, repo_name, images) -> None:
    model = _build(seed=11)
    repo_id = f"alice/{repo_name}"
    timm.models.push_to_hf_hub(model, repo_id, token=localhub.users.alice, safe_serialization=True)
    loaded = load_model(ModelSpec("timm", ARCH, hf_hub_id=repo_id))
    assert torch.equal(_logits(loaded.model, images), _logits(model, images))
    assert loaded.source == f"hf-hub:{repo_id}"
    with pytest.raises(InvalidInputError, match="'test_resnet'") as info:
        load_model(ModelSpec("timm", "test_vit", hf_hub_id=repo_id))
    assert "architecture='test_resnet'" in info.value.hint


def test_hub_repo_without_weights(localhub, repo_name, tmp_path) -> None:
    repo_id = f"alice/{repo_name}"
    api = HfApi(endpoint=localhub.url, token=localhub.users.alice)
    api.create_repo(repo_id)
    save_dir = tmp_path / "export"
    timm.models.save_for_hf(_build(), str(save_dir), safe_serialization=True)
    api.upload_file(path_or_fileobj=str(save_dir / "config.json"), path_in_repo="config.json", repo_id=repo_id)
    with pytest.raises(ModelNotFoundError, match=repo_id):
        load_model(ModelSpec("timm", ARCH, hf_hub_id=repo_id))


def test_missing_hub_repo_names_it(localhub) -> None:
    # timm's config for this tag points at a repo nobody seeded on the local Hub
    with pytest.raises(ModelNotFoundError, match=re.escape("timm/test_efficientnet_evos.r160_in1k")):
        load_model(ModelSpec("timm", "test_efficientnet_evos", pretrained="r160_in1k"))
    with pytest.raises(ModelNotFoundError, match="alice/no-such-repo"):
        load_model(ModelSpec("timm", ARCH, hf_hub_id="alice/no-such-repo"))
    with pytest.raises(InvalidRepoIdError, match="'not a repo'"):
        load_model(ModelSpec("timm", ARCH, hf_hub_id="not a repo"))


def test_unknown_tag_suggests_known_ones() -> None:
    with pytest.raises(ModelNotFoundError, match="'r160_in2k'") as info:
        load_model(ModelSpec("timm", ARCH, pretrained="r160_in2k"))
    assert "'r160_in1k'" in info.value.hint


def test_offline_mode_is_named(monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE") as info:
        load_model(ModelSpec("timm", ARCH, hf_hub_id="alice/never-downloaded"))
    assert "alice/never-downloaded" in info.value.message


@pytest.mark.slow
def test_unreachable_hub(tmp_path) -> None:
    """A fresh process with HF_ENDPOINT on a closed port, as a user with a wrong endpoint would run it.

    Slow by nature: huggingface_hub retries a refused connection 5 times (about 25 s) before giving up.
    """
    code = (
        "from hubui.loading import load_model\n"
        "from hubui.spec import ModelSpec\n"
        "from hubui.errors import HubUnreachableError\n"
        "try:\n"
        f"    load_model(ModelSpec('timm', '{ARCH}', hf_hub_id='alice/anything'))\n"
        "except HubUnreachableError as exc:\n"
        "    print('UNREACHABLE', exc.message)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "UNREACHABLE" in out.stdout, out.stderr[-2000:]
    assert "http://127.0.0.1:9" in out.stdout and "alice/anything" in out.stdout
    assert HubUnreachableError.default_hint  # what the user is told to do next


# --- overrides --------------------------------------------------------------------------------------
def test_overrides_reach_pretrained_cfg_and_data_config() -> None:
    spec = ModelSpec("timm", ARCH, mean=(0.4, 0.45, 0.5), std=(0.2, 0.25, 0.3), interpolation="bicubic", crop_pct=1.0)
    loaded = load_model(spec)
    for cfg in (loaded.pretrained_cfg, loaded.data_config, loaded.model.pretrained_cfg):
        assert tuple(cfg["mean"]) == (0.4, 0.45, 0.5)
        assert tuple(cfg["std"]) == (0.2, 0.25, 0.3)
        assert cfg["interpolation"] == "bicubic"
        assert cfg["crop_pct"] == 1.0
    assert "test_crop_pct" not in loaded.pretrained_cfg


def test_label_names_need_one_per_class() -> None:
    with pytest.raises(InvalidInputError, match="2 label_names"):
        load_model(ModelSpec("timm", ARCH, num_classes=3, label_names=("a", "b")))
    with pytest.raises(InvalidInputError, match="1000 classes"):
        load_model(ModelSpec("timm", ARCH, label_names=("a", "b")))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"mean": (0.5, 0.5)}, "(0.5, 0.5)"),
        ({"mean": (123.7, 116.3, 103.5)}, "123.7"),
        ({"mean": (0.5, "x", 0.5)}, "'x'"),
        ({"std": (0.2, 0.0, 0.2)}, "(0.2, 0.0, 0.2)"),
        ({"std": (0.2, float("nan"), 0.2)}, "nan"),
        ({"interpolation": "cubic"}, "'cubic'"),
        ({"crop_pct": 0}, "0"),
        ({"crop_pct": 1.5}, "1.5"),
        ({"num_classes": -1}, "-1"),
        ({"num_classes": True}, "True"),
        ({"label_names": ("a", "")}, "('a', '')"),
        ({"resize_mode": "squash"}, "'squash'"),
        ({"seed": -3}, "-3"),
        ({"pretrained": TAG, "checkpoint": "x.pth"}, "checkpoint='x.pth'"),
    ],
)
def test_invalid_overrides_name_the_value(overrides, named) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_model(ModelSpec("timm", ARCH, **overrides))
    assert named in info.value.message
    assert info.value.hint


def test_interpolations_are_the_ones_timm_accepts() -> None:
    from timm.data.transforms import str_to_interp_mode, str_to_pil_interp

    for name in INTERPOLATIONS:
        str_to_interp_mode(name)
        str_to_pil_interp(name)


def test_bad_names_and_libraries() -> None:
    with pytest.raises(ModelNotFoundError, match="'test_resnett'") as info:
        load_model(ModelSpec("timm", "test_resnett"))
    assert "'test_resnet'" in info.value.hint
    with pytest.raises(InvalidInputError, match="pretrained tag") as info:
        load_model(ModelSpec("timm", f"{ARCH}.{TAG}"))
    assert f"pretrained='{TAG}'" in info.value.hint
    with pytest.raises(InvalidInputError, match="checkpoint_key"):
        load_model(ModelSpec("timm", ARCH), checkpoint_key="state_dict")
