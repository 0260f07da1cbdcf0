"""Quick mode: paste a Hub model id, get the verified safetensors / card fix proposed as a PR to that repo.

Like the safetensors-convert Space's one field, with every check hubui runs anyway:

1. **inspect** the repo on the configured Hub (``HF_ENDPOINT``): its library is the registry's answer on its config
   file (:func:`hubui.libraries.folder_format`); what it lacks is listed (:mod:`hubui.quick_inspect`): safetensors
   weights beside a pickle, a model card, the card's ``library_name`` / ``pipeline_tag``. A repo with nothing to
   fix, or with an open PR that already fixes it, gets no PR and a message saying so.
2. read its weights file the safe way (:func:`hubui.checkpoints.read_checkpoint`: safetensors, or a pickle of
   tensors only, ``weights_only=True``, with the size limits), then **load** the model from the Hub with the
   library's own loader (``ModelSpec(hf_hub_id=...)``), **convert** it with :func:`hubui.pipeline.iter_convert`
   (folder, rebuild with the library's loader, streamed parity) at the weights' own precision;
3. **push** the folder to the same repo as a pull request (``PushRequest(create_pr=True, readme_mode="merge")``:
   the existing README's text stays, its metadata and the parity section are added) and **verify** the PR's
   commit, downloaded again, against the original's outputs (:func:`hubui.pipeline.publish`).

The origin recorded for the weights is the Hub repo at the branch read (:mod:`hubui.provenance`); the PR's
description names the exact commit.
"""

from __future__ import annotations

import contextlib
import queue
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubui import auth
from hubui.errors import ExportError
from hubui.quick_inspect import RepoFacts, check_branch, check_weights, open_fix_pr, parse_repo_id, read_repo

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class QuickRequest:
    """Which repo to fix, and how.

    Args:
        repo_id: ``owner/name`` or ``hf-hub:owner/name``, optionally with ``@branch``.
        revision: The branch to read and to open the PR against (default main); not a tag or a commit.
        token: The token that opens the PR (a write token; the repo may be someone else's); otherwise
            ``HF_TOKEN`` or the login cache. Never printed, logged or written.
        work_dir: Where the converted folder is written (must not exist, or be empty); ``None``: a temporary
            folder, removed at the end.
        precision: The precision of the proposed weights; ``None``: the repo's own (fp32 unless its weights are
            all fp16 or all bf16).
    """

    repo_id: str
    revision: str | None = None
    token: str | None = field(default=None, repr=False)
    work_dir: Path | None = None
    precision: str | None = None


@dataclass(frozen=True)
class QuickResult:
    """What quick mode found and what it proposed.

    Args:
        repo_id: The repo.
        branch: The branch read, and the PR's base.
        commit: The commit read.
        library: The registered library whose loader read the repo.
        problems: What the repo lacked (empty: nothing to fix).
        proposed: Whether a PR proposes the fix now (a new one, or an open one with the same files).
        message: One paragraph for people: what was found, what was done.
        pr_url: The PR's page (also an open PR that already fixes the repo).
        pr_revision: ``refs/pr/N``.
        files: The files the PR adds or changes.
        parity_verdict: The conversion's parity verdict, when a conversion ran.
        verification: The PR commit's re-download check (``passed``, ``failed``, ``not completed``).
        existing_pr: The number of an open PR that already proposed this fix (no new PR was opened).
        origin: Where the proposed weights came from, for people.
    """

    repo_id: str
    branch: str
    commit: str
    library: str
    problems: tuple[str, ...]
    proposed: bool
    message: str
    pr_url: str | None = None
    pr_revision: str | None = None
    files: tuple[str, ...] = ()
    parity_verdict: str | None = None
    verification: str | None = None
    existing_pr: int | None = None
    origin: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing to fix, or a fix that is proposed, with parity and its verification passed."""
        if not self.problems:
            return True
        if self.existing_pr is not None and self.parity_verdict is None:
            return True  # an open PR already fixes it; nothing was converted this time
        return self.proposed and self.parity_verdict == "pass" and self.verification == "passed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (``hubui quick --json``)."""
        return {
            "repo_id": self.repo_id,
            "branch": self.branch,
            "commit": self.commit,
            "library": self.library,
            "problems": list(self.problems),
            "proposed": self.proposed,
            "message": self.message,
            "pr_url": self.pr_url,
            "pr_revision": self.pr_revision,
            "files": list(self.files),
            "parity_verdict": self.parity_verdict,
            "verification": self.verification,
            "existing_pr": self.existing_pr,
            "origin": self.origin,
        }

    def to_text(self) -> str:
        """The result for a terminal: the problems found, then what was proposed."""
        lines = [f"{self.repo_id}@{self.branch} ({self.library}, commit {self.commit[:10]})"]
        lines += [f"  - {p}" for p in self.problems] or ["  - nothing to fix"]
        if self.parity_verdict is not None:
            lines.append(
                f"parity: {self.parity_verdict}" + (f" · verification: {self.verification}" * bool(self.verification))
            )
        if self.files:
            lines.append("files proposed: " + ", ".join(self.files))
        lines.append(self.message)
        if self.pr_url:
            lines.append(f"pull request: {self.pr_url}")
        return "\n".join(lines)


@dataclass(frozen=True)
class QuickEvent:
    """One step of quick mode, for live display.

    Args:
        stage: ``inspect``, the conversion's stages (``load``, ``export``, ``reference``, ``rebuild``,
            ``parity``), ``push``, ``verify`` or ``done`` (last, with the result).
        message: A line for people.
        fraction: Progress of the whole run, 0 to 1.
        result: Only on ``done``.
    """

    stage: str
    message: str
    fraction: float
    result: QuickResult | None = None


def iter_quick(request: QuickRequest, cancel: threading.Event | None = None) -> Iterator[QuickEvent]:
    """Inspect the repo, and propose the verified fix as a PR when it needs one; an event after each step.

    Args:
        request: Which repo.
        cancel: Set it (from another thread) to stop the conversion's parity; nothing is then proposed.

    Yields:
        :class:`QuickEvent`; the last has ``stage == "done"`` and the :class:`QuickResult`.

    Raises:
        InvalidRepoIdError, InvalidRevisionError: A malformed repo id, a revision that is not a branch.
        NotLoggedInError, InvalidTokenError: No usable token (checked before anything is downloaded).
        ModelNotFoundError: No such (public) repo, or it has no weights.
        InvalidInputError: A private repo, or one no registered library loads.
        CheckpointError: The weights file is not a safe checkpoint; nothing is loaded or proposed.
        Everything :func:`hubui.pipeline.iter_convert` and :func:`hubui.pipeline.publish` raise.
    """
    from huggingface_hub import HfApi

    repo_id, branch = parse_repo_id(request.repo_id, request.revision)
    secret = auth.resolve_token(request.token)
    auth.whoami(secret)  # a bad token costs no download
    api = HfApi(endpoint=auth.endpoint(), token=secret)
    events: list[QuickEvent] = []

    def say(message: str) -> None:
        events.append(QuickEvent("inspect", message, 0.02))

    facts = read_repo(api, repo_id, check_branch(api, repo_id, branch), secret, say)
    yield from _drain(events)
    if not facts.problems:
        yield _done(facts, False, _fine_message(facts))
        return
    say("what needs fixing: " + "; ".join(facts.problems))
    found = open_fix_pr(api, facts, secret)
    yield from _drain(events)
    if found is not None:
        num, revision = found
        url = f"{auth.endpoint()}/{repo_id}/discussions/{num}"
        message = f"PR #{num} already proposes this fix ({url}); no second PR was opened."
        yield _done(facts, True, message, pr_url=url, pr_revision=revision, existing_pr=num)
        return
    precision = check_weights(api, facts, secret, say)
    yield from _drain(events)
    with contextlib.ExitStack() as stack:
        work = request.work_dir
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hubui-quick-")))
        yield from _convert_and_propose(facts, Path(work), request.precision or precision, secret, cancel)


def run_quick(
    request: QuickRequest, progress: ProgressFn | None = None, cancel: threading.Event | None = None
) -> QuickResult:
    """Run :func:`iter_quick` to the end.

    Args:
        request: Which repo.
        progress: Receives each event's message.
        cancel: See :func:`iter_quick`.

    Returns:
        The :class:`QuickResult` (check ``.proposed`` and ``.ok``; a failed parity is a result, not an error).

    Raises:
        Everything :func:`iter_quick` raises.
    """
    for event in iter_quick(request, cancel):
        if progress is not None:
            progress(event.message)
        if event.result is not None:
            return event.result
    raise ExportError("Quick mode ended without a result", "Report this as a hubui bug.")


def _convert_and_propose(
    facts: RepoFacts, work: Path, precision: str, token: str, cancel: threading.Event | None
) -> Iterator[QuickEvent]:
    from hubui.pipeline import ConvertOptions, iter_convert, publish
    from hubui.publishing import PushRequest
    from hubui.spec import ModelSpec

    hub_id = facts.repo_id if facts.branch == "main" else f"{facts.repo_id}@{facts.branch}"
    spec = ModelSpec(facts.library, facts.architecture, hf_hub_id=hub_id)
    converted = None
    for event in iter_convert(spec, ConvertOptions(work / "export", precision=precision), cancel=cancel):
        yield QuickEvent(event.stage if event.stage != "done" else "parity", event.message, 0.05 + 0.6 * event.fraction)
        converted = event.result or converted
    if converted is None:
        raise ExportError("The conversion ended without a result", "Report this as a hubui bug.")
    origin = _origin(converted)
    verdict = converted.report.verdict
    if verdict != "pass":
        message = f"Parity {verdict} for the {precision} conversion of {facts.repo_id}: nothing was proposed."
        yield _done(facts, False, message, parity_verdict=verdict, origin=origin)
        return
    request = PushRequest(
        folder=converted.export.folder,
        repo_id=facts.repo_id,
        branch=None if facts.branch == "main" else facts.branch,
        create_pr=True,
        readme_mode="merge",
        commit_message=_title(facts),
        commit_description=_description(facts, converted.report.to_dict(), origin),
    )
    yield QuickEvent("push", f"proposing the fix to {facts.repo_id} as a pull request against {facts.branch}", 0.68)
    published = yield from _live(
        lambda say, on_report: publish(
            request, token=token, source=f"hf-hub:{hub_id}", progress=say, on_report=on_report
        )
    )
    pushed = published.push
    status = published.verification.status if published.verification is not None else None
    files = tuple(f.path for f in pushed.files)
    if pushed.existing_pr is not None:
        message = f"PR #{pushed.existing_pr} already proposes these exact files; no second PR was opened."
    else:
        message = f"Proposed as a pull request: {', '.join(facts.problems)} fixed, parity {verdict}."
    if status != "passed":
        message += f" The PR's re-download check: {status}; review it before merging."
    yield _done(
        facts,
        True,
        message,
        pr_url=pushed.pr_url,
        pr_revision=pushed.revision,
        files=files,
        parity_verdict=verdict,
        verification=status,
        existing_pr=pushed.existing_pr,
        origin=origin,
    )


def _live(run: Callable[[ProgressFn, Callable[[Any], None]], Any]) -> Generator[QuickEvent, None, Any]:
    """Run the push (and its verification) in a thread, yielding its status lines as they come; its result.

    The push is one commit: a caller that stops listening does not stop it half-way, it finishes in the thread.
    """
    lines: queue.Queue[QuickEvent | None] = queue.Queue()
    outcome: dict[str, Any] = {}

    def say(message: str) -> None:
        stage = "verify" if message.startswith("verif") else "push"
        lines.put(QuickEvent(stage, message, 0.7 if stage == "push" else 0.85))

    def on_report(report: Any) -> None:
        done = report.batches_done / max(report.batches_total, 1)
        message = f"verification parity batch {report.batches_done}/{report.batches_total}"
        lines.put(QuickEvent("verify", message, 0.85 + 0.13 * done))

    def work() -> None:
        try:
            outcome["value"] = run(say, on_report)
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome["error"] = exc
        finally:
            lines.put(None)

    thread = threading.Thread(target=work, name="hubui-quick-push", daemon=True)
    thread.start()
    while (line := lines.get()) is not None:
        yield line
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _origin(converted: Any) -> str:
    """The weights' origin as :mod:`hubui.provenance` says it everywhere: the Hub repo at the branch read."""
    from hubui.provenance import weights_origin

    return weights_origin(converted.loaded.spec, converted.loaded).describe()


def _title(facts: RepoFacts) -> str:
    from hubui.libraries import get_format

    fmt = get_format(facts.format_name)
    weights = any(p.startswith("weights only") for p in facts.problems)
    card = any("card" in p for p in facts.problems)
    what = " and ".join(x for x in (f"Add {fmt.files.weights}" * weights, "model card metadata" * card) if x)
    return f"{what or 'Fix the model files'} (verified with hubui)"


def _description(facts: RepoFacts, parity: dict[str, Any], origin: str | None) -> str:
    worst = parity.get("max_abs_diff")
    lines = [
        "Proposed by hubui's quick mode.",
        "",
        f"What `{facts.repo_id}` at `{facts.branch}` (commit {facts.commit[:10]}) lacked:",
        *[f"- {p}" for p in facts.problems],
        "",
        f"The model was loaded from this repo with {facts.library}'s own loader"
        + (f" ({origin})" if origin else "")
        + ", written again, rebuilt from the new files with the library's loader and compared on the parity "
        f"inputs: verdict **{parity.get('verdict')}**"
        + (f", max abs diff {worst}" if worst is not None else "")
        + ". The existing README's text is kept; its metadata and the parity section are added.",
    ]
    return "\n".join(lines)


def _fine_message(facts: RepoFacts) -> str:
    from hubui.libraries import get_format
    from hubui.quick_inspect import CARD_KEYS

    fmt = get_format(facts.format_name)
    return (
        f"{facts.repo_id}@{facts.branch} already has {fmt.files.weights} and a model card with "
        f"{' and '.join(CARD_KEYS)}: nothing to fix, no PR was opened."
    )


def _done(facts: RepoFacts, proposed: bool, message: str, **kwargs: Any) -> QuickEvent:
    result = QuickResult(
        facts.repo_id, facts.branch, facts.commit, facts.library, facts.problems, proposed, message, **kwargs
    )
    return QuickEvent("done", message, 1.0, result)


def _drain(events: list[QuickEvent]) -> Iterator[QuickEvent]:
    while events:
        yield events.pop(0)


__all__ = ["QuickEvent", "QuickRequest", "QuickResult", "iter_quick", "run_quick"]
