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
from dataclasses import dataclass
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
    """Where a conversion stands, as of one event or a moment after it.

    Args:
        stage: The running stage (``load`` ... ``parity``, or ``done``).
        message: The pipeline's line for people.
        stage_fraction: Progress within the stage, 0 to 1; ``None`` while the stage cannot tell.
        fraction: Progress of the whole conversion, 0 to 1.
        elapsed_s: How long the stage has run so far.
        total_s: How long the conversion has run so far.
        eta_s: Seconds left for the whole conversion; ``None`` while unknown.
        number: The stage's place in :data:`STAGES`, from 1 (``None`` for ``done`` and unknown stages).
        started: This event began the stage.
        previous: When it did, the stage that ended and how long it took.
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
    previous: tuple[str, float] | None = None


class StageTracker:
    """Times the stages of one conversion from its events.

    Args:
        clock: Seconds on a monotonic clock (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.begun = clock()
        self.stage: str | None = None
        self.stage_begun = self.begun
        self.finished: list[tuple[str, float]] = []
        self._last: StageStatus | None = None
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
            The status as of now; ``started`` and ``previous`` say whether a stage ended here.
        """
        now = self.clock()
        previous = None
        started = stage != self.stage
        if started:
            if self.stage is not None:
                previous = (self.stage, now - self.stage_begun)
                self.finished.append(previous)
            self.stage, self.stage_begun = stage, now
        self._eta, self._last_at = eta_s, now
        self._last = StageStatus(
            stage=stage,
            message=message,
            stage_fraction=None if stage_fraction is None else min(max(float(stage_fraction), 0.0), 1.0),
            fraction=float(fraction),
            elapsed_s=now - self.stage_begun,
            total_s=now - self.begun,
            eta_s=eta_s,
            number=STAGES.index(stage) + 1 if stage in STAGES else None,
            started=started,
            previous=previous,
        )
        return self._last

    def update_event(self, event: ConvertEvent) -> StageStatus:
        """:meth:`update` from a :class:`~hubui.pipeline.ConvertEvent`."""
        return self.update(event.stage, event.message, event.fraction, event_stage_fraction(event), event_eta(event))

    def status(self) -> StageStatus | None:
        """The last event's status as of now: the stage's time goes on, the estimate counts down."""
        if self._last is None:
            return None
        now = self.clock()
        eta = None if self._eta is None else max(0.0, self._eta - (now - self._last_at))
        return StageStatus(
            stage=self._last.stage,
            message=self._last.message,
            stage_fraction=self._last.stage_fraction,
            fraction=self._last.fraction,
            elapsed_s=now - self.stage_begun,
            total_s=now - self.begun,
            eta_s=eta,
            number=self._last.number,
        )


def event_stage_fraction(event: ConvertEvent) -> float | None:
    """The stage's own progress of an event; for a parity batch without one, the batches done."""
    value = getattr(event, "stage_fraction", None)  # issue 18's field; absent from older pipelines
    if value is None and event.stage == "parity" and event.report is not None:
        return event.report.batches_done / max(event.report.batches_total, 1)
    return None if value is None else float(value)


def event_eta(event: ConvertEvent) -> float | None:
    """An event's estimate of the seconds left for the whole conversion, ``None`` while unknown."""
    value = getattr(event, "eta_s", None)  # issue 18's field; absent from older pipelines
    return None if value is None else max(0.0, float(value))


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
