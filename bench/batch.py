"""``hubui batch`` on twelve small models: 1 local worker vs 2 local workers vs Ray with 2 workers.

Run from the repository root (needs ``hubui[ray]``)::

    .venv/bin/python bench/batch.py            # all three cases, results in bench/results_batch.json
    .venv/bin/python bench/batch.py --cases local1

It starts its own ``hubui localhub`` (a temporary root, one write user) and, for the Ray case, a local Ray head on
127.0.0.1 with 2 CPUs, then runs ``hubui batch`` (the CLI, a fresh process per case) on a manifest of twelve timm
``test_*`` architectures with random weights, each case to its own repos. Every entry is the whole verified flow
(convert, parity, card, push, re-download and verify). Per case it records the wall time of the command, the sum
of the entries' own times, and each entry's peak resident memory in its worker (Linux ``VmHWM``, reset at the start
of each entry, so a worker's Python, torch and timm are included: that is what a worker costs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from _batch import start_ray_head  # noqa: E402
from _hubproc import start_hub  # noqa: E402

RESULTS = HERE / "results_batch.json"
MODELS = (
    "test_resnet", "test_vit", "test_convnext", "test_efficientnet", "test_byobnet", "test_nfnet",
    "test_vit2", "test_convnext2", "test_efficientnet_gn", "test_vit3", "test_convnext3", "test_efficientnet_ln",
)  # fmt: skip
CASES = {"local1": ["--workers", "1"], "local2": ["--workers", "2"], "ray2": ["--workers", "2", "--ray"]}


def run_case(name: str, extra: list[str], tmp: Path, token: str, ray_address: str | None) -> dict[str, Any]:
    prefix = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    manifest = tmp / f"{prefix}.yaml"
    entries = [{"model": m, "repo_id": f"alice/{prefix}-{m}"} for m in MODELS]
    manifest.write_text(yaml.safe_dump({"defaults": {"library": "timm"}, "models": entries}))
    args = [*extra, ray_address] if extra[-1] == "--ray" else extra
    report = tmp / f"{prefix}.json"
    env = {**os.environ, "HF_TOKEN": token}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "hubui", "batch", str(manifest), *args, "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if not report.is_file():
        raise RuntimeError(f"{name}: hubui batch exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    data = json.loads(report.read_text())
    peaks = [e["peak_memory_bytes"] / 1e6 for e in data["entries"] if e["peak_memory_bytes"]]
    return {
        "case": name,
        "exit_code": proc.returncode,
        "counts": data["counts"],
        "workers": data["workers"],
        "wall_s": round(wall, 1),
        "entries_s_sum": round(sum(e["seconds"] for e in data["entries"]), 1),
        "entry_s_median": round(statistics.median(e["seconds"] for e in data["entries"]), 1),
        "peak_mb_per_worker_max": round(max(peaks), 0),
        "peak_mb_per_worker_median": round(statistics.median(peaks), 0),
        "entries": [
            {k: e[k] for k in ("repo_id", "verdict", "seconds", "peak_memory_bytes", "error")} for e in data["entries"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args()
    os.environ.update({"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"})
    with tempfile.TemporaryDirectory(prefix="hubui-bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        token = uuid.uuid4().hex
        hub = start_hub(tmp / "hub", [f"alice:{token}:write"])
        os.environ["HF_ENDPOINT"] = hub.url
        os.environ["HF_HOME"] = str(tmp / "hf_home")
        head = start_ray_head(num_cpus=2) if "ray2" in args.cases else None
        try:
            results = []
            for name in args.cases:
                results.append(run_case(name, CASES[name], tmp, token, head.address if head else None))
                r = results[-1]
                print(f"{name}: {r['wall_s']} s, peak {r['peak_mb_per_worker_max']} MB per worker, {r['counts']}")
        finally:
            if head is not None:
                head.stop()
            hub.stop()
    load = os.getloadavg()
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_after": [round(v, 1) for v in load],
            "note": "a shared 2-core VM: other jobs ran at the same time, so times are upper bounds",
        },
        "models": list(MODELS),
        "results": results,
    }
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
