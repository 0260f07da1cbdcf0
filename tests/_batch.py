"""Helpers of the batch tests: a real local Ray head on 127.0.0.1, a small zoo on the local Hub, the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from _hubproc import free_port
from huggingface_hub import HfApi

HUBUI_COMMIT = "Upload model with hubui"


@dataclass
class RayHead:
    """``ray start --head --block`` in its own process group: stopping it stops every Ray process it started."""

    address: str
    proc: subprocess.Popen = field(repr=False)
    temp_dir: str = ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # --block: SIGTERM stops the processes it started
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        # Whatever the head left behind in its group (raylet's workers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)  # Ray's session logs and sockets


def start_ray_head(num_cpus: int = 2, timeout: float = 180.0) -> RayHead:
    """A real Ray head on 127.0.0.1 (2 CPUs, a 200 MB object store, no dashboard), ready when this returns."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="hr", dir="/tmp")  # short: Ray's unix socket paths must stay < 108 chars
    ray = str(Path(sys.executable).with_name("ray"))
    cmd = [
        ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
        "--num-cpus", str(num_cpus), "--include-dashboard=false", "--object-store-memory", str(200 * 10**6),
        "--temp-dir", temp_dir, "--disable-usage-stats",
    ]  # fmt: skip
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    head = RayHead(f"127.0.0.1:{port}", proc, temp_dir)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout):
        head.stop()
        raise RuntimeError("the Ray head did not start:\n" + "".join(lines[-30:]))
    return head


def run_cli(args: list[str], token: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "hubui", "batch", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def write_manifest(path: Path, entries: list[dict[str, Any]], defaults: dict[str, Any] | None = None) -> Path:
    path.write_text(yaml.safe_dump({"defaults": defaults or {}, "models": entries}, sort_keys=False))
    return path


def hubui_commits(api: HfApi, repo_id: str) -> list[Any]:
    """The commits hubui made to a repo (not the repo's initial commit)."""
    if not api.repo_exists(repo_id):
        return []
    return [c for c in api.list_repo_commits(repo_id) if c.title == HUBUI_COMMIT]


def seed_tiny_open_clip(tmp: Path, repo_id: str, token: str) -> None:
    """Put a tiny open_clip model (random weights, a config open_clip does not ship) on the local Hub, so a
    manifest entry can take it by ``hf_hub_id`` in any worker process."""
    from test_open_clip_pipeline import make_loaded, register_config, tiny_cfg

    import hubui

    name = register_config(tmp, "tiny-clip-batch", tiny_cfg())
    loaded = make_loaded(name, seed=3)
    result = hubui.convert(loaded.spec, hubui.ConvertOptions(tmp / "tiny-clip"), loaded=loaded)
    assert result.passed
    hubui.publish(
        hubui.PushRequest(result.export.folder, repo_id, allow_random_weights=True), token=token, verify=False
    )


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
