"""One entry's whole verified flow, as a worker runs it: skip check, convert, parity, card, push, verify.

Both runners call :func:`run_entry`; it never raises for the entry's own failures (they are the result), so
one entry's failure never stops the others.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.batching.manifest import BatchEntry
from hubui.batching.plan import adopt_hub_headers, differences, folder_digests, hub_state, record_revision
from hubui.batching.report import EntryResult
from hubui.errors import HubUIError

if TYPE_CHECKING:
    from hubui.card import CardFields

# (index, repo_id, stage, message, fraction)
Emit = Callable[[tuple[int, str, str, str, float | None]], None]


@dataclass(frozen=True)
class EntryJob:
    """What a worker needs for one entry (picklable: it crosses into worker processes and Ray tasks).

    Args:
        entry: The manifest entry.
        fields: Its card fields, read on the driver (so a Ray node needs no copy of the card file).
        token: The token to push with (never printed, logged or written).
        record: The journal's record for the entry's fingerprint, if any.
        threads: torch threads for this entry (cores / workers), or None to leave torch's default.
        fingerprint: :meth:`BatchEntry.fingerprint`, computed on the driver (which has the files).
    """

    entry: BatchEntry
    fields: CardFields | None = None
    token: str | None = field(default=None, repr=False)
    record: dict[str, Any] | None = None
    threads: int | None = None
    fingerprint: str = ""


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent dies, so a killed ``hubui batch`` leaves no worker
    committing behind it (a resumed run would race it)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_entry(job: EntryJob, emit: Emit) -> EntryResult:
    """Run one entry to its verdict.

    Args:
        job: The entry and what comes with it.
        emit: Receives ``(index, repo_id, stage, message, fraction)`` live events.

    Returns:
        The :class:`EntryResult`: ``verified``, ``skipped`` or ``failed`` (with the error and its hint).
    """
    entry = job.entry
    started = time.monotonic()
    _reset_peak()
    base: dict[str, Any] = {"index": entry.index, "repo_id": entry.repo_id, "fingerprint": job.fingerprint}

    def say(stage: str, message: str, fraction: float | None = None) -> None:
        emit((entry.index, entry.repo_id, stage, message, fraction))

    def done(**kwargs: Any) -> EntryResult:
        return EntryResult(**base, seconds=time.monotonic() - started, peak_memory_bytes=_peak_bytes(), **kwargs)

    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # one live line per entry, not the client's bars interleaved from every worker
        if job.threads:
            import torch

            torch.set_num_threads(job.threads)
        return _run(job, say, done, base)
    except HubUIError as exc:
        return done(verdict="failed", error=f"{type(exc).__name__}: {exc.message}", hint=exc.hint)
    except Exception as exc:  # one entry's unexpected failure is its result; the batch goes on
        return done(
            verdict="failed",
            error=f"{type(exc).__name__}: {exc}",
            hint="An unexpected error; run this model alone with `hubui push` to see the traceback, and report it.",
        )


def _run(
    job: EntryJob, say: Callable[..., None], done: Callable[..., EntryResult], base: dict[str, Any]
) -> EntryResult:
    from hubui.pipeline import ConvertOptions, iter_convert, publish
    from hubui.publishing import PushRequest

    entry, token = job.entry, job.token
    if job.record is not None:
        say("check", "checking the repo against the journal")
        where = hub_state(entry.repo_id, record_revision(entry, job.record), token)
        if not differences(job.record["files"], where):
            base["files"] = job.record["files"]
            return done(
                verdict="skipped",
                revision=job.record.get("revision"),
                commit=where.head,
                parity="pass",
                detail="the repo holds this entry's files (journal) with parity pass; nothing converted",
            )
    with tempfile.TemporaryDirectory(prefix="hubui-batch-") as tmp:
        folder = Path(tmp) / "export"
        options = ConvertOptions(out_dir=folder, precision=entry.precision, target=entry.target)
        result = None
        for event in iter_convert(entry.spec(), options):
            say(event.stage, event.message, event.fraction * 0.6)
            result = event.result or result
        if result is None:
            raise RuntimeError("the conversion ended without a result")
        report = result.report
        max_diff = max((o.max_abs_diff for o in report.outputs), default=None)
        if not result.passed:
            return done(
                verdict="failed",
                parity=report.verdict,
                max_abs_diff=max_diff,
                error=f"ParityFailedError: parity {report.verdict} for the {entry.precision} export",
                hint="Nothing was pushed. Run `hubui convert` on this model to see which outputs differ.",
            )
        from hubui.export import hub_config_override

        files = folder_digests(folder, hub_config_override(folder, entry.repo_id, False))
        base["files"] = files
        # Read after converting, not before: what landed meanwhile (a killed run's last commit) counts.
        say("check", "comparing the export with the repo")
        found = [hub_state(entry.repo_id, entry.revision, token)]
        if entry.create_pr and job.record is not None:
            found.append(hub_state(entry.repo_id, record_revision(entry, job.record), token))
        for where in found:
            same = adopt_hub_headers(files, folder, where, entry.repo_id, token)
            if not differences(same, where):
                base["files"] = same
                return done(
                    verdict="skipped",
                    parity=report.verdict,
                    max_abs_diff=max_diff,
                    commit=where.head,
                    revision=entry.revision or "main",
                    detail="the repo already holds these exact files with parity pass; no commit",
                )
        say("push", f"pushing to {entry.repo_id}", 0.65)
        fields = job.fields
        request = PushRequest(
            folder,
            entry.repo_id,
            private=entry.private,
            branch=entry.revision,
            create_pr=entry.create_pr,
            allow_random_weights=entry.allow_random_weights,
        )
        published = publish(
            request,
            fields,
            token=token,
            original=result.loaded,
            progress=lambda m: say("push" if "verif" not in m else "verify", m, None),
        )
    push, verification = published.push, published.verification
    status = verification.status if verification is not None else "not completed"
    common = {
        "parity": report.verdict,
        "max_abs_diff": max_diff,
        "commit": push.commit_oid,
        "commit_url": push.commit_url,
        "pr_url": push.pr_url,
        "revision": push.revision,
        "detail": verification.detail if verification is not None else "",
    }
    if status == "passed":
        return done(verdict="verified", **common)
    hint = (
        "The push landed but could not be checked; run the batch again (it re-checks, no new commit) "
        "or check the model yourself."
        if status == "not completed"
        else "The pushed model does not reproduce the original; check the repo before anyone uses it."
    )
    return done(verdict="failed", error=f"verification {status}", hint=hint, **common)
