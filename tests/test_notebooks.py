"""The notebooks run top to bottom (nbclient, a real kernel) against the local Hub, and do what they say."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from huggingface_hub import HfApi, hf_hub_download
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _execute(name: str, tmp_path: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "batch.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "batch.ipynb"])
def test_notebooks_use_only_the_public_api(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "from hubui" not in source and "hubui._" not in source
    import hubui

    used = {word.split("(")[0] for word in source.replace("\n", " ").split() if word.startswith("hubui.")}
    for name_ in used:
        attr = name_.removeprefix("hubui.").split(".")[0].rstrip(",)")
        assert attr in hubui.__all__, attr


def test_quickstart_runs_and_pushes_a_verified_model(localhub, repo_name, tmp_path):
    env = {"HF_TOKEN": localhub.users.alice, "HUBUI_REPO_NAME": repo_name, "HUBUI_OUT_DIR": str(tmp_path / "out")}
    nb = _execute("quickstart.ipynb", tmp_path, env)
    text = _text(nb)
    assert "logged in as alice" in text
    assert "verdict: pass" in text
    assert "passed -" in text  # the verification after the push
    assert localhub.users.alice not in json.dumps(nb)  # the token never lands in an output

    repo = f"alice/{repo_name}"
    files = set(HfApi(endpoint=localhub.url).list_repo_files(repo))
    assert {"config.json", "model.safetensors", "parity.json", "README.md"} <= files
    parity = json.loads(Path(hf_hub_download(repo, "parity.json")).read_text())
    assert parity["verdict"] == "pass"
    readme = Path(hf_hub_download(repo, "README.md")).read_text()
    assert "license: apache-2.0" in readme and "hubui" in readme


def test_batch_runs_every_model_and_survives_a_failure(localhub, repo_name, tmp_path):
    env = {
        "HF_TOKEN": localhub.users.alice,
        "HUBUI_MODELS": "test_resnet,no_such_model_xyz,test_vit",
        "HUBUI_REPO_PREFIX": repo_name,
        "HUBUI_OUT_DIR": str(tmp_path / "out"),
    }
    nb = _execute("batch.ipynb", tmp_path, env)
    summary = nb.cells[-1].outputs[0]["data"]["text/plain"]
    assert "no_such_model_xyz" in summary and "ModelNotFoundError" in summary
    api = HfApi(endpoint=localhub.url)
    for model in ("test_resnet", "test_vit"):
        repo = f"alice/{repo_name}-{model}"
        assert "model.safetensors" in api.list_repo_files(repo)
        assert json.loads(Path(hf_hub_download(repo, "parity.json")).read_text())["verdict"] == "pass"
    assert not api.repo_exists(f"alice/{repo_name}-no_such_model_xyz")
    assert summary.count("passed") == 2
