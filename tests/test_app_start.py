"""The README's start command: `hubui demo` serves the app on an embedded local Hub."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from huggingface_hub import HfApi


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_build_app_does_not_launch():
    import gradio as gr

    from hubui.ui import build_app

    app = build_app(hub_url="http://127.0.0.1:1")
    assert isinstance(app, gr.Blocks)
    assert not app.is_running


def test_demo_starts_hub_and_app(tmp_path):
    port = _free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)}
    env.pop("HF_ENDPOINT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubui", "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]  # the Hub, the demo user, the seeded model, the app
        hub_url = lines[0].split()[2]
        token = lines[1].rsplit(" ", 1)[1].strip()
        assert lines[2].startswith("demo model: demo-org/") and "random weights" in lines[2]
        assert lines[3].strip().endswith(f"http://127.0.0.1:{port}")
        me = HfApi(endpoint=hub_url, token=token).whoami(cache=False)
        assert me["name"] == "demo" and [o["name"] for o in me["orgs"]] == ["demo-org"]
        deadline = time.monotonic() + 90
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "hubui demo exited early"
                assert time.monotonic() < deadline, "the app did not answer within 90 s"
                time.sleep(0.5)
        assert page.status_code == 200 and "hubui" in page.text
        assert (tmp_path / "cache" / "hubui" / "demo-hub" / "repos").is_dir()
        assert list(tmp.glob("hubui-app-*")), "the app's scratch folder (sessions' exports) was not made"
        # SIGTERM (docker stop, a Space restart) stops it like Ctrl+C: server closed, scratch removed.
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "Traceback" not in out
        assert list(tmp.glob("hubui-*")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
