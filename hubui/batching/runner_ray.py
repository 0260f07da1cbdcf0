"""Run a batch's entries as Ray tasks (``pip install 'hubui[ray]'``).

Each entry is one task with ``num_cpus`` and ``memory`` resources, so Ray places a large model on a node where
it fits and runs no more there at once than fit. The commit budget and the live events are one Ray actor
(:func:`hubui.batching.ratelimit.ray_budget`) shared by every task. The driver submits at most ``workers``
tasks at a time.

The workers need hubui installed (the same version as the driver) and, for entries with a ``checkpoint``, that
file at the same path (a shared file system). Card files are read on the driver. The token travels as a task
argument, never through the environment or the runtime env (which Ray shows in its dashboard).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hubui.batching.ratelimit import CommitBudget, RayBudget, install, ray_budget
from hubui.batching.report import EntryResult
from hubui.batching.worker import EntryJob
from hubui.errors import InvalidInputError

POLL_S = 0.25
# Sent to the workers through Ray's runtime env: where the Hub is and how to reach it. Never a token.
FORWARDED_ENV = (
    "HF_ENDPOINT", "HF_HUB_DISABLE_XET", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_DISABLE_TELEMETRY",
    "HF_HUB_DISABLE_PROGRESS_BARS", "HUBUI_HTTP_RETRIES", "HUBUI_HTTP_BACKOFF", "TORCH_HOME",
)  # fmt: skip


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise InvalidInputError(
            "--ray needs Ray, which is not installed", "Install it with: pip install 'hubui[ray]'"
        ) from exc
    return ray


def _ray_task(job: EntryJob, budget: RayBudget) -> EntryResult:
    from hubui.batching.worker import run_entry

    install(budget)
    return run_entry(job, budget.emit)


def run_ray(
    jobs: list[EntryJob],
    needs: list[int],
    address: str | None,
    workers: int,
    commit_budget: CommitBudget,
    on_event: Callable[[tuple[Any, ...]], None],
    on_result: Callable[[EntryResult], None],
    cpus_per_entry: float = 1.0,
) -> list[EntryResult]:
    """Run ``jobs`` on the Ray cluster at ``address`` (``None``: ``RAY_ADDRESS``, a running local cluster, or a new
    local one, as ``ray.init`` decides).

    Args:
        jobs: The entries.
        needs: Each job's memory need in bytes, given to Ray as the task's ``memory`` resource.
        address: The cluster.
        workers: Tasks in flight at once.
        commit_budget: The shared commit budget.
        on_event: Receives live events.
        on_result: Receives each result as it arrives.
        cpus_per_entry: Each task's ``num_cpus``.

    Returns:
        The results, in the order of ``jobs``.
    """
    ray = _ray()
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    ray.init(address=address or None, runtime_env={"env_vars": env}, log_to_driver=False, logging_level="ERROR")
    try:
        budget = ray_budget(commit_budget)
        largest = max(
            (float(n.get("Resources", {}).get("memory", 0)) for n in ray.nodes() if n.get("Alive")), default=0
        )
        task = ray.remote(_ray_task)
        results: dict[int, EntryResult] = {}
        pending = list(range(len(jobs)))
        running: dict[Any, int] = {}
        while pending or running:
            while pending and len(running) < workers:
                i = pending.pop(0)
                # A need above every node's memory would wait forever as "infeasible": ask for the largest node.
                memory = int(min(needs[i], largest)) if largest else needs[i]
                ref = task.options(num_cpus=cpus_per_entry, memory=memory, max_retries=0).remote(jobs[i], budget)
                running[ref] = i
            ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            for event in ray.get(budget.actor.drain.remote()):
                on_event(event)
            for ref in ready:
                i = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the task's worker died (OOM killer, node lost)
                    result = EntryResult(
                        jobs[i].entry.index,
                        jobs[i].entry.repo_id,
                        "failed",
                        error=f"WorkerDied: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                        hint="Run the batch again: what landed is skipped. Give the nodes more memory if it repeats.",
                        fingerprint=jobs[i].fingerprint,
                    )
                results[i] = result
                on_result(result)
        for event in ray.get(budget.actor.drain.remote()):
            on_event(event)
        return [results[i] for i in range(len(jobs))]
    finally:
        ray.shutdown()
