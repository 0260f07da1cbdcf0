"""hubui.parity: the numbers a user checks before trusting an export."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import math
import threading
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from PIL import Image

from hubui.errors import InvalidInputError, ParityFailedError
from hubui.export import export_model, rebuild_from_folder
from hubui.parity import (
    ParityReport,
    Tolerance,
    auto_batch_size,
    build_parity_inputs,
    iter_parity,
    read_parity_json,
    run_parity,
    tolerance_preset,
    verify_export,
    write_parity_json,
)
from hubui.spec import LoadedModel, ModelSpec

parity_run = importlib.import_module("hubui.parity.run")  # the module, not a name it exports

SCHEMA_KEYS = {
    "verdict",
    "status",
    "precision",
    "tolerance",
    "outputs",
    "weights",
    "inputs",
    "diverging_module",
    "versions",
}
OUTPUT_KEYS = {
    "name",
    "shape",
    "max_abs_diff",
    "mean_abs_diff",
    "max_rel_diff",
    "cosine_min",
    "top1_agreement",
    "top5_overlap",
}


def make_loaded(name: str) -> LoadedModel:
    torch.manual_seed(0)
    m = timm.create_model(name, pretrained=False).eval()
    data_config = timm.data.resolve_data_config({}, model=m)
    return LoadedModel(
        spec=ModelSpec("timm", name),
        model=m,
        pretrained_cfg=dict(m.pretrained_cfg),
        data_config=data_config,
        label_names=None,
        source="random",
    )


_CACHE: dict[str, LoadedModel] = {}


def loaded_model(name: str) -> LoadedModel:
    # Built once per test session; tests never modify the module.
    if name not in _CACHE:
        _CACHE[name] = make_loaded(name)
    return _CACHE[name]


def export_and_verify(name: str, precision: str, tmp_path: Path, **kwargs) -> ParityReport:
    loaded = loaded_model(name)
    export_model(loaded, tmp_path / name, precision=precision)
    return run_parity(loaded, rebuild_from_folder(tmp_path / name), precision, folder=tmp_path / name, **kwargs)


@pytest.mark.parametrize("name", ["test_resnet", "test_vit", "test_convnext", "test_efficientnet"])
def test_fp32_export_is_exact(name: str, tmp_path: Path):
    report = export_and_verify(name, "fp32", tmp_path)

    assert report.verdict == "pass", report.reasons
    assert report.status == "done"
    (logits,) = report.outputs
    assert logits.name == "logits"
    assert logits.shape == (8, 1000)
    assert logits.max_abs_diff == 0.0
    assert logits.mean_abs_diff == 0.0
    assert logits.cosine_min == 1.0
    assert logits.top1_agreement == 1.0
    assert logits.top5_overlap == 1.0
    assert report.weights is not None and report.weights.identical
    assert report.weights.max_abs_diff == 0.0
    assert report.weights.compared == len(loaded_model(name).model.state_dict())
    assert report.weights.missing == report.weights.extra == report.weights.dtype_mismatch == 0
    assert report.diverging_module is None
    assert report.inputs == {
        "count": 8,
        "real": 4,
        "synthetic": 4,
        "user": 0,
        "names": report.inputs["names"],
        "input_size": [3, 160, 160],
    }
    assert report.inputs["names"][:4] == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]


@pytest.mark.parametrize("name", ["test_resnet", "test_vit"])
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_drift_is_measured_and_within_preset(name: str, precision: str, tmp_path: Path):
    report = export_and_verify(name, precision, tmp_path)

    preset = tolerance_preset(precision)
    (logits,) = report.outputs
    assert report.verdict == "pass", report.reasons
    assert report.tolerance == preset
    assert logits.max_abs_diff > 0.0  # the rounding is real and reported, not hidden
    assert logits.mean_abs_diff > 0.0
    assert preset.cosine_min is not None and preset.cosine_min <= logits.cosine_min < 1.0
    assert logits.top1_agreement >= preset.top1_agreement_min
    # weights: exactly the cast asked for, and the rounding against fp32 reported
    assert report.weights is not None and report.weights.identical
    assert report.weights.precision == precision
    assert 0.0 < report.weights.max_abs_diff < 0.01
    assert report.weights.worst_tensor in loaded_model(name).model.state_dict()


def realistic_norms(loaded: LoadedModel) -> LoadedModel:
    """A copy whose norm scales are random, not timm's init.

    timm zero-initialises the last BatchNorm of every ResNet residual branch, so in a random-weight ResNet a
    change inside a branch cannot reach the logits. Trained weights have non-zero scales; so does this copy.
    """
    model = copy.deepcopy(loaded.model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
    return dataclasses.replace(loaded, model=model)


@pytest.mark.parametrize(
    ("name", "tensor", "module"),
    [
        ("test_resnet", "layer2.0.conv1.weight", "layer2.0.conv1"),
        ("test_resnet", "layer3.0.bn1.running_mean", "layer3.0.bn1"),
        ("test_vit", "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc1"),
    ],
)
def test_broken_export_names_the_diverging_module(name: str, tensor: str, module: str, tmp_path: Path):
    loaded = realistic_norms(loaded_model(name))
    folder = tmp_path / "out"
    export_model(loaded, folder)
    _perturb(folder, tensor)

    report = run_parity(loaded, rebuild_from_folder(folder), "fp32", folder=folder)

    assert report.verdict == "fail"
    assert report.status == "done"
    assert report.diverging_module == module
    assert report.outputs[0].max_abs_diff > 1e-3
    assert report.outputs[0].cosine_min < tolerance_preset("fp32").cosine_min
    assert any(r.startswith("logits:") for r in report.reasons)
    assert report.weights is not None and not report.weights.identical
    assert report.weights.value_mismatch == 1
    assert report.weights.names["value_mismatch"] == [tensor]
    assert report.weights.worst_tensor == tensor
    with pytest.raises(ParityFailedError, match=module):
        report.raise_for_verdict()


def test_change_invisible_in_logits_is_still_caught(tmp_path: Path):
    # With timm's zero-initialised branch norms, this conv cannot change the logits; the weight
    # comparison and the module hooks still find it.
    loaded = loaded_model("test_resnet")
    folder = tmp_path / "out"
    export_model(loaded, folder)
    _perturb(folder, "layer2.0.conv1.weight")

    report = run_parity(loaded, rebuild_from_folder(folder), "fp32", folder=folder)

    assert report.outputs[0].max_abs_diff == 0.0
    assert report.verdict == "fail"
    assert report.reasons == ("weights: 1 value mismatch tensor(s), e.g. 'layer2.0.conv1.weight'",)
    assert report.diverging_module == "layer2.0.conv1"


def _perturb(folder: Path, tensor: str) -> None:
    weights = safetensors.torch.load_file(folder / "model.safetensors")
    weights[tensor] = weights[tensor] * 2 + 0.1
    safetensors.torch.save_file(weights, str(folder / "model.safetensors"))


def test_fp16_overflow_fails_and_reports_cleanly(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    loaded = realistic_norms(loaded_model("test_resnet"))  # a copy we may change
    with torch.no_grad():
        loaded.model.fc.bias[3] = 1e6  # beyond fp16's 65504
    with caplog.at_level("WARNING", logger="hubui.export"):
        export_model(loaded, tmp_path / "out", precision="fp16")
    assert "overflow fp16" in caplog.text and "fc.bias" in caplog.text

    report = run_parity(loaded, rebuild_from_folder(tmp_path / "out"), "fp16", folder=tmp_path / "out")

    assert report.verdict == "fail"
    assert report.outputs[0].nonfinite == 8  # logit 3 of every sample is inf
    assert report.diverging_module == "fc"
    data = json.loads(report.to_json())  # strict JSON: no NaN/Infinity tokens
    assert data["outputs"][0]["max_abs_diff"] is None
    assert data["weights"]["identical"] is True  # the file holds exactly what fp16 gives


def test_output_shape_change_fails_once():
    loaded = loaded_model("test_resnet")
    other = timm.create_model("test_resnet", num_classes=10).eval()
    trunk = {k: v for k, v in loaded.model.state_dict().items() if not k.startswith("fc.")}
    other.load_state_dict(trunk, strict=False)  # same weights up to a new 10-class head
    report = run_parity(loaded, other, "fp32", batch_size=2)
    assert report.verdict == "fail"
    assert report.reasons == ("output 'logits' has shape (2, 10) after export, (2, 1000) before",)
    assert report.outputs == ()  # nothing comparable, so no numbers that could look like a pass
    assert report.diverging_module == "fc"


def test_default_batch_size_bounds_the_forward_memory_by_the_weights(tmp_path: Path):
    # resnet50 (102 MB of weights, ~20 MB of activations per 224x224 image) runs one image per batch; a model of
    # 520 MB runs the largest automatic batch. Parameters are torch.empty: no memory is touched.
    assert auto_batch_size(timm.create_model("resnet50"), (3, 224, 224)) == 1
    big = torch.nn.Module()
    big.w = torch.nn.Parameter(torch.empty(130_000_000))
    assert auto_batch_size(big, (3, 224, 224)) == 4
    assert auto_batch_size(big, (3, 448, 448)) == 1  # four times the pixels
    # Left unset, a conversion of a small model streams one report per image.
    loaded = loaded_model("test_resnet")
    export_model(loaded, tmp_path / "out")
    reports = list(iter_parity(loaded, rebuild_from_folder(tmp_path / "out"), "fp32"))
    assert [r.batches_done for r in reports] == list(range(1, 9))
    assert reports[-1].batches_total == 8 and reports[-1].outputs[0].shape == (8, 1000)
    assert reports[-1].verdict == "pass"


def test_an_automatic_batch_size_leaves_parity_at_least_four_steps(tmp_path: Path, monkeypatch):
    # A large model gets batches of 4: its 8 images went 0 -> 1/2 -> done. Now at least 4 steps.
    monkeypatch.setattr(parity_run, "auto_batch_size", lambda model, shape: parity_run.MAX_AUTO_BATCH_SIZE)
    loaded = loaded_model("test_resnet")
    export_model(loaded, tmp_path / "out")
    reports = list(iter_parity(loaded, rebuild_from_folder(tmp_path / "out"), "fp32"))
    assert [r.batches_done for r in reports] == [1, 2, 3, 4] and reports[-1].batches_total == 4
    assert reports[-1].outputs[0].shape == (8, 1000) and reports[-1].verdict == "pass"
    # A batch size asked for is used as it is.
    reports = list(iter_parity(loaded, rebuild_from_folder(tmp_path / "out"), "fp32", batch_size=8))
    assert [r.batches_done for r in reports] == [1]


def test_streaming_yields_partial_reports_then_final(tmp_path: Path):
    loaded = loaded_model("test_resnet")
    export_model(loaded, tmp_path / "out")
    rebuilt = rebuild_from_folder(tmp_path / "out")

    reports = list(iter_parity(loaded, rebuilt, "fp32", batch_size=2, folder=tmp_path / "out"))

    *partial, final = reports
    assert len(partial) == 3
    assert [r.batches_done for r in partial] == [1, 2, 3]
    assert all(r.status == "running" and r.verdict == "pending" for r in partial)
    assert all(r.batches_done < r.batches_total == 4 for r in partial)
    assert [r.outputs[0].shape[0] for r in partial] == [2, 4, 6]  # metrics so far
    assert torch.is_inference_mode_enabled() is False  # not leaked to the caller between yields
    assert final.status == "done" and final.verdict == "pass"
    assert final.batches_done == final.batches_total == 4
    assert final.outputs[0].shape == (8, 1000)


def test_cancel_between_batches(tmp_path: Path):
    loaded = loaded_model("test_resnet")
    cancel = threading.Event()
    seen = []
    for report in iter_parity(loaded, loaded.model, "fp32", batch_size=2, cancel=cancel):
        seen.append(report)
        cancel.set()  # the user presses "stop" after the first update
    assert [r.status for r in seen] == ["running", "cancelled"]
    assert seen[-1].verdict == "cancelled"
    assert seen[-1].batches_done == 1 < seen[-1].batches_total

    already = threading.Event()
    already.set()
    final = run_parity(loaded, loaded.model, "fp32", cancel=already)
    assert (final.verdict, final.batches_done) == ("cancelled", 0)


def test_user_images_are_added(tmp_path: Path):
    loaded = loaded_model("test_resnet")
    path = tmp_path / "mine.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    pil = Image.new("RGBA", (100, 100), (0, 0, 255, 128))

    report = run_parity(loaded, loaded.model, "fp32", images=[path, pil])
    assert report.inputs["count"] == 10
    assert report.inputs["user"] == 2
    assert report.inputs["names"][-2:] == ["mine.png", "user-image"]
    assert report.outputs[0].shape == (10, 1000)
    assert report.verdict == "pass"


def test_non_image_file_is_rejected_by_name(tmp_path: Path):
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not a picture")
    loaded = loaded_model("test_resnet")
    with pytest.raises(InvalidInputError, match=r"notes\.png") as info:
        run_parity(loaded, loaded.model, "fp32", images=[bogus])
    assert "not an image" in info.value.message
    with pytest.raises(InvalidInputError, match=r"missing\.jpg"):
        build_parity_inputs(loaded.data_config, [tmp_path / "missing.jpg"])


def test_inputs_are_deterministic_and_use_the_model_transform():
    loaded = loaded_model("test_vit")
    a = build_parity_inputs(loaded.data_config)
    b = build_parity_inputs(loaded.data_config)
    assert torch.equal(a.pixels, b.pixels)
    assert a.pixels.shape == (8, 3, 160, 160)
    assert a.kinds == ("real",) * 4 + ("synthetic",) * 4
    # mean/std 0.5 maps [0, 1] pixels to [-1, 1]
    assert a.pixels.min() >= -1.0 and a.pixels.max() <= 1.0
    assert not torch.equal(build_parity_inputs(loaded.data_config, seed=1).pixels, a.pixels)


def test_tolerance_presets_and_override(tmp_path: Path):
    assert tolerance_preset("fp32").max_abs_diff == 1e-6
    assert tolerance_preset("fp16").cosine_min == 0.999
    assert tolerance_preset("bf16").cosine_min == 0.99
    with pytest.raises(InvalidInputError, match="'int8'"):
        tolerance_preset("int8")

    # An impossible override fails the fp16 export, and the report says why and where.
    strict = dataclasses.replace(tolerance_preset("fp16"), cosine_min=1.0)
    report = export_and_verify("test_resnet", "fp16", tmp_path, tolerance=strict)
    assert report.verdict == "fail"
    assert report.tolerance == strict
    assert any("cosine_min" in r for r in report.reasons)
    assert report.diverging_module is not None


def test_wrong_dtype_in_file_fails_weights_check(tmp_path: Path):
    loaded = loaded_model("test_resnet")
    export_model(loaded, tmp_path / "out", precision="fp32")
    # claim fp16 for an fp32 file: every floating tensor has the wrong dtype
    report = run_parity(loaded, rebuild_from_folder(tmp_path / "out"), "fp16", folder=tmp_path / "out")
    assert report.verdict == "fail"
    assert report.weights is not None
    assert report.weights.dtype_mismatch == sum(t.is_floating_point() for t in loaded.model.state_dict().values())
    assert any(r.startswith("weights:") for r in report.reasons)


def test_parity_json_schema_and_round_trip(tmp_path: Path):
    loaded = loaded_model("test_resnet")
    reports = list(verify_export(loaded, _exported(loaded, tmp_path, "bf16"), batch_size=4))
    final = reports[-1]
    assert final.precision == "bf16"  # read from config.json

    path = write_parity_json(final, tmp_path / "out")
    assert path == tmp_path / "out" / "parity.json"
    data = json.loads(path.read_text())
    assert data.keys() >= SCHEMA_KEYS
    assert data["verdict"] == "pass"
    assert set(data["outputs"][0]) >= OUTPUT_KEYS
    assert data["outputs"][0]["shape"] == [8, 1000]
    assert {"count", "real", "synthetic", "user"} <= data["inputs"].keys()
    assert {"torch", "timm", "hubui"} <= data["versions"].keys()
    assert data["versions"]["timm"] == timm.__version__
    assert data["tolerance"]["cosine_min"] == 0.99
    assert data["weights"]["identical"] is True
    assert read_parity_json(tmp_path / "out") == dataclasses.replace(final, elapsed_s=round(final.elapsed_s, 3))
    assert ParityReport.from_dict(final.to_dict()).to_dict() == final.to_dict()


def test_verify_export_refuses_a_precision_mismatch(tmp_path: Path):
    loaded = loaded_model("test_resnet")
    folder = _exported(loaded, tmp_path, "fp16")
    with pytest.raises(InvalidInputError, match="fp16 export, not bf16"):
        next(verify_export(loaded, folder, precision="bf16"))


def test_tolerance_round_trips():
    tol = Tolerance(max_abs_diff=1e-3, cosine_min=0.5)
    assert Tolerance.from_dict(tol.to_dict()) == tol


@pytest.mark.slow
def test_resnet50_fp32_is_exact(tmp_path: Path):
    report = export_and_verify("resnet50", "fp32", tmp_path, batch_size=8)
    (logits,) = report.outputs
    assert report.verdict == "pass", report.reasons
    assert logits.max_abs_diff == 0.0
    assert logits.top1_agreement == 1.0
    assert report.weights is not None and report.weights.identical
    assert report.weights.compared == 320


def _exported(loaded: LoadedModel, tmp_path: Path, precision: str) -> Path:
    export_model(loaded, tmp_path / "out", precision=precision)
    return tmp_path / "out"


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_weights_compared_chunk_by_chunk(precision: str, tmp_path: Path):
    """A half-precision file is checked against the original cast the same way, every chunk of a large tensor:
    one changed value in the last chunk, or a NaN, is found and measured in float64."""
    from hubui.parity.weights import _DIFF_CHUNK, compare_weights

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 3 * _DIFF_CHUNK // 1024 + 7), torch.nn.Linear(4, 2))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    tensors = {k: v.to(dtype) for k, v in model.state_dict().items()}
    file = tmp_path / "model.safetensors"
    safetensors.torch.save_file(tensors, str(file))
    clean = compare_weights(model, file, precision)
    assert clean.identical and clean.value_mismatch == 0
    expected = max(float((tensors[k].double() - v.double()).abs().max()) for k, v in model.state_dict().items())
    assert 0.0 < clean.max_abs_diff == expected  # the rounding, measured exactly

    big = tensors["0.weight"].clone()
    big.view(-1)[-1] += 1.0  # in the last, partial chunk
    safetensors.torch.save_file({**tensors, "0.weight": big}, str(file))
    changed = compare_weights(model, file, precision)
    assert changed.value_mismatch == 1 and changed.names["value_mismatch"] == ["0.weight"]
    assert changed.worst_tensor == "0.weight"
    assert changed.max_abs_diff == pytest.approx(1.0, abs=0.02)

    big.view(-1)[_DIFF_CHUNK + 3] = float("nan")
    safetensors.torch.save_file({**tensors, "0.weight": big}, str(file))
    nan = compare_weights(model, file, precision)
    assert nan.value_mismatch == 1
    assert math.isnan(nan.per_tensor_max_abs_diff["0.weight"])
