"""Load isolation of the local Hub: another user's whoami and a 10 MB push while an anonymous client attacks.

The measurement is the test ``tests/test_localhub_load_isolation.py`` (it starts its own Hub; this script has it write
``bench/results_localhub_load.json``); this script runs it and prints the results.

    .venv/bin/python bench/localhub_load.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    test = "tests/test_localhub_load_isolation.py"
    results = ROOT / "bench" / "results_localhub_load.json"
    env = {**os.environ, "HUBUI_LOAD_RESULTS": str(results)}
    code = subprocess.call([sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"], cwd=ROOT, env=env)
    if results.exists():
        print(results.read_text())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
