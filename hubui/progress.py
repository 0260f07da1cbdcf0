"""How far a running conversion is, for people: each stage's own progress, how long it has run, the time left.

:class:`StageTracker` times the stages of :func:`hubui.pipeline.iter_convert` (``load``, ``export``,
``reference``, ``rebuild``, ``parity``, ``done``) from the events as they arrive and counts the pipeline's
estimate of the time left down between them, so that a stage that gives no news for a while (a rebuild) can
still say that it runs and for how long. :func:`with_ticks` runs a conversion in a worker thread and hands its
events on, with a ``None`` whenever nothing came for a while, for a face that can only redraw when it yields
(the app). The text helpers say durations the way a person would. The CLI (:mod:`hubui.cli_progress`) and the
app (:mod:`hubui.ui.views`) draw from here; nothing here prints.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from hubui.pipeline import ConvertEvent

STAGES = ("load", "export", "reference", "rebuild", "parity")
"""The stages of a conversion, in order (``done`` follows the last)."""

STAGE_LABELS = {
    "load": "loading the model",
    "export": "writing the Hub folder",
    "reference": "the original's outputs on the parity inputs",
    "rebuild": "rebuilding from the folder with the library's own loader",
    "parity": "comparing the rebuilt model's outputs with the original's",
    "done": "finished",
}
"""What each stage does, in a few words."""

T = TypeVar("T")


@dataclass(frozen=True)
class StageStatus:
    """Where one stage of a conversion stands, as of one event or a moment after it.

    Args:
        stage: The stage (``load`` ... ``parity``, or ``done``).
        message: The pipeline's last line for people about it.
        stage_fraction: Progress within the stage, 0 to 1; ``None`` while the stage cannot tell.
        fraction: Progress of the whole conversion, 0 to 1.
        elapsed_s: How long the stage has run so far.
        total_s: How long the conversion has run so far.
        eta_s: Seconds left for the whole conversion; ``None`` while unknown.
        number: The stage's place in :data:`STAGES`, from 1 (``None`` for ``done`` and unknown stages).
        started: This event began the stage.
        ended: The stages this event finished, with how long each took (a stage ends when its progress reaches
            1, or when a later stage starts that does not run beside it: see :data:`OVERLAPPING`).
    """

    stage: str
    message: str
    stage_fraction: float | None
    fraction: float
    elapsed_s: float
    total_s: float
    eta_s: float | None
    number: int | None
    started: bool = False
    ended: tuple[tuple[str, float], ...] = ()


OVERLAPPING = frozenset({("export", "reference")})
"""Pairs of stages that run at the same time (the folder is written while the original computes its outputs):
the second starting does not end the first."""


def _order(stage: str) -> int:
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


class StageTracker:
    """Times the stages of one conversion from its events; stages may overlap (``export`` and ``reference``
    run at the same time).

    Args:
        clock: Seconds on a monotonic clock (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.begun = clock()
        self.finished: list[tuple[str, float]] = []
        self._begun: dict[str, float] = {}  # running stages: when each began
        self._last: dict[str, StageStatus] = {}  # running stages: their last event
        self._latest: StageStatus | None = None
        self._last_at = self.begun
        self._eta: float | None = None

    def update(
        self,
        stage: str,
        message: str,
        fraction: float = 0.0,
        stage_fraction: float | None = None,
        eta_s: float | None = None,
    ) -> StageStatus:
        """Record one event.

        Args:
            stage: Its stage.
            message: Its line.
            fraction: The whole conversion's progress.
            stage_fraction: The stage's own progress, if known.
            eta_s: The estimate of the seconds left, if known.

        Returns:
            The stage's status as of now; ``started`` and ``ended`` say whether stages began or ended here.
        """
        now = self.clock()
        done = {name for name, _ in self.finished}
        started = stage not in self._begun and stage not in done
        ended: list[tuple[str, float]] = []
        if started:
            earlier = [o for o in self._begun if _order(o) < _order(stage) and (o, stage) not in OVERLAPPING]
            for other in list(self._begun) if stage == "done" else earlier:
                ended.append(self._finish(other, now))
            self._begun[stage] = now
        part = None if stage_fraction is None else min(max(float(stage_fraction), 0.0), 1.0)
        begun = self._begun.get(stage, now)
        self._eta, self._last_at = eta_s, now
        status = StageStatus(
            stage=stage,
            message=message,
            stage_fraction=part,
            fraction=float(fraction),
            elapsed_s=now - begun,
            total_s=now - self.begun,
            eta_s=eta_s,
            number=STAGES.index(stage) + 1 if stage in STAGES else None,
            started=started,
        )
        if stage in self._begun:
            self._last[stage] = status
            if part is not None and part >= 1.0 and stage != "done":
                ended.append(self._finish(stage, now))
        self._latest = status = replace(status, ended=tuple(ended))
        return status

    def _finish(self, stage: str, now: float) -> tuple[str, float]:
        took = (stage, now - self._begun.pop(stage))
        self._last.pop(stage, None)
        self.finished.append(took)
        return took

    def update_event(self, event: ConvertEvent) -> StageStatus:
        """:meth:`update` from a :class:`~hubui.pipeline.ConvertEvent`."""
        return self.update(event.stage, event.message, event.fraction, event_stage_fraction(event), event_eta(event))

    def _now(self, status: StageStatus, now: float) -> StageStatus:
        eta = None if self._eta is None else max(0.0, self._eta - (now - self._last_at))
        begun = self._begun.get(status.stage, now - status.elapsed_s)
        return replace(status, elapsed_s=now - begun, total_s=now - self.begun, eta_s=eta, started=False, ended=())

    def status(self) -> StageStatus | None:
        """The last event's status as of now: the stage's time goes on, the estimate counts down."""
        return None if self._latest is None else self._now(self._latest, self.clock())

    def running(self) -> list[StageStatus]:
        """Every stage still running, in the order they began, as of now (after ``done``: the ``done`` status)."""
        now = self.clock()
        if self._latest is not None and self._latest.stage == "done":
            return [self._now(self._latest, now)]
        return [self._now(status, now) for status in self._last.values()]


def event_stage_fraction(event: ConvertEvent) -> float | None:
    """The stage's own progress of an event; for a parity batch without one, the batches done."""
    if event.stage_fraction is None and event.stage == "parity" and event.report is not None:
        return event.report.batches_done / max(event.report.batches_total, 1)
    return event.stage_fraction


def event_eta(event: ConvertEvent) -> float | None:
    """An event's estimate of the seconds left for the whole conversion, ``None`` while unknown."""
    return None if event.eta_s is None else max(0.0, float(event.eta_s))


def duration_text(seconds: float) -> str:
    """``0.3 s``, ``42 s``, ``1 min 15 s``, ``2 h 5 min``: a time taken, as a person says it."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def time_left_text(eta_s: float | None) -> str:
    """``about 42 s left`` (``about 3 min 20 s left``...) for an estimate; ``""`` while there is none."""
    if eta_s is None:
        return ""
    whole = max(1, round(eta_s))
    if whole < 60:
        return f"about {whole} s left"
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"about {minutes} min {secs} s left" if secs else f"about {minutes} min left"
    hours, minutes = divmod(whole // 60, 60)
    return f"about {hours} h {minutes} min left"


def percent_text(fraction: float | None) -> str:
    """``38%`` (floored, so 100% means done); ``""`` when unknown."""
    return "" if fraction is None else f"{int(fraction * 100)}%"


def with_ticks(items: Iterator[T], every_s: float, cancel: threading.Event | None = None) -> Iterator[T | None]:
    """Run ``items`` in a worker thread and pass each item on, with ``None`` after every ``every_s`` without one.

    For a face that can only redraw when it yields (a gradio generator): the ``None`` lets it show a stage's
    time going on while the stage gives no news. Errors raised by ``items`` are raised here.

    Args:
        items: The iterator (e.g. :func:`hubui.pipeline.iter_convert`), consumed by the worker only.
        every_s: Seconds without an item before a ``None``.
        cancel: Set when the consumer stops early (closes this generator), so that the worker's conversion
            ends at its next step instead of running on unseen.

    Yields:
        The items, in order, and ``None`` ticks.
    """
    box: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                box.put(("item", item))
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, who raises it
            box.put(("error", exc))
        else:
            box.put(("end", None))
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close is not None:
                close()

    worker = threading.Thread(target=work, name="hubui-progress", daemon=True)
    worker.start()
    ended = False
    try:
        while True:
            try:
                kind, value = box.get(timeout=every_s)
            except queue.Empty:
                yield None
                continue
            if kind != "item":
                ended = True
                if kind == "error":
                    raise value
                return
            yield value
    finally:
        if not ended:  # the consumer stopped early: the worker stops at its next step
            stop.set()
            if cancel is not None:
                cancel.set()


__all__ = [
    "OVERLAPPING",
    "STAGES",
    "STAGE_LABELS",
    "StageStatus",
    "StageTracker",
    "duration_text",
    "event_eta",
    "event_stage_fraction",
    "percent_text",
    "time_left_text",
    "with_ticks",
]
