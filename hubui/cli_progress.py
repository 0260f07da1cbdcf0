"""The command line's progress lines: one line per stage start and end, and a progress line within a stage.

On a terminal the progress line is redrawn in place (``\\r``); in a pipe or a log each progress line is a whole
line, at most about one a second per stage (plus the stage's start and end lines, its first progress line and
its first line with a time-left estimate), so that a job of an hour leaves a readable log instead of a flood.
Stages may overlap (the folder is written while the original computes its reference outputs): each has its own
lines. A stage that gives no news for a while (a rebuild) is still reported: :func:`ticking` asks for a
"still running, N s so far" line.

Lines look like::

    [reference] computing the original's outputs on 32 inputs
    [reference]  40% batch 13/32, 2.1 s so far, about 9 s left
    [reference] done in 5.2 s, about 6 s left
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from hubui.progress import (
    StageStatus,
    StageTracker,
    duration_text,
    event_eta,
    event_stage_fraction,
    percent_text,
    time_left_text,
)

if TYPE_CHECKING:
    from hubui.pipeline import ConvertEvent

PIPE_INTERVAL_S = 1.0  # a log gets at most one progress line a second per stage
TTY_INTERVAL_S = 0.1  # a terminal redraws its one line at most ten times a second
QUIET_S = 10.0  # in a log, a stage with no news says it still runs every this many seconds


class StageLines:
    """Prints a conversion's stages and progress on stderr.

    Args:
        stream: Where to write (default: stderr).
        tty: Redraw the progress line in place (default: whether ``stream`` is a terminal).
        clock: Seconds on a monotonic clock (tests pass their own).
    """

    def __init__(
        self, stream: TextIO | None = None, tty: bool | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(self.stream.isatty()) if tty is None else tty
        self.interval_s = TTY_INTERVAL_S if self.tty else PIPE_INTERVAL_S
        self.quiet_s = TTY_INTERVAL_S if self.tty else QUIET_S
        self.clock = clock
        self.tracker = StageTracker(clock)
        self._lock = threading.Lock()  # the ticker thread and the caller both write
        self._drawn = 0  # width of the progress line drawn in place on a terminal
        # per running stage: when it last printed, whether it printed a progress line, and an estimate
        self._shown: dict[str, tuple[float, bool, bool]] = {}

    def update(
        self,
        stage: str,
        message: str,
        fraction: float = 0.0,
        stage_fraction: float | None = None,
        eta_s: float | None = None,
    ) -> None:
        """One piece of news: a new stage prints the end of the last one and its own start; within a stage a
        progress line, when one is due.

        Args:
            stage: The stage (``load`` ... ``parity``, ``done``; ``verify`` for a push's check).
            message: The news, for people.
            fraction: The whole job's progress.
            stage_fraction: The stage's own progress, if known.
            eta_s: Seconds left for the whole job, if known.
        """
        with self._lock:
            status = self.tracker.update(stage, message, fraction, stage_fraction, eta_s)
            now = self.clock()
            left = time_left_text(status.eta_s)
            if status.started or status.ended:
                self._clear()  # a line redrawn in place goes before whole lines
            for name, seconds in status.ended:  # stages this one's start finished come before its own line
                if name != status.stage:
                    self._end(name, seconds, left)
            if status.started:
                if status.stage == "done":
                    self._line(f"[done] {status.message} ({duration_text(status.total_s)} in all)")
                    return
                self._line(f"[{status.stage}] {status.message}" + (f" ({left})" if left else ""))
                self._shown[status.stage] = (now, False, status.eta_s is not None)
            for name, seconds in status.ended:
                if name == status.stage:
                    self._end(name, seconds, left)
            if status.started or status.stage not in self._shown:
                return  # a start line, a finished stage, or news from a stage that already ended
            last_at, shown, eta_shown = self._shown[status.stage]
            # The stage's first progress line and its first estimate always show, even in a stage under a second.
            first = not shown or (status.eta_s is not None and not eta_shown)
            if now - last_at < self.interval_s and not first:
                return
            self._shown[status.stage] = (now, True, eta_shown or status.eta_s is not None)
            self._progress(_progress_line(status))

    def _end(self, stage: str, seconds: float, left: str) -> None:
        self._line(f"[{stage}] done in {duration_text(seconds)}" + (f", {left}" if left else ""))
        self._shown.pop(stage, None)

    def event(self, event: ConvertEvent) -> None:
        """:meth:`update` from a :class:`~hubui.pipeline.ConvertEvent`."""
        self.update(event.stage, event.message, event.fraction, event_stage_fraction(event), event_eta(event))

    def say(self, stage: str, message: str) -> None:
        """A line of news that always prints (e.g. the loader's few steps), outside the stage timing."""
        with self._lock:
            self._clear()
            self._line(f"[{stage}] {message}")

    def tick(self) -> None:
        """No news: say that each running stage still runs and for how long, when such a line is due."""
        with self._lock:
            now = self.clock()
            for status in self.tracker.running():
                last_at, shown, eta_shown = self._shown.get(status.stage, (now, True, True))
                if status.stage == "done" or now - last_at < self.quiet_s:
                    continue
                self._shown[status.stage] = (now, shown, eta_shown)
                line = f"[{status.stage}] still running, {duration_text(status.elapsed_s)} so far"
                left = time_left_text(status.eta_s)
                self._progress(f"{line}, {left}" if left else line)

    def close(self) -> None:
        """Clear a progress line drawn in place, so that what follows starts on a clean line."""
        with self._lock:
            self._clear()

    # --- drawing ---------------------------------------------------------------------------------
    def _progress(self, text: str) -> None:
        if not self.tty:
            self._line(text)
            return
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)  # a wrapped line cannot be redrawn
        text = text[:width]
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(text)

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _progress_line(status: StageStatus) -> str:
    pct = percent_text(status.stage_fraction)
    parts = [f"{status.message}, {duration_text(status.elapsed_s)} so far"]
    left = time_left_text(status.eta_s)
    if left:
        parts.append(left)
    return f"[{status.stage}] " + (f"{pct:>4} " if pct else "") + ", ".join(parts)


@contextlib.contextmanager
def ticking(lines: StageLines, every_s: float | None = None) -> Iterator[StageLines]:
    """Call ``lines.tick()`` from a thread while the block runs, so that a long stage shows its time going on.

    Only the display runs in that thread: the work stays in the caller's (main) thread, where Ctrl+C and
    SIGTERM unwind it and its clean-up runs.

    Args:
        lines: The display.
        every_s: Seconds between ticks (default: its redraw interval on a terminal, 1 s in a log).
    """
    stop = threading.Event()
    period = every_s if every_s is not None else (lines.interval_s * 5 if lines.tty else 1.0)

    def run() -> None:
        while not stop.wait(period):
            lines.tick()

    thread = threading.Thread(target=run, name="hubui-ticker", daemon=True)
    thread.start()
    try:
        yield lines
    finally:
        stop.set()
        thread.join(timeout=5)
        lines.close()


__all__ = ["PIPE_INTERVAL_S", "QUIET_S", "StageLines", "ticking"]
