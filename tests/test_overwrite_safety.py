"""`overwrite` only ever replaces a folder hubui exported: never a user's files, the working directory or home.

Issue 15 item 1: `hubui convert --out . --overwrite` used to delete everything in the current directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import HfApi

import hubui
from hubui.errors import ExportError
from hubui.export import export_model, read_export_precision
from hubui.spec import LoadedModel, ModelSpec

ARCH = "test_resnet"


def _loaded() -> LoadedModel:
    torch.manual_seed(0)
    m = timm.create_model(ARCH, pretrained=False).eval()
    return LoadedModel(
        spec=ModelSpec("timm", ARCH),
        model=m,
        pretrained_cfg=dict(m.pretrained_cfg),
        data_config=timm.data.resolve_data_config({}, model=m),
        source="random",
    )


@pytest.fixture(scope="module")
def resnet() -> LoadedModel:
    return _loaded()


def _user_files(folder: Path) -> dict[str, str]:
    """A project folder as a user has it: files, a sub-folder, a hidden file."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "notes.txt": "my notes",
        "train.py": "print('train')",
        "data.csv": "a,b\n1,2\n",
        "src/main.py": "main()",
        ".env": "SECRET=1",
        "config.json": '{"mine": true}',
    }
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return files


def _unchanged(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        assert (folder / name).read_text() == text, f"{name} was changed or removed"


# --- the core API -----------------------------------------------------------------------------------
def test_overwrite_refuses_a_folder_of_user_files_and_names_them(resnet, tmp_path):
    out = tmp_path / "project"
    files = _user_files(out)
    with pytest.raises(ExportError) as info:
        export_model(resnet, out, overwrite=True)
    text = info.value.message
    assert str(out) in text
    # The first entries in the way are named, with the count of all of them.
    assert "data.csv" in text and "5 entries" in text, text  # config.json is a name an export writes
    assert "not a folder hubui exported" in text, text
    assert info.value.hint and "new" in info.value.hint.lower()
    _unchanged(out, files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # no staging folder left


def test_overwrite_replaces_a_previous_export(resnet, tmp_path):
    out = tmp_path / "out"
    export_model(resnet, out, precision="fp16")
    (out / "parity.json").write_text("{}")  # what convert adds after the export
    (out / "README.md").write_text("# card")
    result = export_model(resnet, out, precision="bf16", overwrite=True)
    assert read_export_precision(out) == "bf16"
    assert [n for n, _ in result.files] == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_replaces_an_export_made_before_the_marker_existed(resnet, tmp_path):
    out = tmp_path / "old"
    export_model(resnet, out, precision="fp16")
    for marker in [p for p in out.iterdir() if p.name.startswith(".")]:
        marker.unlink()
    (out / "parity.json").write_text("{}")
    export_model(resnet, out, precision="bf16", overwrite=True)
    assert read_export_precision(out) == "bf16"


def test_overwrite_refuses_an_export_a_user_added_files_to(resnet, tmp_path):
    out = tmp_path / "out"
    export_model(resnet, out)
    (out / "my-eval-results.txt").write_text("top1 81.2")
    with pytest.raises(ExportError, match=r"my-eval-results\.txt"):
        export_model(resnet, out, overwrite=True)
    assert (out / "my-eval-results.txt").read_text() == "top1 81.2"
    assert (out / "model.safetensors").is_file()


def test_overwrite_refuses_a_file_in_the_way(resnet, tmp_path):
    out = tmp_path / "weights.bin"
    out.write_bytes(b"mine")
    with pytest.raises(ExportError, match="is a file"):
        export_model(resnet, out, overwrite=True)
    assert out.read_bytes() == b"mine"


@pytest.mark.parametrize("where", ["cwd", "parent-of-cwd", "home"])
def test_never_replaces_the_working_directory_its_parents_or_home(resnet, tmp_path, monkeypatch, where):
    export = tmp_path / "a" / "b"
    export_model(resnet, export)  # a real hubui export: even so it is not replaced
    before = sorted(p.name for p in export.iterdir())
    if where == "cwd":
        monkeypatch.chdir(export)
        out, protected = Path("."), export
    elif where == "parent-of-cwd":
        monkeypatch.chdir(export)
        (export / "sub").mkdir()
        monkeypatch.chdir(export / "sub")
        out, protected = Path(".."), export
    else:
        monkeypatch.setenv("HOME", str(export))
        out, protected = Path("~"), export
    with pytest.raises(ExportError) as info:
        export_model(resnet, out, overwrite=True)
    assert str(protected) in info.value.message
    assert "subfolder" in (info.value.hint or "")
    assert protected.is_dir() and {"config.json", "model.safetensors"} <= {p.name for p in protected.iterdir()}
    assert before == sorted(p.name for p in export.iterdir() if p.name != "sub")


def test_convert_checks_the_folder_before_loading_the_model(tmp_path):
    out = tmp_path / "project"
    files = _user_files(out)
    events = []
    with pytest.raises(ExportError, match="not a folder hubui exported"):
        for event in hubui.iter_convert(ModelSpec("timm", ARCH), hubui.ConvertOptions(out, overwrite=True)):
            events.append(event.stage)
    assert events == []  # refused before "load": a typo costs no model load
    _unchanged(out, files)


def test_transformers_target_obeys_the_same_rule(tmp_path):
    pytest.importorskip("transformers")
    from hubui.to_transformers import export_transformers

    torch.manual_seed(0)
    m = timm.create_model("resnet18", pretrained=False, num_classes=10).eval()
    loaded = LoadedModel(
        spec=ModelSpec("timm", "resnet18"),
        model=m,
        pretrained_cfg=dict(m.pretrained_cfg),
        data_config=timm.data.resolve_data_config({}, model=m),
        source="random",
    )
    out = tmp_path / "project"
    files = _user_files(out)
    with pytest.raises(ExportError, match="not a folder hubui exported"):
        export_transformers(loaded, out, overwrite=True)
    _unchanged(out, files)
    hf = tmp_path / "hf"
    export_transformers(loaded, hf)
    export_transformers(loaded, hf, precision="fp16", overwrite=True)  # its own export is replaced
    assert read_export_precision(hf) == "fp16"


def test_the_marker_is_not_pushed(localhub, tmp_path, repo_name):
    result = hubui.convert(ModelSpec("timm", ARCH), hubui.ConvertOptions(tmp_path / "out"))
    hidden = [p.name for p in result.export.folder.iterdir() if p.name.startswith(".")]
    assert hidden, "the export leaves no marker"
    assert all(not n.startswith(".") for n, _ in result.export.files)
    repo = f"alice/{repo_name}"
    hubui.publish(
        hubui.PushRequest(result.export.folder, repo, allow_random_weights=True),
        token=localhub.users.alice,
        verify=False,
    )
    pushed = HfApi(token=localhub.users.alice).list_repo_files(repo)
    assert not [f for f in pushed if f.startswith(".") and f != ".gitattributes"], pushed


# --- the real command line --------------------------------------------------------------------------
def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "hubui", "convert", "--model", ARCH, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


def test_cli_out_dot_overwrite_keeps_the_users_files(tmp_path):
    project = tmp_path / "myproject"
    files = _user_files(project)
    proc = _cli(project, "--out", ".", "--overwrite")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert str(project) in proc.stderr and "hint:" in proc.stderr
    _unchanged(project, files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myproject"]


def test_cli_overwrite_of_a_folder_of_user_files_names_them(tmp_path):
    files = _user_files(tmp_path / "out")
    proc = _cli(tmp_path, "--out", "out", "--overwrite")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "notes.txt" in proc.stderr or "data.csv" in proc.stderr, proc.stderr
    assert "[load]" not in proc.stderr  # refused before the model was loaded
    _unchanged(tmp_path / "out", files)


def test_cli_overwrite_replaces_its_own_export(tmp_path):
    first = _cli(tmp_path, "--out", "out", "--precision", "fp16")
    assert first.returncode == 0, first.stderr
    again = _cli(tmp_path, "--out", "out", "--precision", "bf16", "--overwrite")
    assert again.returncode == 0, again.stderr
    assert read_export_precision(tmp_path / "out") == "bf16"
    assert (tmp_path / "out" / "parity.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
