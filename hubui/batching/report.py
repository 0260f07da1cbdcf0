"""A batch's results: one :class:`EntryResult` per entry, the :class:`BatchReport`, its JSON and Markdown, and
the live display (a line per running entry and an overall bar, with tqdm on a terminal, plain lines otherwise).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from hubui.progress import OVERLAPPING

Verdict = Literal["verified", "skipped", "failed", "planned"]


@dataclass(frozen=True)
class EntryResult:
    """What happened to one entry.

    Args:
        index: The entry's position in the manifest.
        repo_id: Its repo.
        verdict: ``verified`` (pushed and re-downloaded, parity passed), ``skipped`` (the repo already held it),
            ``failed`` (see ``error``), or ``planned`` (``--dry-run``).
        revision: Where the commit is: the branch or ``refs/pr/N``.
        parity: The conversion's parity verdict, when it ran.
        max_abs_diff: The largest max-abs-diff over the outputs of the conversion's parity.
        commit: The commit holding the entry (the new one, or the one found when skipped).
        commit_url: Its page.
        pr_url: The pull request, for ``create_pr``.
        seconds: Wall time of the entry in its worker.
        peak_memory_bytes: The worker's peak resident memory while it ran this entry.
        error: ``ErrorClass: message`` when it failed.
        hint: What to do about it.
        detail: A sentence: why it was skipped, the verification's detail, or the planned action's reason.
        files: The compared files (``path -> sha256, git_sha1, size``), for the journal.
        fingerprint: The entry's fingerprint, for the journal.
    """

    index: int
    repo_id: str
    verdict: Verdict
    revision: str | None = None
    parity: str | None = None
    max_abs_diff: float | None = None
    commit: str | None = None
    commit_url: str | None = None
    pr_url: str | None = None
    seconds: float = 0.0
    peak_memory_bytes: int | None = None
    error: str | None = None
    hint: str | None = None
    detail: str = ""
    files: dict[str, Any] = field(default_factory=dict, repr=False)
    fingerprint: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("files")
        data.pop("fingerprint")
        return data


@dataclass(frozen=True)
class BatchReport:
    """A finished batch.

    Args:
        entries: One result per manifest entry, in manifest order.
        runner: ``local`` or ``ray``.
        workers: How many entries could run at once.
        seconds: Wall time of the whole batch.
        dry_run: Whether it was a plan only.
        commit_budget: The shared budget, e.g. ``100/3600s``.
    """

    entries: tuple[EntryResult, ...]
    runner: str
    workers: int
    seconds: float
    dry_run: bool = False
    commit_budget: str = ""

    @property
    def exit_code(self) -> int:
        """0 when every entry is verified, skipped (or planned), 1 when any failed."""
        return 1 if any(e.verdict == "failed" for e in self.entries) else 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            out[e.verdict] = out.get(e.verdict, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "counts": self.counts(),
            "runner": self.runner,
            "workers": self.workers,
            "seconds": round(self.seconds, 2),
            "dry_run": self.dry_run,
            "commit_budget": self.commit_budget,
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_markdown(self) -> str:
        """A Markdown table per entry: verdict, max abs diff, repo and commit, time, peak memory, error and hint."""
        c = self.counts()
        head = ", ".join(f"{n} {v}" for v, n in sorted(c.items()))
        lines = [
            f"# hubui batch: {head}",
            "",
            f"{len(self.entries)} entries, {self.runner} runner, {self.workers} workers, {self.seconds:.1f} s"
            + (f", commit budget {self.commit_budget}" if self.commit_budget else "")
            + (" (dry run: nothing uploaded)" if self.dry_run else ""),
            "",
            "| # | repo | verdict | max abs diff | commit | time s | peak memory MB | error / detail |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for e in self.entries:
            lines.append(
                "| "
                + " | ".join(
                    [
                        str(e.index),
                        e.repo_id,
                        e.verdict,
                        _diff(e.max_abs_diff),
                        _commit_cell(e, markdown=True),
                        f"{e.seconds:.1f}",
                        _mb(e.peak_memory_bytes),
                        _md_escape(_problem(e)),
                    ]
                )
                + " |"
            )
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        """The final table for a terminal."""
        rows = [["#", "repo", "verdict", "max abs diff", "commit", "time s", "peak MB", "error / detail"]]
        for e in self.entries:
            rows.append(
                [
                    str(e.index),
                    e.repo_id,
                    e.verdict,
                    _diff(e.max_abs_diff),
                    _commit_cell(e),
                    f"{e.seconds:.1f}",
                    _mb(e.peak_memory_bytes),
                    _problem(e),
                ]
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        out = ["  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1] for r in rows]
        counts = ", ".join(f"{n} {v}" for v, n in sorted(self.counts().items()))
        out.append(
            f"{len(self.entries)} entries: {counts} in {self.seconds:.1f} s ({self.runner}, {self.workers} workers)"
        )
        return "\n".join(out)

    def write(self, path: str | Path) -> Path:
        """Write the report: Markdown for ``.md``, JSON otherwise. Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".md":
            path.write_text(self.to_markdown(), encoding="utf-8")
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return path


def _diff(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


def _mb(value: int | None) -> str:
    return "" if value is None else f"{value / 2**20:.0f}"


def _commit_cell(e: EntryResult, markdown: bool = False) -> str:
    if not e.commit:
        return ""
    short = e.commit[:10] + (f" ({e.revision})" if e.revision and e.revision != "main" else "")
    url = e.pr_url or e.commit_url
    return f"[{short}]({url})" if markdown and url else short


def _problem(e: EntryResult) -> str:
    if e.error:
        return e.error + (f" (hint: {e.hint})" if e.hint else "")
    return e.detail


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class LiveDisplay:
    """A live line per running entry and an overall progress bar.

    On a terminal the lines are tqdm bars (one per running entry, redrawn in place); otherwise each change of
    stage is printed once as ``[batch] #i repo: message`` (stages that run side by side: only the first time),
    which logs and tests can read.

    Args:
        total: Number of entries.
        stream: Where to write (stderr by default).
        tty: Force the terminal mode on or off (default: ``stream.isatty()``).
    """

    def __init__(self, total: int, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.total = total
        self.done = 0
        self.bars: dict[int, Any] = {}
        self.stages: dict[int, list[str]] = {}
        self.started = time.monotonic()
        self.overall: Any = None
        if self.tty:
            from tqdm import tqdm

            self.overall = tqdm(total=total, desc="batch", unit="model", file=self.stream, position=0)

    def event(self, index: int, repo_id: str, stage: str, message: str, fraction: float | None = None) -> None:
        """A running entry's news (``stage`` is e.g. ``load``, ``parity``, ``push``, ``verify``)."""
        if self.tty:
            from tqdm import tqdm

            bar = self.bars.get(index)
            if bar is None:
                bar = tqdm(total=100, file=self.stream, position=len(self.bars) + 1, leave=False, bar_format="{desc}")
                self.bars[index] = bar
            bar.set_description_str(f"#{index} {repo_id}: {message}"[:120])
            return
        seen = self.stages.setdefault(index, [])
        # Stages that run side by side (export, reference) alternate: each is printed once.
        beside = any(stage in pair for pair in OVERLAPPING) and stage in seen
        if (not seen or seen[-1] != stage) and not beside:
            self._line(f"#{index} {repo_id}: {message}")
        if not seen or seen[-1] != stage:
            seen.append(stage)

    def finished(self, result: EntryResult) -> None:
        """An entry is done (verified, skipped or failed)."""
        self.done += 1
        bar = self.bars.pop(result.index, None)
        if bar is not None:
            bar.close()
        what: str = result.verdict
        if result.commit:
            what += f" ({result.commit[:10]})"
        if result.error:
            what += f": {result.error}"
        line = f"#{result.index} {result.repo_id}: {what}  [{self.done}/{self.total}]"
        if self.overall is not None:
            self.overall.write(f"[batch] {line}", file=self.stream)
            self.overall.update(1)
        else:
            self._line(line)

    def note(self, text: str) -> None:
        """A warning line that is not about one entry's progress."""
        if self.overall is not None:
            self.overall.write(f"[batch] warning: {text}", file=self.stream)
        else:
            self._line(f"warning: {text}")

    def _line(self, text: str) -> None:
        self.stream.write(f"[batch] {text}\n")
        self.stream.flush()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
        if self.overall is not None:
            self.overall.close()
