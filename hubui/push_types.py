"""What a push is asked to do and what it answers: :class:`PushRequest`, :class:`PushPlan` (the dry run),
:class:`PushResult` and :class:`Verification` (the re-download check). :mod:`hubui.publishing` re-exports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hubui.push_files import PlannedFile

ProgressFn = Callable[[str], None]
ReadmeMode = Literal["keep", "replace", "merge"]


@dataclass(frozen=True)
class PushRequest:
    """Where and how to push an exported folder.

    Args:
        folder: The folder ``export_model`` wrote (config, weights, ``parity.json``).
        repo_id: ``namespace/name``; the namespace is the user or one of their orgs.
        private: Create the repo private. An existing repo's visibility is never changed.
        branch: Target branch (created from main if missing); ``None`` for main.
        create_pr: Open a pull request against ``branch`` (or main) instead of committing to it.
        commit_message: The commit summary.
        commit_description: The commit body.
        readme_mode: What to do with a README already in the repo: ``keep`` (default), ``replace``
            or ``merge`` (keep its text, update its metadata and the parity section).
        allow_failed_parity: Push even though parity failed. The card must then say so.
        hf_tokenizer_self: A format with a Hugging Face tokenizer: the pushed config names this repo as the
            tokenizer's source (like open_clip's ``--hf-tokenizer-self``); the folder is unchanged.
            See :func:`hubui.export.hub_config_override`.
        tag: A tag to put on the pushed commit (``v1``). It must not exist yet (checked before any upload);
            :func:`hubui.pipeline.publish` creates it once verification passed. Not with ``create_pr``.
        allow_random_weights: Push a folder whose ``parity.json`` says its weights are random (not a trained
            model; see :mod:`hubui.provenance`). Without it such a push (and its dry run) is refused with
            :class:`~hubui.errors.RandomWeightsError`; with it, the card still says the weights are random.
    """

    folder: Path
    repo_id: str
    private: bool = False
    branch: str | None = None
    create_pr: bool = False
    commit_message: str = "Upload model with hubui"
    commit_description: str = ""
    readme_mode: ReadmeMode = "keep"
    allow_failed_parity: bool = False
    hf_tokenizer_self: bool = False
    tag: str | None = None
    allow_random_weights: bool = False


@dataclass(frozen=True)
class PushPlan:
    """What a push would do; the dry run's answer. Nothing was uploaded to build it.

    Args:
        repo_id: The target repo.
        user: Who the token belongs to.
        repo_exists: Whether the repo is already there.
        target: ``"main"``, ``"branch <name>"`` or ``"pull request against <base>"``.
        files: The exact files and sizes to commit, README included when one is uploaded.
        readme_action: ``"new"``, ``"keep existing"``, ``"replace"`` or ``"merge"``.
        readme_diff: Unified diff from the existing README to the uploaded one ('' if unchanged).
        parity_verdict: The verdict in the folder's ``parity.json``.
        readme_text: The README that would be uploaded, or ``None``.
        weights_origin: Where the folder's weights came from, in one line
            (:meth:`hubui.provenance.WeightsOrigin.describe`); ``None`` when its ``parity.json`` does not say.
        warnings: What the repo's card will lack for its readers (no licence...), one line each; they do not stop
            the push (:func:`hubui.card_lint.card_warnings`).
    """

    repo_id: str
    user: str
    repo_exists: bool
    target: str
    files: tuple[PlannedFile, ...]
    readme_action: str
    readme_diff: str
    parity_verdict: str | None
    readme_text: str | None = field(default=None, repr=False)
    weights_origin: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "user": self.user,
            "repo_exists": self.repo_exists,
            "target": self.target,
            "files": [{"path": f.path, "size": f.size} for f in self.files],
            "total_bytes": self.total_bytes,
            "readme_action": self.readme_action,
            "readme_diff": self.readme_diff,
            "parity_verdict": self.parity_verdict,
            "weights_origin": self.weights_origin,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class PushResult:
    """Where a push landed.

    Args:
        repo_id: The repo.
        repo_url: Its page.
        commit_oid: The new commit.
        commit_url: The commit's page.
        revision: The revision holding the commit (``main``, the branch, or ``refs/pr/N``).
        pr_url: The pull request's page, for PR pushes.
        files: What was committed.
        changed: ``False`` when every file was already there unchanged: the Hub then makes no commit
            (and opens no PR), and ``commit_oid`` is the existing head.
        existing_pr: The number of an open PR that already proposed exactly these files and was reused
            instead of opening a second one (``changed`` is then ``False``).
    """

    repo_id: str
    repo_url: str
    commit_oid: str
    commit_url: str
    revision: str
    pr_url: str | None
    files: tuple[PlannedFile, ...]
    changed: bool = True
    existing_pr: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "existing_pr": self.existing_pr,
            "repo_id": self.repo_id,
            "repo_url": self.repo_url,
            "commit_oid": self.commit_oid,
            "commit_url": self.commit_url,
            "revision": self.revision,
            "pr_url": self.pr_url,
            "files": [{"path": f.path, "size": f.size} for f in self.files],
        }


@dataclass(frozen=True)
class Verification:
    """The re-download check after a push.

    Args:
        status: ``"passed"``, ``"failed"`` or ``"not completed"`` (the check itself could not run,
            e.g. the network dropped; says nothing about the pushed model).
        detail: A sentence for people.
        parity: The parity report of the re-downloaded model (``parity.json`` schema), when it ran.
    """

    status: Literal["passed", "failed", "not completed"]
    detail: str
    parity: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "parity": self.parity}


__all__ = ["ProgressFn", "PushPlan", "PushRequest", "PushResult", "ReadmeMode", "Verification"]
