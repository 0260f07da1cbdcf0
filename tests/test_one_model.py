"""One model in memory at a time (issue 18): the original's outputs are computed and kept before the rebuild, the
original is released before the model is rebuilt from the folder, a failing parity reloads it to name the
diverging module, and a push made later from the folder verifies against the kept outputs alone."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import pytest
import torch
from _matrix import _open_clip_native
from huggingface_hub import HfApi
from safetensors import safe_open
from safetensors.torch import save_file

import hubui.export_folder as export_module
import hubui.pipeline as pipeline_module
from hubui import cli
from hubui.errors import HubUIError
from hubui.libraries import target_format
from hubui.loading import load_model
from hubui.pipeline import ConvertOptions, convert, iter_convert
from hubui.spec import ModelSpec

KEPT = ".hubui-reference.safetensors"


def _spec(library: str, tmp_path: Path) -> ModelSpec:
    if library == "timm":
        return ModelSpec("timm", "test_vit", seed=3)
    return _open_clip_native(tmp_path).spec  # the user's checkpoint: it reloads the same


@pytest.mark.parametrize("library", ["timm", "open_clip"])
def test_the_original_is_released_before_the_rebuild(library, tmp_path, monkeypatch):
    spec = _spec(library, tmp_path)
    loaded = load_model(spec)
    original = weakref.ref(loaded.model)
    fmt = target_format(spec.library, "native")
    real = type(fmt).rebuild_from_folder
    alive_at_rebuild: list[bool] = []

    def rebuild(self, folder):
        gc.collect()
        alive_at_rebuild.append(original() is not None)
        return real(self, folder)

    monkeypatch.setattr(type(fmt), "rebuild_from_folder", rebuild)
    events = iter_convert(spec, ConvertOptions(tmp_path / "out"), loaded=loaded)
    del loaded  # the caller keeps no reference of its own (as the CLI does)
    stages, final = [], None
    for event in events:
        stages.append(event.stage)
        final = event
    assert final is not None
    assert alive_at_rebuild == [False], "the original was still in memory when the rebuild started"
    assert final.result is not None and final.result.passed
    first = list(dict.fromkeys(stages))
    assert [s for s in first if s != "load"] == ["export", "reference", "rebuild", "parity", "done"], stages
    # What the caller gets back keeps the spec; using the released model says what to do instead.
    assert final.result.loaded.spec == spec
    with pytest.raises(HubUIError, match="keep_original=True"):
        final.result.loaded.model.state_dict()


def test_keep_original_hands_the_model_back(tmp_path):
    result = convert(ModelSpec("timm", "test_resnet", seed=1), ConvertOptions(tmp_path / "out", keep_original=True))
    assert result.passed
    pixels = torch.zeros(1, *result.loaded.data_config["input_size"])
    with torch.inference_mode():
        assert result.loaded.model(pixels).shape[0] == 1


def test_events_carry_stage_progress_and_an_honest_estimate(tmp_path):
    events = list(iter_convert(ModelSpec("timm", "test_vit", seed=1), ConvertOptions(tmp_path / "out", batch_size=2)))
    reference = [e for e in events if e.stage == "reference" and e.message.startswith("reference outputs batch")]
    parity = [e for e in events if e.stage == "parity"]
    assert len(reference) == 4 and len(parity) == 4  # 8 parity images in batches of 2: one event per batch
    assert [e.stage_fraction for e in reference] == [0.25, 0.5, 0.75, 1.0]
    assert events[0].eta_s is None  # nothing measured yet
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in parity)
    assert events[-1].stage == "done" and events[-1].eta_s == 0.0


@pytest.mark.parametrize(
    ("library", "tensor"),
    [("timm", "blocks.1.mlp.fc1.weight"), ("open_clip", "visual.transformer.resblocks.1.mlp.c_fc.weight")],
)
def test_a_failing_parity_reloads_the_original_and_names_the_module(library, tensor, tmp_path, monkeypatch):
    spec = _spec(library, tmp_path)
    real = export_module.cast_state_dict

    def corrupting(model, precision):
        sd = real(model, precision)
        sd[tensor] = sd[tensor] + 0.05
        return sd

    loads: list[ModelSpec] = []
    real_load = pipeline_module.load_model

    def counting_load(s, *args, **kwargs):
        loads.append(s)
        return real_load(s, *args, **kwargs)

    monkeypatch.setattr(export_module, "cast_state_dict", corrupting)
    monkeypatch.setattr(pipeline_module, "load_model", counting_load)
    events = list(iter_convert(spec, ConvertOptions(tmp_path / "out")))
    result = events[-1].result
    assert result is not None and not result.passed
    module = tensor.rsplit(".", 1)[0]
    assert result.report.diverging_module is not None and module.startswith(result.report.diverging_module)
    said = [e.message for e in events if "reloading the original" in e.message]
    assert said and events.index(next(e for e in events if e.message == said[0])) > max(
        i for i, e in enumerate(events) if e.stage == "rebuild"
    )
    assert loads == [spec, spec]  # loaded once to convert, once more only for the module search


def _converted(tmp_path: Path) -> Path:
    result = convert(ModelSpec("timm", "test_vit", seed=4), ConvertOptions(tmp_path / "out"))
    assert result.passed
    assert (result.export.folder / KEPT).is_file()
    return result.export.folder


def _push(folder: Path, repo: str, token: str, capsys, monkeypatch) -> tuple[int, dict]:
    monkeypatch.setenv("HF_TOKEN", token)
    code = cli.main(["push", "--from", str(folder), "--repo-id", repo, "--allow-random-weights", "--json"])
    out, _err = capsys.readouterr()
    return code, json.loads(out)


def test_push_from_a_folder_verifies_against_the_kept_outputs(localhub, tmp_path, repo_name, capsys, monkeypatch):
    folder = _converted(tmp_path)
    fmt = target_format("timm", "native")

    def no_rebuild(self, folder):
        raise AssertionError("the verification rebuilt the local folder")

    monkeypatch.setattr(type(fmt), "rebuild_from_folder", no_rebuild)
    code, data = _push(folder, f"alice/{repo_name}", localhub.users.alice, capsys, monkeypatch)
    assert code == cli.EXIT_OK and data["verification"]["status"] == "passed", data
    files = HfApi(endpoint=localhub.url).list_repo_files(f"alice/{repo_name}")
    assert KEPT not in files and "model.safetensors" in files  # the kept outputs never travel

    # Kept outputs that the folder's weights do not reproduce: the verification compares with them, so it fails.
    with safe_open(str(folder / KEPT), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is no dict
    tensors = {k: v + 1.0 if k.endswith("/logits") else v for k, v in tensors.items()}
    save_file(tensors, str(folder / KEPT), metadata=metadata)
    monkeypatch.undo()  # the failure's module search may rebuild the folder
    code, data = _push(folder, f"alice/{repo_name}-2", localhub.users.alice, capsys, monkeypatch)
    assert code == cli.EXIT_FAILED and data["verification"]["status"] == "failed", data
    assert any("logits" in r for r in data["verification"]["parity"]["reasons"])


def test_overwrite_replaces_an_export_with_its_kept_outputs(tmp_path):
    folder = _converted(tmp_path)
    again = convert(ModelSpec("timm", "test_vit", seed=4), ConvertOptions(folder, overwrite=True))
    assert again.passed and (folder / KEPT).is_file()
    assert KEPT not in dict(again.export.files)  # hidden: not among the files a push sends


def test_cancelling_before_the_rebuild_does_not_rebuild(tmp_path, monkeypatch):
    import threading

    from hubui.libraries import get_format

    fmt = type(get_format("timm"))
    rebuilds: list[str] = []
    original_rebuild = fmt.rebuild_from_folder
    monkeypatch.setattr(
        fmt,
        "rebuild_from_folder",
        lambda self, folder, *a, **k: rebuilds.append(str(folder)) or original_rebuild(self, folder, *a, **k),
    )
    cancel = threading.Event()
    stages = []
    for event in iter_convert(ModelSpec("timm", "test_resnet"), ConvertOptions(tmp_path / "out"), cancel=cancel):
        stages.append(event.stage)
        if event.message == "reference outputs kept":  # the last event before the rebuild
            cancel.set()
    assert event.stage == "done" and event.report.verdict == "cancelled"
    assert "rebuild" not in stages and rebuilds == []
    assert json.loads((tmp_path / "out" / "parity.json").read_text())["verdict"] == "cancelled"
    assert not (tmp_path / "out" / KEPT).exists()
