"""Issue 20 item 5: `scripts/start.sh` installs the transformers extra (the app's transformers target) unless told
otherwise, and `scripts/test.sh` still installs the test extras.

The scripts run for real (bash), on a stand-in virtual environment whose ``python`` and ``hubui`` only write down how
they were called: what is checked is exactly the command line the scripts run, without a 2 GB install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDER = '#!/bin/sh\nprintf "%s %s\\n" "$(basename "$0")" "$*" >> "$CALLS"\n'


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "hubui"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)
    return tmp_path / "venv"


def _run(script: str, venv: Path, tmp_path: Path, **env: str) -> list[str]:
    calls = tmp_path / "calls.txt"
    base = {k: v for k, v in os.environ.items() if k not in ("HUBUI_EXTRAS", "HF_ENDPOINT")}
    full = {**base, "HUBUI_VENV": str(venv), "CALLS": str(calls), "HUBUI_CHROMIUM": "/bin/true", **env}
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / script)], env=full, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return calls.read_text().splitlines()


def _install_line(calls: list[str]) -> str:
    return next(c for c in calls if c.startswith("python -m pip install"))


def test_start_installs_the_transformers_extra_by_default(venv, tmp_path):
    calls = _run("start.sh", venv, tmp_path)
    assert _install_line(calls).endswith(f"-e {ROOT}[transformers]")
    assert calls[-1] == "hubui demo"


def test_start_takes_hubui_extras_as_given_even_empty(venv, tmp_path):
    assert _install_line(_run("start.sh", venv, tmp_path, HUBUI_EXTRAS="")).endswith(f"-e {ROOT}")
    (tmp_path / "calls.txt").unlink()
    calls = _run("start.sh", venv, tmp_path, HUBUI_EXTRAS="[transformers,ray]", HF_ENDPOINT="http://127.0.0.1:9")
    assert _install_line(calls).endswith(f"-e {ROOT}[transformers,ray]")
    assert calls[-1] == "hubui app"


def test_the_test_script_still_installs_the_test_extras_and_they_hold_transformers(venv, tmp_path):
    calls = _run("test.sh", venv, tmp_path, HUBUI_EXTRAS="[ignored]")
    assert _install_line(calls).endswith(f"-e {ROOT}[test]")
    assert calls[-1] == "python -m pytest"
    if sys.version_info >= (3, 11):
        import tomllib

        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert any(d.startswith("transformers") for d in extras["test"])
        assert any(d.startswith("transformers") for d in extras["transformers"])
