"""House rules that are cheap to check on every run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "hubui", "tests", "app.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_never_imports_gradio():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "hubui").rglob("*.py")
        if "ui" not in p.relative_to(ROOT / "hubui").parts[:1]
        and re.search(r"^\s*(import gradio|from gradio)", p.read_text(), re.M)
    ]
    assert offenders == []


def test_torch_load_always_weights_only():
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in (ROOT / "hubui").rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "torch.load(" in line and "weights_only=True" not in line
    ]
    assert offenders == []


def test_localhub_starts_without_torch():
    # `hubui localhub` must stay light: no torch/gradio import on its path.
    code = "import sys, hubui.cli, hubui.localhub; print(any(m in sys.modules for m in ('torch', 'gradio')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_mypy_is_clean_on_the_core():
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "hubui"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_names_are_not_shadowed_by_submodules():
    # `import hubui.x` sets hubui.x to the module: an exported name equal to a submodule's would be shadowed.
    import hubui

    modules = {p.stem for p in (ROOT / "hubui").glob("*.py")} | {
        p.name for p in (ROOT / "hubui").iterdir() if p.is_dir()
    }
    assert sorted(set(hubui.__all__) & modules) == []
    import hubui.pipeline  # imports most submodules

    assert callable(hubui.publish) and callable(hubui.convert)


def test_reliability_doc_names_only_tests_that_exist():
    """docs/reliability.md is a table of cases and the tests that prove them: a renamed test must not rot it."""
    doc = (ROOT / "docs" / "reliability.md").read_text()
    files = dict(re.findall(r"^(\w) = `([^`]+)`", doc, re.M))
    refs = re.findall(r"\b([A-Z]|tests/[\w/]+\.py)::(test_\w+)", doc)
    assert len(refs) > 50 and set(files) >= {"F", "T", "S"}
    missing = [
        f"{where}::{name}"
        for where, name in refs
        if not re.search(rf"^def {name}\(", (ROOT / files.get(where, where)).read_text(), re.M)
    ]
    assert missing == []
