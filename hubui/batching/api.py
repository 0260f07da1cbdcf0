"""``hubui.batch(manifest, ...)``: check the manifest, plan, run every entry, journal and report."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from hubui.batching.manifest import BatchEntry, Manifest, load_manifest
from hubui.batching.memory import available_bytes, default_workers, entry_need, weights_bytes
from hubui.batching.plan import Journal, default_journal, differences, dry_plan, hub_state, record_revision
from hubui.batching.ratelimit import DEFAULT_BUDGET, CommitBudget, FileBudget
from hubui.batching.report import BatchReport, EntryResult, LiveDisplay
from hubui.batching.worker import EntryJob
from hubui.errors import HubUIError, InvalidInputError


def batch(
    manifest: str | Path | Manifest,
    *,
    workers: int | None = None,
    ray: str | bool | None = None,
    dry_run: bool = False,
    commit_budget: str | CommitBudget = DEFAULT_BUDGET,
    journal: str | Path | None = None,
    token: str | None = None,
    memory_budget: int | None = None,
    report: str | Path | list[str | Path] | None = None,
    stream: TextIO | None = None,
    on_result: Callable[[EntryResult], None] | None = None,
) -> BatchReport:
    """Convert, check, push and verify every model of a manifest; skip what the Hub already holds.

    Args:
        manifest: A manifest file (YAML/JSON) or a :class:`Manifest` from :func:`load_manifest`.
        workers: Entries at once; default: what memory and cores allow (:func:`hubui.batching.memory.default_workers`).
        ray: Run on Ray: ``True`` (``ray.init()``'s default cluster) or a cluster address. ``None``: local processes.
        dry_run: Print and return the plan per entry (skip / convert + push); upload nothing.
        commit_budget: Commits allowed per period for all workers together, e.g. ``"100/h"`` (default), ``"2/10s"``.
        journal: The record of verified entries that makes re-runs cheap (default: beside the manifest).
        token: The token to push with; otherwise ``HF_TOKEN`` or the login cache.
        memory_budget: Bytes the running entries' needs may add up to locally (default: 80% of available memory).
        report: Files to write the report to: ``.md`` for Markdown, anything else JSON.
        stream: Where the live lines go (default stderr).
        on_result: Receives each entry's result as it finishes.

    Returns:
        The :class:`BatchReport`; ``exit_code`` is 0 when every entry is verified or skipped, 1 when any failed.

    Raises:
        ManifestError: The manifest is invalid (nothing ran).
        InvalidInputError: A bad option (workers, budget).
        NotLoggedInError, InvalidTokenError: No usable token (nothing ran).
    """
    from hubui import auth

    started = time.monotonic()
    loaded = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    budget = commit_budget if isinstance(commit_budget, CommitBudget) else CommitBudget.parse(commit_budget)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidInputError(f"workers must be a positive integer, not {workers!r}", "E.g. workers=2.")
    secret = auth.resolve_token(token)
    auth.whoami(secret)  # a missing or invalid token stops the batch before any work, not once per entry
    entries = loaded.entries
    journal_file = Journal(journal if journal is not None else default_journal(loaded.path))
    records = journal_file.records()
    fingerprints = [e.fingerprint() for e in entries]
    display = LiveDisplay(len(entries), stream)
    runner = "ray" if ray not in (None, False) else "local"

    def finished(result: EntryResult) -> None:
        display.finished(result)
        prev = records.get(result.fingerprint) or {}
        same = prev.get("files") == result.files and prev.get("commit") == result.commit
        if result.verdict in ("verified", "skipped") and result.files and not same:
            try:
                journal_file.add(_record(entries[result.index], result))
            except OSError as exc:  # the batch goes on: a re-run then compares by converting instead
                display.note(f"cannot write the journal {journal_file.path}: {exc}")
        if on_result is not None:
            on_result(result)

    try:
        if dry_run:
            results = [_plan(e, records.get(f), secret, display) for e, f in zip(entries, fingerprints, strict=True)]
            return _report(results, runner, workers or 1, started, budget, True, report)
        needs = [entry_need(weights_bytes(e, secret)) for e in entries]
        mem = memory_budget if memory_budget is not None else available_bytes()
        count = workers or default_workers(needs, mem)
        from hubui.card import load_card_file

        jobs = [
            EntryJob(
                e,
                fields=load_card_file(e.card) if e.card else None,
                token=secret,
                record=records.get(f),
                threads=max(1, (os.cpu_count() or 1) // count) if runner == "local" else 1,  # Ray: num_cpus=1
                fingerprint=f,
            )
            for e, f in zip(entries, fingerprints, strict=True)
        ]

        # Entries the journal says are done are checked here, against the Hub's listing only: a finished
        # batch run again starts no worker and converts nothing.
        done = _journal_skips(jobs, secret)
        for result in done.values():
            finished(result)
        todo = [j for j in jobs if j.entry.index not in done]
        needs = [needs[j.entry.index] for j in todo]

        def event(ev: tuple[Any, ...]) -> None:
            display.event(*ev)

        if runner == "ray":
            from hubui.batching.runner_ray import run_ray

            address = ray if isinstance(ray, str) and ray.strip() else None
            ran = run_ray(todo, needs, address, count, budget, event, finished) if todo else []
        else:
            from hubui.batching.runner_local import run_local

            with tempfile.TemporaryDirectory(prefix="hubui-budget-") as tmp:
                file_budget = FileBudget(Path(tmp) / "budget.json", budget)
                ran = run_local(todo, needs, count, mem, file_budget, event, finished) if todo else []
        results = sorted([*done.values(), *ran], key=lambda r: r.index)
        return _report(results, runner, count, started, budget, False, report)
    finally:
        display.close()


def _journal_skips(jobs: list[EntryJob], token: str) -> dict[int, EntryResult]:
    from concurrent.futures import ThreadPoolExecutor

    def check(job: EntryJob) -> EntryResult | None:
        record = job.record
        if record is None:
            return None
        t0 = time.monotonic()
        try:
            state = hub_state(job.entry.repo_id, record_revision(job.entry, record), token)
        except Exception:  # the Hub did not answer: the worker checks again, and reports what fails
            return None
        if differences(record["files"], state):
            return None
        return EntryResult(
            job.entry.index,
            job.entry.repo_id,
            "skipped",
            revision=record.get("revision"),
            parity="pass",
            commit=state.head,
            seconds=time.monotonic() - t0,
            detail="the repo holds this entry's files (journal) with parity pass; nothing converted",
            files=record["files"],
            fingerprint=job.fingerprint,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(check, jobs))
    return {r.index: r for r in found if r is not None}


def _plan(entry: BatchEntry, record: dict[str, Any] | None, token: str, display: LiveDisplay) -> EntryResult:
    t0 = time.monotonic()
    try:
        action, reason = dry_plan(entry, record, token)
    except HubUIError as exc:
        result = EntryResult(
            entry.index, entry.repo_id, "failed", error=f"{type(exc).__name__}: {exc.message}", hint=exc.hint
        )
    except Exception as exc:  # the Hub failed for this entry: say so, plan the others
        result = EntryResult(entry.index, entry.repo_id, "failed", error=f"{type(exc).__name__}: {exc}")
    else:
        result = EntryResult(
            entry.index, entry.repo_id, "planned", detail=f"{action}: {reason}", seconds=time.monotonic() - t0
        )
    display.finished(result)
    return result


def _record(entry: BatchEntry, result: EntryResult) -> dict[str, Any]:
    return {
        "fingerprint": result.fingerprint,
        "repo_id": entry.repo_id,
        "revision": result.revision,
        "commit": result.commit,
        "files": result.files,
        "verdict": result.verdict,
        "time": time.time(),
    }


def _report(
    results: list[EntryResult],
    runner: str,
    workers: int,
    started: float,
    budget: CommitBudget,
    dry: bool,
    report: str | Path | list[str | Path] | None,
) -> BatchReport:
    out = BatchReport(tuple(results), runner, workers, time.monotonic() - started, dry, str(budget))
    targets = [] if report is None else (report if isinstance(report, list) else [report])
    for path in targets:
        out.write(path)
    return out
