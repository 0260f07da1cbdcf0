"""Push an exported folder to the Hub as one commit, and prove afterwards that it still reproduces the logits.

Order of work, so that nothing is uploaded when anything before the commit fails: validate the
request, check the parity gate, check the token's identity and rights, read the repo's existing
README, and only then create the repo/branch and send a single commit (to a branch or as a PR).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx2
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubui import auth
from hubui.card import MERGE_MODES, card_diff, merge_card
from hubui.errors import (
    HubUIError,
    HubUnreachableError,
    InvalidInputError,
    InvalidRepoIdError,
    InvalidRevisionError,
    NamespaceForbiddenError,
    ParityFailedError,
    PushError,
)

if TYPE_CHECKING:
    from hubui.parity import ParityReport, Tolerance
    from hubui.spec import LoadedModel

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]
ReadmeMode = Literal["keep", "replace", "merge"]
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
CONFIG_FILES = ("config.json", "open_clip_config.json")
PARITY_FILE = "parity.json"


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """Check ``namespace/name`` the way the Hub does, before anything is sent.

    Returns:
        ``(namespace, name)``.

    Raises:
        InvalidRepoIdError: Naming the bad value.
    """
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise InvalidRepoIdError(f"Repo id must be in the form 'namespace/name': {repo_id!r}")
    namespace, name = repo_id.split("/")
    for part in (namespace, name):
        if not _NAME_RE.match(part) or ".." in part or "--" in part or part.endswith(".git"):
            raise InvalidRepoIdError(
                f"Invalid repo id {repo_id!r}: {part!r} must be 1-96 letters, digits, '-', '_' or '.', "
                "not start or end with '-' or '.', and contain no '..' or '--'"
            )
    return namespace, name


def validate_branch(branch: str | None) -> str | None:
    """Check a target branch name (``None`` means main).

    Raises:
        InvalidRevisionError: For names git or the Hub would refuse, naming the value.
    """
    if branch is None or branch == "main":
        return None
    bad = (
        not branch.strip()
        or branch.startswith(("/", "-", "refs/"))
        or branch.endswith(("/", ".", ".lock"))
        or ".." in branch
        or "//" in branch
        or "@{" in branch
        or len(branch) > 200
        or any(c.isspace() or c in "~^:?*[\\" or ord(c) < 32 for c in branch)
    )
    if bad:
        raise InvalidRevisionError(f"Invalid branch name {branch!r}")
    return branch


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
        hf_tokenizer_self: open_clip with a Hugging Face tokenizer: the pushed ``open_clip_config.json`` names
            this repo as the tokenizer's source (open_clip's ``--hf-tokenizer-self``); the folder is unchanged.
            See :func:`hubui.export.hub_config_override`.
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


@dataclass(frozen=True)
class PlannedFile:
    """A file that a push commits."""

    path: str
    size: int


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
    """

    repo_id: str
    repo_url: str
    commit_oid: str
    commit_url: str
    revision: str
    pr_url: str | None
    files: tuple[PlannedFile, ...]
    changed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
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


def read_parity_verdict(folder: Path) -> str | None:
    """The verdict stored in ``folder/parity.json``, or ``None`` when there is none."""
    path = folder / PARITY_FILE
    if not path.is_file():
        return None
    try:
        verdict = json.loads(path.read_text(encoding="utf-8")).get("verdict")
    except (OSError, ValueError, AttributeError):
        return None
    return str(verdict) if verdict is not None else None


def check_parity_gate(folder: Path, allow_failed_parity: bool) -> str | None:
    """Refuse to push a folder whose parity did not pass, unless explicitly overridden.

    Returns:
        The verdict found (``None`` when the folder has no ``parity.json``).

    Raises:
        ParityFailedError: When the verdict is not ``pass`` and no override was given.
    """
    verdict = read_parity_verdict(folder)
    if verdict != "pass" and not allow_failed_parity:
        what = "has no parity.json" if verdict is None else f"has parity verdict {verdict!r}"
        raise ParityFailedError(
            f"The folder {str(folder)!r} {what}; refusing to push.",
            "Fix the conversion, or push with an explicit override (it is recorded in the card).",
        )
    return verdict


def _folder_files(folder: Path) -> list[PlannedFile]:
    if not folder.is_dir():
        raise InvalidInputError(f"Not a folder: {str(folder)!r}", "Pass the folder that `hubui convert` wrote.")
    if not any((folder / name).is_file() for name in CONFIG_FILES):
        raise InvalidInputError(
            f"{str(folder)!r} has no {' or '.join(CONFIG_FILES)}: it is not an exported model folder.",
            "Pass the folder that `hubui convert` wrote.",
        )
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue  # hidden files (.cache, .DS_Store) never travel
        files.append(PlannedFile(rel, path.stat().st_size))
    return files


def _translate(exc: Exception, request: PushRequest, endpoint: str) -> HubUIError:
    if isinstance(exc, httpx2.TransportError):
        return HubUnreachableError(f"Lost the connection to the Hub at {endpoint} while pushing {request.repo_id}")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        server = (exc.server_message or "").strip()
        if status == 403:
            return NamespaceForbiddenError(f"The Hub refused to write to {request.repo_id!r}: {server or 'HTTP 403'}")
        if status == 412:
            return PushError(f"{request.repo_id} changed while pushing: {server}", "Push again; nothing was committed.")
        return PushError(f"The Hub refused the push to {request.repo_id!r} (HTTP {status}): {server or exc}")
    return PushError(f"Push to {request.repo_id!r} failed: {exc}")


class _Session:
    """The checked identity and a client for one push or plan."""

    def __init__(self, request: PushRequest, token: str | None) -> None:
        self.namespace, _ = validate_repo_id(request.repo_id)
        validate_branch(request.branch)
        if request.readme_mode not in MERGE_MODES:
            raise InvalidInputError(
                f"Unknown README mode {request.readme_mode!r}", f"Use one of: {', '.join(MERGE_MODES)}."
            )
        self.endpoint = auth.endpoint()
        self.token = auth.resolve_token(token)
        self.identity = auth.whoami(self.token, endpoint=self.endpoint)
        auth.require_write(self.identity, self.namespace)
        self.api = HfApi(endpoint=self.endpoint, token=self.token)

    def repo_private(self, repo_id: str) -> bool | None:
        """The repo's visibility, or ``None`` when it does not exist (or is not visible to us)."""
        try:
            return bool(self.api.model_info(repo_id).private)
        except RepositoryNotFoundError:
            return None

    def head(self, repo_id: str, revision: str | None) -> str | None:
        """The commit ``revision`` (default main) points at, or ``None`` when it does not exist."""
        try:
            return self.api.model_info(repo_id, revision=revision).sha
        except (RepositoryNotFoundError, RevisionNotFoundError):
            return None

    def existing_readme(self, repo_id: str, revision: str | None) -> str | None:
        return fetch_readme(repo_id, token=self.token, revision=revision)


def _readme_action(existing: str | None, mode: str, uploaded: str | None) -> str:
    if existing is None:
        return "new"
    if uploaded is None:
        return "keep existing"
    return mode


def _target(request: PushRequest) -> str:
    base = request.branch or "main"
    return f"pull request against {base}" if request.create_pr else (f"branch {base}" if request.branch else "main")


def _overrides(request: PushRequest) -> dict[str, bytes]:
    """Files pushed with other content than the folder's (open_clip's hf_tokenizer_self config)."""
    from hubui.export import hub_config_override

    return hub_config_override(request.folder, request.repo_id, request.hf_tokenizer_self)


def _prepare(
    request: PushRequest, card: ModelCard | str | None, token: str | None
) -> tuple[_Session, list[PlannedFile], str | None, str | None, bool | None, str | None]:
    files = _folder_files(Path(request.folder))
    verdict = check_parity_gate(Path(request.folder), request.allow_failed_parity)
    session = _Session(request, token)
    overrides = _overrides(request)
    files = [PlannedFile(f.path, len(overrides[f.path])) if f.path in overrides else f for f in files]
    private = session.repo_private(request.repo_id)
    if private is not None and request.private and not private:
        raise PushError(
            f"{request.repo_id} already exists and is public, but a private push was asked for.",
            "Make the repo private on the Hub first, or push without --private.",
        )
    # The README: ours (from `card`, else the folder's), merged with what the repo already has.
    files = [f for f in files if f.path != "README.md"]
    new_text: str | None = None
    if card is not None:
        new_text = str(card)
    elif (Path(request.folder) / "README.md").is_file():
        new_text = (Path(request.folder) / "README.md").read_text(encoding="utf-8")
    existing = None
    if private is not None:
        existing = session.existing_readme(request.repo_id, request.branch)
    readme = merge_card(existing, ModelCard(new_text), request.readme_mode) if new_text is not None else None
    if readme is not None:
        files.append(PlannedFile("README.md", len(readme.encode("utf-8"))))
    return session, files, readme, existing, private, verdict


def plan_push(request: PushRequest, card: ModelCard | str | None = None, token: str | None = None) -> PushPlan:
    """The dry run: check everything a push checks and list what it would commit. Uploads nothing.

    Args:
        request: Where and how.
        card: The README to push; ``None`` uses the folder's ``README.md`` if any.
        token: An explicit token; otherwise ``HF_TOKEN`` or the login cache.

    Returns:
        The :class:`PushPlan`.

    Raises:
        InvalidRepoIdError, InvalidRevisionError, InvalidInputError: Bad request values.
        ParityFailedError: Parity did not pass and no override was given.
        NotLoggedInError, InvalidTokenError, ReadOnlyTokenError, NamespaceForbiddenError: Auth problems.
        HubUnreachableError: The Hub cannot be reached.
    """
    session, files, readme, existing, private, verdict = _prepare(request, card, token)
    return PushPlan(
        repo_id=request.repo_id,
        user=session.identity.name,
        repo_exists=private is not None,
        target=_target(request),
        files=tuple(files),
        readme_action=_readme_action(existing, request.readme_mode, readme),
        readme_diff=card_diff(existing, readme) if readme is not None else "",
        parity_verdict=verdict,
        readme_text=readme,
    )


def push(
    request: PushRequest,
    card: ModelCard | str | None = None,
    token: str | None = None,
    progress: ProgressFn | None = None,
) -> PushResult:
    """Create the repo if needed and commit the folder to it in one commit (to a branch or as a PR).

    Args:
        request: Where and how.
        card: The README to push; ``None`` uses the folder's ``README.md`` if any. An existing README
            in the repo is kept unless ``request.readme_mode`` says otherwise.
        token: An explicit token; otherwise ``HF_TOKEN`` or the login cache.
        progress: Receives short status lines.

    Returns:
        The :class:`PushResult` with the commit URL and, for PRs, the PR URL.

    Raises:
        Everything :func:`plan_push` raises, before anything is uploaded, and:
        PushError: The Hub refused the commit; nothing was committed.
        HubUnreachableError: The connection dropped; nothing was committed.
    """
    say = progress or (lambda _msg: None)
    say("checking the target")
    session, files, readme, _, private, _ = _prepare(request, card, token)
    folder = Path(request.folder)
    overrides = _overrides(request)
    try:
        before = session.head(request.repo_id, request.branch) if private is not None else None
        if private is None:
            say(f"creating {request.repo_id}")
            session.api.create_repo(request.repo_id, private=request.private, exist_ok=True)
        if request.branch is not None:
            session.api.create_branch(request.repo_id, branch=request.branch, exist_ok=True)
        operations = [
            CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=overrides.get(f.path) or str(folder / f.path))
            for f in files
            if f.path != "README.md"
        ]
        if readme is not None:
            operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=readme.encode("utf-8")))
        total = sum(f.size for f in files)
        say(f"uploading {len(files)} files ({total / 1e6:.1f} MB) as one commit")
        info = session.api.create_commit(
            request.repo_id,
            operations,
            commit_message=request.commit_message,
            commit_description=request.commit_description or None,
            revision=request.branch,
            create_pr=request.create_pr,
        )
    except (HfHubHTTPError, httpx2.TransportError) as exc:
        raise _translate(exc, request, session.endpoint) from exc
    revision = info.pr_revision or request.branch or "main"
    changed = info.oid != before
    if changed:
        say(f"committed {info.oid[:10]} to {revision}")
    else:
        say(f"nothing changed: every file is already at {revision} ({info.oid[:10]}); no commit or PR was made")
    return PushResult(
        repo_id=request.repo_id,
        repo_url=str(info.repo_url),
        commit_oid=info.oid,
        commit_url=info.commit_url,
        revision=revision,
        pr_url=info.pr_url,
        files=tuple(files),
        changed=changed,
    )


def verify_push(
    result: PushResult,
    reference: LoadedModel,
    precision: str,
    *,
    token: str | None = None,
    tolerance: Tolerance | None = None,
    images: tuple[Any, ...] = (),
    on_report: Callable[[ParityReport], None] | None = None,
) -> Verification:
    """Download the pushed commit into a fresh cache, rebuild it with the library's ``hf-hub:`` loader,
    and run parity against ``reference`` again.

    The download goes through huggingface_hub with the caller's token (private repos work without
    touching the process environment); the library's own ``hf-hub:`` loader then resolves the exact
    commit from that cache.

    Args:
        result: What :func:`push` returned.
        reference: The model to compare with: the original, or the local folder rebuilt.
        precision: Picks the tolerance preset (use ``"fp32"`` when ``reference`` has the same weights).
        token: The token used to push; ``None`` falls back to ``HF_TOKEN`` / the login cache.
        tolerance: Overrides the preset.
        images: The user's extra parity images.
        on_report: Receives each partial parity report, for live display.

    Returns:
        ``passed`` or ``failed`` with the report, or ``not completed`` when the re-download itself
        could not run (the push has still landed).
    """
    from huggingface_hub import snapshot_download

    from hubui.export import folder_library, rebuild_from_hub
    from hubui.parity import iter_parity

    library: str = reference.spec.library
    run_parity: Callable[..., Iterator[ParityReport]] = iter_parity
    where = f"{result.repo_id}@{result.commit_oid[:10]}"
    with tempfile.TemporaryDirectory(prefix="hubui-verify-") as cache:
        try:
            secret = auth.resolve_token(token)
            snapshot = snapshot_download(
                result.repo_id,
                revision=result.commit_oid,
                cache_dir=cache,
                token=secret,
                endpoint=auth.endpoint(),
            )
            if folder_library(snapshot) == "transformers":
                # The transformers target: AutoModelForImageClassification.from_pretrained(repo) from the Hub,
                # compared with the timm original through hubui.to_transformers (key map, processor check).
                from hubui.to_transformers import iter_transformers_parity

                library, run_parity = "transformers", iter_transformers_parity
            rebuilt = rebuild_from_hub(
                result.repo_id, revision=result.commit_oid, cache_dir=cache, library=library, token=secret
            )
        except (httpx2.TransportError, HubUnreachableError, HfHubHTTPError, OSError) as exc:
            logger.warning("Verification of %s not completed: %s", where, type(exc).__name__)
            return Verification("not completed", f"Could not re-download {where}: {_short(exc)}. The push landed.")
        report = None
        for report in run_parity(reference, rebuilt, precision, tolerance, images, folder=snapshot):
            if on_report is not None:
                on_report(report)
    if report is None:
        return Verification("not completed", "The verification produced no parity report.")
    parity = report.to_dict()
    if report.verdict == "pass":
        return Verification("passed", f"{where}, downloaded again, reproduces the original's outputs.", parity)
    return Verification("failed", f"{where}, downloaded again, does not reproduce the original's outputs.", parity)


def fetch_readme(repo_id: str, token: str | None = None, revision: str | None = None) -> str | None:
    """The README a repo has now, to show or edit before a push.

    Args:
        repo_id: ``namespace/name``.
        token: An explicit token (private repos); otherwise ``HF_TOKEN`` or the login cache, or none.
        revision: A branch or commit; main by default.

    Returns:
        The README text, or ``None`` when the repo, the revision or the README does not exist (or the
        repo is private and not visible with this token).

    Raises:
        InvalidRepoIdError: A malformed repo id.
        HubUnreachableError: The Hub cannot be reached.
    """
    validate_repo_id(repo_id)
    endpoint = auth.endpoint()
    secret = token.strip() if token and token.strip() else None
    try:
        with tempfile.TemporaryDirectory(prefix="hubui-readme-") as tmp:
            path = hf_hub_download(
                repo_id, "README.md", revision=revision, cache_dir=tmp, token=secret or False, endpoint=endpoint
            )
            return Path(path).read_text(encoding="utf-8")
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return None
    except httpx2.TransportError as exc:
        raise HubUnreachableError(f"Cannot reach the Hub at {endpoint} to read {repo_id}'s README") from exc


def _short(exc: Exception) -> str:
    text = exc.message if isinstance(exc, HubUIError) else (str(exc) or type(exc).__name__)
    return text.splitlines()[0][:300]


__all__ = [
    "PlannedFile",
    "PushPlan",
    "PushRequest",
    "PushResult",
    "Verification",
    "check_parity_gate",
    "fetch_readme",
    "plan_push",
    "push",
    "read_parity_verdict",
    "validate_branch",
    "validate_repo_id",
    "verify_push",
]
