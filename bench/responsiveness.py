"""How fast the app answers a page or config request while eight sessions convert and push.

Run from the repository root::

    /path/to/python bench/responsiveness.py              # idle 10 s, then the 8-session load
    /path/to/python bench/responsiveness.py --idle 5 --interval 0.2

What it does:

1. starts a local Hub (``python -m hubui localhub``) with four write users, and the app
   (``python -m hubui app``) against it in its own process, as a user runs them;
2. **idle**: requests ``/`` (the page) and ``/config`` (gradio's config, the app's health check) every
   ``--interval`` seconds (200 ms) for ``--idle`` seconds;
3. **load**: eight ``gradio_client`` sessions for the four users (two each, eight distinct tiny timm
   models) log in, convert and push through the app's queue (``tests/test_load.py``'s
   ``drive_app_session``), while the same requests go on every 200 ms until the last session is done.

It prints p50 / p95 / max latency per endpoint and phase and writes ``bench/results_responsiveness.json``
(machine, versions, settings, every sample's latency, and whether each session's push verified). A request
that fails or takes longer than 10 s is counted as an error, with its latency capped at the timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results_responsiveness.json"
ENDPOINTS = ("/", "/config")
TIMEOUT = 10.0
USERS = ("alice", "bob", "carol", "dave")

# Before huggingface_hub is imported (it reads these once): a scratch cache, no Xet, no telemetry.
_TMP = Path(tempfile.mkdtemp(prefix="hubui-bench-"))
for _var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
    os.environ.pop(_var, None)
os.environ.update(
    HF_HOME=str(_TMP / "hf_home"),
    HF_HUB_DISABLE_XET="1",
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    GRADIO_ANALYTICS_ENABLED="False",
)
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(hub_url: str, port: int, log: Path) -> subprocess.Popen:
    """``python -m hubui app`` against the local Hub; waits until the page answers."""
    import httpx

    env = {**os.environ, "HF_ENDPOINT": hub_url, "PYTHONPATH": str(ROOT)}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hubui", "app", "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the app did not answer within 180 s; see {log}")


def probe(base: str, phase: str, stop: threading.Event, interval: float, samples: list[dict[str, Any]]) -> None:
    """Request every endpoint each ``interval`` seconds until ``stop`` is set."""
    import httpx

    with httpx.Client(timeout=TIMEOUT) as http:
        while not stop.is_set():
            tick = time.monotonic()
            for path in ENDPOINTS:
                start = time.perf_counter()
                try:
                    ok = http.get(base + path).status_code == 200
                except httpx.HTTPError:
                    ok = False
                seconds = min(time.perf_counter() - start, TIMEOUT)
                samples.append({"phase": phase, "endpoint": path, "seconds": seconds, "ok": ok})
            stop.wait(max(0.0, interval - (time.monotonic() - tick)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for phase in ("idle", "load"):
        for path in ENDPOINTS:
            own = [s for s in samples if s["phase"] == phase and s["endpoint"] == path]
            if not own:
                continue
            ms = [1000 * s["seconds"] for s in own]
            rows.append(
                {
                    "phase": phase,
                    "endpoint": path,
                    "requests": len(own),
                    "errors": sum(not s["ok"] for s in own),
                    "p50_ms": round(statistics.median(ms), 1),
                    "p95_ms": round(percentile(ms, 0.95), 1),
                    "max_ms": round(max(ms), 1),
                    "over_1s": sum(m > 1000 for m in ms),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle probing (default 10)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between probes (default 0.2)")
    args = parser.parse_args()

    from _hubproc import start_hub

    tokens = {user: secrets.token_hex(16) for user in USERS}
    hub = start_hub(_TMP / "hub", [f"{u}:{t}:write" for u, t in tokens.items()])
    os.environ["HF_ENDPOINT"] = hub.url
    from test_load import Plan, drive_app_session, plans

    port = free_port()
    app = start_app(hub.url, port, _TMP / "app.log")
    base = f"http://127.0.0.1:{port}"
    samples: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    try:
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(base, "idle", stop, args.interval, samples))
        prober.start()
        time.sleep(args.idle)
        stop.set()
        prober.join()

        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(base, "load", stop, args.interval, samples))
        prober.start()
        started = time.perf_counter()

        def one(plan: Plan) -> dict[str, Any]:
            t0 = time.perf_counter()
            try:
                seen = drive_app_session(base + "/", tokens[plan.user], plan)
                verified = "Verification: **passed**" in seen["push"][1]
                return {"session": plan.index, "user": plan.user, "model": plan.arch, "verified": verified}
            except Exception as exc:  # a failed session is a result of the benchmark, not a crash of it
                return {"session": plan.index, "user": plan.user, "model": plan.arch, "error": type(exc).__name__}
            finally:
                print(f"  session {plan.index} ({plan.user}, {plan.arch}) done in {time.perf_counter() - t0:.1f} s")

        with ThreadPoolExecutor(8) as pool:
            sessions = list(pool.map(one, plans("bench")))
        load_seconds = time.perf_counter() - started
        stop.set()
        prober.join()
    finally:
        app.terminate()
        app.wait(30)
        hub.stop()

    rows = summarize(samples)
    print(f"\n8 sessions (4 users) converted and pushed in {load_seconds:.1f} s; "
          f"{sum(bool(s.get('verified')) for s in sessions)}/8 verified")  # fmt: skip
    print(f"{'phase':<6} {'endpoint':<9} {'n':>5} {'err':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'>1 s':>5}")
    for r in rows:
        print(
            f"{r['phase']:<6} {r['endpoint']:<9} {r['requests']:>5} {r['errors']:>4} "
            f"{r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8} {r['over_1s']:>5}"
        )
    import gradio
    import torch

    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "gradio": gradio.__version__,
                "torch": torch.__version__,
                "note": "the machine may be shared with other jobs; compare idle and load from the same run",
                "settings": {"idle_s": args.idle, "interval_s": args.interval, "timeout_s": TIMEOUT, "sessions": 8},
                "load_seconds": round(load_seconds, 1),
                "sessions": sessions,
                "summary": rows,
                "samples": samples,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
