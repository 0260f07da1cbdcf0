"""The transformers target: timm ResNets and ViTs converted to transformers models, proven by parity.

The push and reload from the Hub is the timm-transformers case of tests/test_library_matrix.py."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoImageProcessor, AutoModelForImageClassification

from hubui.cli import main
from hubui.errors import NotConvertibleError
from hubui.loading import load_model
from hubui.parity import build_parity_inputs
from hubui.pipeline import ConvertOptions, convert
from hubui.spec import LoadedModel, ModelSpec
from hubui.to_transformers import check_preprocessing, load_transformers

RESNETS = ["resnet18", "resnet26", "resnet34", "resnet50", "resnet101", "resnet152"]
EXPECTED = {  # (layer_type, depths) of transformers' ResNetConfig
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet26": ("bottleneck", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}


def _realistic(arch: str, seed: int = 0) -> LoadedModel:
    """A timm model with seeded random weights in which every layer matters: timm zero-inits the last norm of
    each residual branch, which would leave most of a ResNet out of the logits."""
    loaded = load_model(ModelSpec("timm", arch, seed=seed))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in loaded.model.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        head = loaded.model.get_classifier()
        head.weight.copy_(torch.randn(head.weight.shape, generator=g) * 0.05)
    return loaded


def _timm_logits(loaded: LoadedModel) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = build_parity_inputs(loaded.data_config).pixels
    with torch.inference_mode():
        return pixels, loaded.model(pixels)


@pytest.mark.parametrize(
    "arch",
    [
        *RESNETS[:4],
        pytest.param("resnet101", marks=pytest.mark.slow),
        pytest.param("resnet152", marks=pytest.mark.slow),
        "vit_tiny_patch16_224",
    ],
)
def test_converts_with_logits_parity(arch, tmp_path):
    loaded = _realistic(arch)
    result = convert(loaded.spec, ConvertOptions(tmp_path / "out", target="transformers"), loaded=loaded)
    report = result.report
    assert result.passed, report.reasons
    (logits,) = report.outputs
    assert logits.name == "logits" and logits.shape == (8, 1000)
    assert logits.max_abs_diff <= 1e-5
    assert logits.top1_agreement == 1.0
    # Weights: every transformers tensor came from timm, bit for bit, through the key map.
    folder = result.export.folder
    saved = load_file(folder / "model.safetensors")
    assert report.weights is not None and report.weights.compared == len(saved)
    assert report.weights.value_mismatch == report.weights.missing == report.weights.extra == 0
    n_timm = len(loaded.model.state_dict())
    assert len(saved) == n_timm + (2 * len(loaded.model.blocks) * 2 if arch.startswith("vit") else 0)
    assert report.inputs["preprocessing"]["passed"] and not report.inputs["preprocessing"]["differs"]
    assert {n for n, _ in result.export.files} == {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "parity.json",
    }

    # What a user checks: transformers' own Auto classes, the folder, the same pixels as timm.
    config = json.loads((folder / "config.json").read_text())
    if arch in EXPECTED:
        assert (config["model_type"], config["layer_type"], config["depths"]) == ("resnet", *EXPECTED[arch])
    else:
        assert (config["model_type"], config["hidden_size"], config["num_hidden_layers"]) == ("vit", 192, 12)
    assert config["id2label"]["0"] == "tench, Tinca tinca" and len(config["id2label"]) == 1000
    assert config["label2id"]["goldfish, Carassius auratus"] == 1
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    dc = loaded.data_config
    assert pre["size"] == {"shortest_edge": dc["input_size"][-1]} and pre["crop_pct"] == pytest.approx(dc["crop_pct"])
    assert pre["image_mean"] == pytest.approx(list(dc["mean"])) and pre["image_std"] == pytest.approx(list(dc["std"]))
    assert pre["resample"] == {"bicubic": 3, "bilinear": 2}[dc["interpolation"]]

    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    pixels, expected = _timm_logits(loaded)
    with torch.inference_mode():
        got = model(pixel_values=pixels).logits
    assert expected.abs().max() > 1.0  # logits big enough for a 1e-5 bound to mean something
    assert (got - expected).abs().max() <= 1e-5
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


@pytest.mark.parametrize("arch", ["resnet50d", "resnext50_32x4d", "seresnet50", "test_resnet", "convnext_atto"])
def test_inexpressible_topology_is_refused_before_any_file(arch, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(NotConvertibleError, match="not convertible to transformers"):
        convert(ModelSpec("timm", arch), ConvertOptions(out, target="transformers"))
    assert list(tmp_path.iterdir()) == []  # no folder, no staging leftovers


def test_preprocessing_check_fails_a_wrong_processor(tmp_path):
    loaded = _realistic("resnet18")
    result = convert(loaded.spec, ConvertOptions(tmp_path / "out", target="transformers"), loaded=loaded)
    folder = result.export.folder
    good = result.report.inputs["preprocessing"]
    assert good["passed"] and good["images"] == 8
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    pre["image_mean"] = [0.5, 0.5, 0.5]
    (folder / "preprocessor_config.json").write_text(json.dumps(pre))
    bad = check_preprocessing(loaded.data_config, AutoImageProcessor.from_pretrained(folder))
    assert not bad["passed"] and len(bad["differs"]) == 8 and bad["max_abs_diff"] > 0.05


def test_tampered_weight_fails_parity(tmp_path):
    from hubui.to_transformers import iter_transformers_parity

    loaded = _realistic("resnet18")
    result = convert(loaded.spec, ConvertOptions(tmp_path / "out", target="transformers"), loaded=loaded)
    path = result.export.folder / "model.safetensors"
    tensors = load_file(path)
    key = "resnet.encoder.stages.2.layers.0.layer.0.convolution.weight"
    tensors[key] = tensors[key] * 1.01
    save_file(tensors, path, metadata={"format": "pt"})
    *_, report = iter_transformers_parity(loaded, load_transformers(result.export.folder), "fp32", folder=path.parent)
    assert report.verdict == "fail"
    assert report.weights.value_mismatch == 1 and report.weights.worst_tensor == key


def test_cli_target_transformers(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["convert", "--model", "resnet18", "--target", "transformers", "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["verdict"] == "pass" and report["inputs"]["target"] == "transformers"
    assert report["library"] == "timm" and report["architecture"] == "resnet18"
    assert (out / "preprocessor_config.json").is_file()
    assert json.loads((out / "config.json").read_text())["model_type"] == "resnet"
    # The text report shows the image-processor check, the one-pixel crop offset included.
    code = main(["convert", "--model", "resnet18", "--target", "transformers", "--out", str(tmp_path / "t")])
    text = capsys.readouterr().out
    pre = report["inputs"]["preprocessing"]
    assert code == 0 and f"preprocessing: ConvNextImageProcessor vs timm's transform on {pre['images']} images" in text
    assert f"{len(pre['crop_offset'])} cropped one pixel apart" in text and "DIFFERENT" not in text
    code = main(["convert", "--model", "resnext50_32x4d", "--target", "transformers", "--out", str(tmp_path / "x")])
    assert code == 2 and "not convertible to transformers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_pushes_an_existing_transformers_folder_and_verifies_it(
    localhub, tmp_path, repo_name, fresh_cache, capsys, monkeypatch
):
    """`hubui push --from` a folder made earlier with `--target transformers`: the folder itself is the reference."""
    out = tmp_path / "out"
    assert main(["convert", "--model", "resnet18", "--seed", "5", "--target", "transformers", "--out", str(out)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("HF_TOKEN", localhub.users.alice)
    repo = f"alice/{repo_name}"
    code = main(["push", "--from", str(out), "--repo-id", repo, "--allow-random-weights", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["verification"]["status"] == "passed"
    assert result["verification"]["parity"]["inputs"]["target"] == "transformers"
    # Hidden files (the export's .hubui-export marker) never travel; everything else in the folder must.
    local = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "parity.json"} <= local

    from huggingface_hub import HfApi

    on_hub = set(HfApi(token=localhub.users.alice).list_repo_files(repo))
    assert local | {"README.md", ".gitattributes"} <= on_hub
    assert ".hubui-export" not in on_hub
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    folder_model = AutoModelForImageClassification.from_pretrained(out).eval()
    hub_model = AutoModelForImageClassification.from_pretrained(repo, cache_dir=fresh_cache).eval()
    with torch.inference_mode():
        assert torch.equal(hub_model(pixel_values=pixels).logits, folder_model(pixel_values=pixels).logits)
    assert localhub.users.alice not in captured.out + captured.err


def test_without_transformers_the_target_is_not_offered(tmp_path, monkeypatch, capsys):
    from hubui.ui import forms

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now raises ImportError
    assert forms.target_choices() == ["native"]
    assert "pip install 'hubui[transformers]'" in forms.target_info()
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--model", "resnet18", "--target", "transformers", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "pip install 'hubui[transformers]'" in err and "--target" in err
    assert not (tmp_path / "o").exists()
