"""`hubui demo` / `hubui app` and their port: 0 picks a free one, a busy one is a one-line error, none takes the next.

Issue 15 item 15: `--port 0` crashed with a traceback (gradio answered http://127.0.0.1:0), and so did a busy port.
Every test runs the real command in a subprocess.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)}
    env.pop("GRADIO_SERVER_PORT", None)
    env.update(extra)
    return env


@contextmanager
def _busy_port() -> Iterator[int]:
    """A port some other program listens on (another Gradio app on 7860, say)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@contextmanager
def _started(argv: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start `hubui ...`; yield it and the app URL it printed; stop it with SIGTERM and check it ended cleanly."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubui", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    # A safety net only: a command that never prints its URL is killed, and the loop below then ends.
    watchdog = threading.Timer(240, proc.kill)
    watchdog.start()
    try:
        seen = []
        for line in proc.stdout:  # the URL line is printed once the server answers; no polling needed
            seen.append(line)
            found = re.match(r"app:\s+(http://\S+)", line)
            if found:
                break
        else:
            pytest.fail(f"exit {proc.wait()} before printing the app's URL:\n{''.join(seen)}")
        yield proc, found.group(1).rstrip("/")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(seen) + out
        assert "Traceback" not in "".join(seen) + out
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hubui", *argv], capture_output=True, text=True, timeout=300, env=env)


def test_demo_port_0_picks_a_free_port_and_prints_the_real_url(tmp_path):
    with _started(["demo", "--port", "0", "--root", str(tmp_path / "hub")], _env(tmp_path)) as (_, url):
        port = int(url.rsplit(":", 1)[1])
        assert port != 0
        page = httpx.get(url + "/", timeout=30)
        assert page.status_code == 200 and "hubui" in page.text


def test_app_port_0_picks_a_free_port(tmp_path):
    with _started(["app", "--port", "0"], _env(tmp_path)) as (_, url):
        assert int(url.rsplit(":", 1)[1]) != 0
        assert httpx.get(url + "/", timeout=30).status_code == 200


@pytest.mark.parametrize("command", ["demo", "app"])
def test_a_busy_port_is_a_one_line_error(tmp_path, command):
    extra = ["--root", str(tmp_path / "hub")] if command == "demo" else []
    with _busy_port() as port:
        proc = _run([command, "--port", str(port), *extra], _env(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(port) in errors[0] and "in use" in errors[0], proc.stderr
    assert "--port 0" in proc.stderr  # what to do
    if command == "demo":
        assert not [line for line in proc.stdout.splitlines() if line.startswith("app:")]


def test_without_port_the_next_free_one_is_taken(tmp_path):
    with _busy_port() as base:
        # GRADIO_SERVER_PORT moves gradio's starting port (7860 by default); the busy one is skipped.
        env = _env(tmp_path, GRADIO_SERVER_PORT=str(base))
        with _started(["app"], env) as (_, url):
            port = int(url.rsplit(":", 1)[1])
            assert base < port < base + 100
            assert httpx.get(url + "/", timeout=30).status_code == 200
