"""Run a bench case in a child process and stop it before the machine runs out of memory.

The library flow on ViT-bigG-14 needs about three times its 10.2 GB of weights, more than a 24 GB machine has.
Left alone it would wake the kernel's OOM killer, which may pick another process on a shared machine. The parent
therefore samples the child's resident memory (``/proc/PID/status``) and the machine's ``MemAvailable`` every
100 ms and kills the child (SIGKILL) when its RSS reaches a ceiling or the machine's available memory falls under a
floor. The child writes the name of the phase it is in to a file (:func:`note_phase`), so that the stop says where
it happened: "stopped by the bench's watchdog at 19.8 GiB RSS during export".
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIB = 1 << 30
PHASE_FILE_ENV = "HUBUI_PERF_PHASE_FILE"
_INTERVAL_S = 0.1
_TRACE_EVERY_S = 5.0  # a coarse RSS trace goes into the record: where the memory grew


def note_phase(name: str) -> None:
    """In the child: say which phase runs now (read by the parent when it has to stop the child)."""
    path = os.environ.get(PHASE_FILE_ENV)
    if path:
        Path(path).write_text(name)


def meminfo(key: str) -> int | None:
    """A ``/proc/meminfo`` field in bytes (``MemAvailable``, ``MemTotal``), or None where there is none."""
    try:
        match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def _rss(pid: int) -> int | None:
    try:
        match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


@dataclass
class Watched:
    """What became of one child: its exit status and output, or the watchdog's stop."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_bytes: int
    stopped: dict[str, Any] | None = None
    trace: list[tuple[float, int]] = field(default_factory=list)


def run_watched(
    cmd: list[str], env: dict[str, str], cwd: Path, rss_ceiling_bytes: int, mem_available_floor_bytes: int
) -> Watched:
    """Run ``cmd`` and kill it if its RSS reaches ``rss_ceiling_bytes`` or ``MemAvailable`` drops under the floor.

    Args:
        cmd: The child's command line.
        env: Its environment (the phase file's path is added).
        cwd: Its working directory.
        rss_ceiling_bytes: The child's resident memory at which it is stopped.
        mem_available_floor_bytes: The machine's ``MemAvailable`` under which it is stopped (other processes
            grow too; the OOM killer must never have to choose).

    Returns:
        The child's exit status, output, run time, highest sampled RSS and, when it was stopped, why and in which
        phase (``stopped``), with a coarse RSS trace.
    """
    with tempfile.TemporaryDirectory(prefix="hubui-perf-watch-") as tmp:
        phase_file = Path(tmp) / "phase"
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with out.open("w") as fo, err.open("w") as fe:
            start = time.perf_counter()
            proc = subprocess.Popen(
                cmd, stdout=fo, stderr=fe, text=True, env={**env, PHASE_FILE_ENV: str(phase_file)}, cwd=cwd
            )
            max_rss, stopped, trace, last_trace = 0, None, [], -_TRACE_EVERY_S
            while proc.poll() is None:
                rss = _rss(proc.pid) or 0
                available = meminfo("MemAvailable")
                max_rss = max(max_rss, rss)
                now = time.perf_counter() - start
                if now - last_trace >= _TRACE_EVERY_S:
                    trace.append((round(now, 1), rss))
                    last_trace = now
                reason = None
                if rss >= rss_ceiling_bytes:
                    reason = f"its RSS reached the ceiling of {rss_ceiling_bytes / GIB:.1f} GiB"
                elif available is not None and available < mem_available_floor_bytes:
                    reason = (
                        f"the machine's MemAvailable fell to {available / GIB:.1f} GiB "
                        f"(floor {mem_available_floor_bytes / GIB:.1f} GiB)"
                    )
                if reason is not None:
                    proc.kill()
                    proc.wait()
                    phase = phase_file.read_text() if phase_file.exists() else "start-up"
                    stopped = {
                        "stopped_by_watchdog": True,
                        "reason": reason,
                        "rss_at_stop_bytes": rss,
                        "mem_available_at_stop_bytes": available,
                        "phase": phase,
                        "after_s": round(now, 1),
                        "rss_ceiling_bytes": rss_ceiling_bytes,
                        "mem_available_floor_bytes": mem_available_floor_bytes,
                        "summary": f"stopped by the bench's watchdog at {rss / GIB:.1f} GiB RSS during {phase} "
                        f"after {now:.0f} s ({reason})",
                    }
                    break
                time.sleep(_INTERVAL_S)
            seconds = time.perf_counter() - start
        return Watched(proc.returncode, out.read_text(), err.read_text(), seconds, max_rss, stopped, trace)
