"""Start and stop `hubui localhub` as a real subprocess, for the fixtures and the restart tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO


@dataclass
class HubProcess:
    """A running local Hub: its URL, root, and the process behind it."""

    url: str
    root: Path
    proc: subprocess.Popen = field(repr=False)
    stderr_tail: list[str] = field(default_factory=list, repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to clean up, like a crash."""
        self.proc.kill()
        self.proc.wait()


class HubRefused(RuntimeError):
    """The local Hub exited before it served anything; ``returncode`` and ``stderr`` say why."""

    def __init__(self, returncode: int | None, stderr: str, first_line: str) -> None:
        super().__init__(f"local Hub did not start (exit {returncode}): {first_line!r}\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


USERS_ENV = "HUBUI_LOCALHUB_USERS"


def users_config(users: list[str], orgs: list[str] = ()) -> str:
    """The JSON text of a users file for ``name:TOKEN:role`` and ``org:member1,member2`` specs."""
    entries = []
    for spec in users:
        name, token, *role = spec.split(":")
        entries.append({"name": name, "token": token, "role": role[0] if role else "write"})
    org_entries = []
    for spec in orgs:
        name, _, members = spec.partition(":")
        org_entries.append({"name": name, "members": [m for m in members.split(",") if m]})
    return json.dumps({"users": entries, "orgs": org_entries})


def free_port() -> int:
    """A TCP port that is free now, for a Hub that must come back on the same URL after a restart."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_hub(
    root: Path,
    users: list[str],
    orgs: list[str] = (),
    timeout: float = 60.0,
    *,
    port: int = 0,
    faults: bool = False,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> HubProcess:
    """Run ``python -m hubui localhub`` and wait for the URL on its first stdout line.

    ``port`` 0 picks a free one; pass the old port to restart a killed Hub on the same URL.
    ``faults`` starts it with ``--faults`` (the fault-injection endpoint).
    ``extra_args`` (e.g. ``--log-level debug``), ``env`` (e.g. a short header timeout) and ``preexec_fn`` (e.g. a
    file-size limit) are for the limit tests.
    Users and orgs travel in the environment, never in argv: a command line is readable by every local user.

    Raises:
        HubRefused: If the Hub exited (or printed no URL within ``timeout``) instead of serving.
    """
    cmd = [sys.executable, "-m", "hubui", "localhub", "--root", str(root), "--port", str(port)]
    if faults:
        cmd.append("--faults")
    cmd += extra_args
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}), USERS_ENV: users_config(users, orgs)}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, preexec_fn=preexec_fn
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0].startswith("http://"):
        proc.kill()
        proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
        raise HubRefused(proc.returncode, err, line[0] if line else "")
    hub = HubProcess(line[0].strip(), Path(root), proc)
    # Keep reading stderr and stdout (uvicorn's access log at debug level): a full pipe would block the server.
    threading.Thread(target=_drain, args=(proc.stderr, hub.stderr_tail), daemon=True).start()
    threading.Thread(target=_drain, args=(proc.stdout, hub.stderr_tail), daemon=True).start()
    return hub


def _drain(stream: TextIO | None, tail: list[str]) -> None:
    for text in stream or ():
        tail.append(text)
        del tail[:-200]
