"""Start and stop `hubui localhub` as a real subprocess, for the fixtures and the restart tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class HubProcess:
    """A running local Hub: its URL, root, and the process behind it."""

    url: str
    root: Path
    proc: subprocess.Popen = field(repr=False)

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


def start_hub(root: Path, users: list[str], orgs: list[str] = (), timeout: float = 60.0) -> HubProcess:
    """Run ``python -m hubui localhub --port 0`` and wait for the URL on its first stdout line."""
    cmd = [sys.executable, "-m", "hubui", "localhub", "--root", str(root), "--port", "0"]
    for u in users:
        cmd += ["--user", u]
    for o in orgs:
        cmd += ["--org", o]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0].startswith("http://"):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"local Hub did not start: {line!r}\n{err}")
    return HubProcess(line[0].strip(), Path(root), proc)
