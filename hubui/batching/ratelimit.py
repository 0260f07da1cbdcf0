"""The commit-rate budget that all workers of a batch share, and the pause after a 429.

The Hub limits commits per user (about 128 an hour). A budget of ``N`` commits per ``W`` seconds is kept as a
log of commit slots: a commit may start when fewer than ``N`` slots are still running or ended less than ``W``
seconds ago. Ends are taken when the Hub's answer arrives, so that the commits' own timestamps (which the Hub
takes between the request and its answer) are at least ``W`` apart for every ``N``. A ``429`` with
``Retry-After`` seen by any worker pauses every worker's requests for that long.

Two stores hold the log: a JSON file under an ``fcntl`` lock for the processes of one machine
(:class:`FileBudget`), and one Ray actor for a cluster (:func:`ray_budget`). Workers apply it through
huggingface_hub's HTTP client hooks (:func:`install`), so the gate sits exactly at the commit request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from hubui.errors import InvalidInputError

DEFAULT_BUDGET = "100/h"  # below the Hub's ~128 commits an hour per user
_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
# A slot whose worker died before the Hub answered is counted as ended this long after it started.
STALE_SLOT_S = 600.0
NO_RETRY_AFTER_PAUSE_S = 5.0
MAX_PAUSE_S = 600.0


@dataclass(frozen=True)
class CommitBudget:
    """At most ``commits`` commits in any ``seconds``-long window.

    Args:
        commits: Commits allowed per window (>= 1).
        seconds: The window's length.
    """

    commits: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> CommitBudget:
        """``"100/h"``, ``"30/min"``, ``"2/10s"`` or ``"5/60"`` (seconds).

        Raises:
            InvalidInputError: Not of that form, naming the value.
        """
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([a-z]*)\s*", str(text).lower())
        unit = _UNITS.get(m.group(3) or "s") if m else None
        if m is None or unit is None or int(m.group(1)) < 1 or (m.group(2) and float(m.group(2)) <= 0):
            raise InvalidInputError(
                f"Commit budget {text!r} is not COMMITS/PERIOD",
                "Use e.g. 100/h (the default), 30/min or 2/10s.",
            )
        return cls(int(m.group(1)), float(m.group(2) or 1) * unit)

    def __str__(self) -> str:
        return f"{self.commits}/{self.seconds:g}s"


class BudgetLog:
    """The budget's state and rules, kept as plain data so a file or an actor can hold it.

    ``slots`` maps a slot id to ``[start, end or None]``; ``pause_until`` is a time before which no request goes.
    """

    def __init__(self, budget: CommitBudget, state: dict[str, Any] | None = None) -> None:
        self.budget = budget
        self.state: dict[str, Any] = state or {"slots": {}, "pause_until": 0.0, "next": 0}

    def try_acquire(self, now: float) -> tuple[str | None, float]:
        """``(slot id, 0)`` when a commit may start now, else ``(None, seconds to wait)``."""
        pause = self.state["pause_until"] - now
        if pause > 0:
            return None, pause
        window = self.budget.seconds
        busy: list[float] = []  # when each counted slot stops counting
        for slot_id, (start, end) in list(self.state["slots"].items()):
            end = end if end is not None else (start + STALE_SLOT_S if now - start > STALE_SLOT_S else None)
            if end is None:
                busy.append(now + 1.0)  # still running: look again soon
            elif end + window > now:
                busy.append(end + window)
            else:
                del self.state["slots"][slot_id]
        if len(busy) < self.budget.commits:
            slot_id = str(self.state["next"])
            self.state["next"] += 1
            self.state["slots"][slot_id] = [now, None]
            return slot_id, 0.0
        busy.sort()
        return None, max(0.01, busy[len(busy) - self.budget.commits] - now)

    def release(self, slot_id: str, now: float) -> None:
        if slot_id in self.state["slots"]:
            self.state["slots"][slot_id][1] = now

    def pause(self, seconds: float, now: float) -> None:
        self.state["pause_until"] = max(self.state["pause_until"], now + min(seconds, MAX_PAUSE_S))

    def paused_for(self, now: float) -> float:
        return max(0.0, self.state["pause_until"] - now)


class Budget(Protocol):
    """What a worker needs from a shared budget (both stores implement it)."""

    def try_acquire(self) -> tuple[str | None, float]: ...
    def release(self, slot_id: str) -> None: ...
    def pause(self, seconds: float) -> None: ...
    def paused_for(self) -> float: ...


class FileBudget:
    """A budget shared by the processes of one machine through a JSON file under an exclusive lock.

    Args:
        path: The state file (created); its ``.lock`` sibling is the lock.
        budget: The limit.
    """

    def __init__(self, path: str | Path, budget: CommitBudget) -> None:
        self.path = Path(path)
        self.budget = budget

    @contextlib.contextmanager
    def _log(self) -> Iterator[BudgetLog]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    state = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    state = None
                log = BudgetLog(self.budget, state)
                yield log
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(log.state), encoding="utf-8")
                tmp.replace(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def try_acquire(self) -> tuple[str | None, float]:
        with self._log() as log:
            return log.try_acquire(time.time())

    def release(self, slot_id: str) -> None:
        with self._log() as log:
            log.release(slot_id, time.time())

    def pause(self, seconds: float) -> None:
        with self._log() as log:
            log.pause(seconds, time.time())

    def paused_for(self) -> float:
        with self._log() as log:
            return log.paused_for(time.time())


class _RayBudgetActor:
    """The Ray actor's body: one :class:`BudgetLog` on the actor's clock, and the workers' live events."""

    def __init__(self, budget: CommitBudget) -> None:
        self.log = BudgetLog(budget)
        self.events: list[Any] = []

    def try_acquire(self) -> tuple[str | None, float]:
        return self.log.try_acquire(time.time())

    def release(self, slot_id: str) -> None:
        self.log.release(slot_id, time.time())

    def pause(self, seconds: float) -> None:
        self.log.pause(seconds, time.time())

    def paused_for(self) -> float:
        return self.log.paused_for(time.time())

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def drain(self) -> list[Any]:
        out, self.events = self.events, []
        return out


class RayBudget:
    """A worker's handle on the batch's budget actor (picklable: it holds the actor handle only)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def _call(self, method: str, *args: Any) -> Any:
        import ray

        return ray.get(getattr(self.actor, method).remote(*args))

    def try_acquire(self) -> tuple[str | None, float]:
        return self._call("try_acquire")

    def release(self, slot_id: str) -> None:
        self._call("release", slot_id)

    def pause(self, seconds: float) -> None:
        self._call("pause", seconds)

    def paused_for(self) -> float:
        return self._call("paused_for")

    def emit(self, event: Any) -> None:
        self.actor.emit.remote(event)  # fire and forget: a live line must never slow the work


def ray_budget(budget: CommitBudget) -> RayBudget:
    """Start the batch's budget actor (it lives as long as the driver's Ray job)."""
    import ray

    actor = ray.remote(num_cpus=0)(_RayBudgetActor).remote(budget)
    return RayBudget(actor)


def _retry_after(response: Any) -> float:
    raw = response.headers.get("retry-after", "").strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        return NO_RETRY_AFTER_PAUSE_S


def _is_commit(request: Any) -> bool:
    return request.method == "POST" and "/commit/" in urlsplit(str(request.url)).path


_installed: dict[str, Any] = {}
_slots: dict[int, str] = {}
_slots_lock = threading.Lock()


def install(budget: Budget, sleep: Callable[[float], None] = time.sleep) -> None:
    """Make this process's huggingface_hub client obey ``budget``: every request waits out a pause, every commit
    waits for a slot, and a 429 pauses everyone for its ``Retry-After``. Idempotent per budget.

    Args:
        budget: The shared budget.
        sleep: How to wait (tests pass a fake clock's).
    """
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    if _installed.get("budget") is budget:
        return
    _installed["budget"] = budget

    def on_request(request: Any) -> None:
        if _is_commit(request):
            while True:
                slot_id, wait = budget.try_acquire()
                if slot_id is not None:
                    with _slots_lock:
                        _slots[id(request)] = slot_id
                    return
                sleep(min(wait, 5.0))
        while (wait := budget.paused_for()) > 0:
            sleep(min(wait, 5.0))

    def on_response(response: Any) -> None:
        with _slots_lock:
            slot_id = _slots.pop(id(response.request), None)
        if slot_id is not None:
            budget.release(slot_id)
        if response.status_code == 429:
            budget.pause(_retry_after(response))

    def factory() -> Any:
        client = default_client_factory()
        hooks = client.event_hooks
        client.event_hooks = {
            "request": [*hooks.get("request", []), on_request],
            "response": [*hooks.get("response", []), on_response],
        }
        return client

    set_client_factory(factory)
