"""Run a batch's entries in local worker processes (``concurrent.futures.ProcessPoolExecutor``).

Memory-aware admission: an entry is submitted only when its memory need fits beside the needs of the entries
already running (an entry larger than the whole budget runs alone). Workers are spawned, not forked (the driver
may hold threads), share the commit budget through a file (:class:`~hubui.batching.ratelimit.FileBudget`), send
their live events through a queue, and die with the driver (a killed run leaves nothing committing behind it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue as queue_module
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from hubui.batching.ratelimit import FileBudget, install
from hubui.batching.report import EntryResult
from hubui.batching.worker import EntryJob, die_with_parent, run_entry

_QUEUE: Any = None
POLL_S = 0.25  # how often the driver redraws live lines while it waits for results
MAX_POOL_BREAKS = 2  # an entry running when a worker died this many times is reported as failed


def _init(events: Any, budget: FileBudget) -> None:
    global _QUEUE
    die_with_parent()
    _QUEUE = events
    install(budget)


def _emit(event: tuple[Any, ...]) -> None:
    with contextlib.suppress(Exception):  # a live line is never worth failing an entry for
        _QUEUE.put_nowait(event)


def _task(job: EntryJob) -> EntryResult:
    return run_entry(job, _emit)


def run_local(
    jobs: list[EntryJob],
    needs: list[int],
    workers: int,
    memory_budget: int,
    budget: FileBudget,
    on_event: Callable[[tuple[Any, ...]], None],
    on_result: Callable[[EntryResult], None],
) -> list[EntryResult]:
    """Run ``jobs`` with at most ``workers`` at once and at most ``memory_budget`` bytes of needs at once.

    Args:
        jobs: The entries.
        needs: Each job's memory need in bytes (same order).
        workers: Processes.
        memory_budget: Bytes the running entries' needs may add up to.
        budget: The shared commit budget.
        on_event: Receives live events ``(index, repo_id, stage, message, fraction)``.
        on_result: Receives each result as it arrives.

    Returns:
        The results, in the order of ``jobs``.
    """
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    results: dict[int, EntryResult] = {}
    pending = list(range(len(jobs)))
    breaks = [0] * len(jobs)
    while pending:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=(events, budget))
        try:
            pending = _drive(
                pool, jobs, needs, workers, memory_budget, pending, breaks, results, events, on_event, on_result
            )
        finally:
            _stop(pool)
    _drain(events, on_event)
    return [results[i] for i in range(len(jobs))]


def admit(pending: list[int], running: list[int], needs: list[int], workers: int, memory_budget: int) -> list[int]:
    """Which pending entries to start now, in order: each must fit beside those running and those admitted before
    it (a later, smaller entry may pass one that does not fit yet), at most ``workers`` in all. An entry larger than
    the whole budget starts only when nothing else runs.

    Args:
        pending: Entry numbers waiting, in manifest order.
        running: The memory needs of the entries running now.
        needs: Every entry's need, by entry number.
        workers: Entries at once.
        memory_budget: Bytes the running entries' needs may add up to.
    """
    started: list[int] = []
    used, count = sum(running), len(running)
    for i in pending:
        if count >= workers:
            break
        if count and used + needs[i] > memory_budget:
            continue
        started.append(i)
        used, count = used + needs[i], count + 1
    return started


def _drive(
    pool: ProcessPoolExecutor,
    jobs: list[EntryJob],
    needs: list[int],
    workers: int,
    memory_budget: int,
    pending: list[int],
    breaks: list[int],
    results: dict[int, EntryResult],
    events: Any,
    on_event: Callable[[tuple[Any, ...]], None],
    on_result: Callable[[EntryResult], None],
) -> list[int]:
    """Submit what fits, collect what finishes; returns the entries still to run after the pool broke."""
    running: dict[Future[EntryResult], int] = {}
    while pending or running:
        for i in admit(pending, [needs[j] for j in running.values()], needs, workers, memory_budget):
            running[pool.submit(_task, jobs[i])] = i
            pending.remove(i)
        done, _ = wait(list(running), timeout=POLL_S, return_when=FIRST_COMPLETED)
        _drain(events, on_event)
        for future in done:
            i = running.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool:
                # A worker died (killed, out of memory): the pool stops every worker. What was running goes
                # again in a new pool (the skip check makes that safe), unless it was there twice.
                lost = [i, *running.values()]
                for j in lost:
                    breaks[j] += 1
                    if breaks[j] >= MAX_POOL_BREAKS:
                        results[j] = _died(jobs[j])
                        on_result(results[j])
                    else:
                        pending.insert(0, j)
                return sorted(set(pending), key=pending.index)
            results[i] = result
            on_result(result)
    return []


def _died(job: EntryJob) -> EntryResult:
    return EntryResult(
        job.entry.index,
        job.entry.repo_id,
        "failed",
        error="WorkerDied: the worker process running this entry was killed (out of memory?)",
        hint="Run the batch again with fewer --workers, or on a machine with more memory.",
        fingerprint=job.fingerprint,
    )


def _drain(events: Any, on_event: Callable[[tuple[Any, ...]], None]) -> None:
    while True:
        try:
            event = events.get_nowait()
        except (queue_module.Empty, OSError, ValueError):
            return
        on_event(event)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now, also when the driver is being interrupted: no worker may outlive the batch."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public way before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        with contextlib.suppress(Exception):
            if proc.is_alive():
                proc.terminate()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
