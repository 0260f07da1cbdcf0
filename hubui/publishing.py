"""Push an exported folder to the Hub as one commit, and prove afterwards that it still reproduces the logits.

Order of work, so that nothing is uploaded when anything before the commit fails: validate the
request, check the folder's files (regular files only: :mod:`hubui.push_files`), the parity gate, the
token's identity and rights, read the repo's existing README, check that a requested tag is free, and only
then create the repo/branch, check its visibility again, open the files, and send a single commit (to a
branch or as a PR; a PR that already proposes the same files is reused: :mod:`hubui.pr_reuse`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubui import auth
from hubui.card import MERGE_MODES, card_diff, merge_card
from hubui.card_rules import raise_for_card_text
from hubui.card_yaml import check_readme_size
from hubui.errors import (
    HubUIError,
    HubUnreachableError,
    InvalidCardError,
    InvalidInputError,
    InvalidRepoIdError,
    InvalidRevisionError,
    NamespaceForbiddenError,
    ParityFailedError,
    PushError,
    exception_chain,
)
from hubui.pr_reuse import find_identical_open_pr
from hubui.push_checks import check_target, check_visibility_again
from hubui.push_files import PlannedFile, commit_operations, folder_files, read_text_checked

if TYPE_CHECKING:
    from hubui.parity import ParityReport, Tolerance
    from hubui.spec import LoadedModel

logger = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]
ReadmeMode = Literal["keep", "replace", "merge"]
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
CONFIG_FILES = ("config.json", "open_clip_config.json")
PARITY_FILE = "parity.json"
# Answers that say "try again": rate limited, or the server (or a gateway before it) is in trouble.
RETRYABLE_STATUS = (429, 500, 502, 503, 504)
# Answers after which the Hub has certainly not acted on the request, so even a PR commit can be re-sent.
_UNPROCESSED_STATUS = (429, 502, 503)


@dataclass(frozen=True)
class RetryPolicy:
    """How hubui retries the Hub calls that huggingface_hub does not retry itself.

    huggingface_hub already retries its preupload, LFS and download requests with backoff; hubui adds
    retries around the rest of a push (repo info, create repo/branch, the commit itself) and around the
    verification download. Waits double from ``first_delay`` up to ``max_delay``; a ``Retry-After``
    header is honoured when it asks for no more than ``max_retry_after`` seconds (a longer wait ends
    in an error that says how long).

    ``RetryPolicy.from_env()`` reads ``HUBUI_HTTP_RETRIES`` (default 4) and ``HUBUI_HTTP_BACKOFF``
    (the first wait in seconds, default 1).

    Args:
        retries: Retries after the first try; 0 disables them.
        first_delay: Seconds before the first retry.
        max_delay: Longest wait between two tries.
        max_retry_after: Longest ``Retry-After`` that is waited for.
    """

    retries: int = 4
    first_delay: float = 1.0
    max_delay: float = 16.0
    max_retry_after: float = 120.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The default policy, with ``HUBUI_HTTP_RETRIES`` / ``HUBUI_HTTP_BACKOFF`` applied when set.

        Raises:
            InvalidInputError: A variable that is not a non-negative number, naming it.
        """
        policy = cls()
        for var, attr, kind in (("HUBUI_HTTP_RETRIES", "retries", int), ("HUBUI_HTTP_BACKOFF", "first_delay", float)):
            raw = os.environ.get(var, "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                value = -1
            if value < 0:
                raise InvalidInputError(f"{var} must be a non-negative number, not {raw!r}", f"Unset {var} or fix it.")
            policy = RetryPolicy(**{**policy.__dict__, attr: value})
        return policy

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        return float(min(self.max_delay, self.first_delay * 2**attempt))


def validate_repo_id(repo_id: str) -> tuple[str, str]:
    """Check ``namespace/name`` the way the Hub does, before anything is sent.

    Args:
        repo_id: The target repo, ``namespace/name``.

    Returns:
        ``(namespace, name)``.

    Raises:
        InvalidRepoIdError: Naming the bad value and, where it is one part, that part.
    """
    if not isinstance(repo_id, str):
        raise InvalidRepoIdError(f"Repo id must be text in the form 'namespace/name', not {type(repo_id).__name__}")
    if repo_id.count("/") != 1:
        raise InvalidRepoIdError(f"Repo id must be in the form 'namespace/name': {repo_id!r}")
    namespace, name = repo_id.split("/")
    for part in (namespace, name):
        # fullmatch, not match: '$' would let a trailing newline through ('alice/x\n').
        if not _NAME_RE.fullmatch(part) or ".." in part or "--" in part or part.endswith(".git"):
            raise InvalidRepoIdError(
                f"Invalid repo id {repo_id!r}: {part!r} must be 1-96 letters, digits, '-', '_' or '.', "
                "not start or end with '-' or '.', and contain no '..' or '--'"
            )
    return namespace, name


def _branch_problem(branch: str) -> str | None:
    """Why git or the Hub would refuse ``branch`` as a branch name, or ``None``."""
    checks = (
        (not branch.strip(), "it is empty"),
        (".." in branch, "it contains '..'"),
        (any(c.isspace() for c in branch), "it contains whitespace"),
        (any(ord(c) < 32 or ord(c) == 127 for c in branch), "it contains control characters"),
        (any(c in "~^:?*[\\" for c in branch), "it contains one of ~ ^ : ? * [ \\"),
        (branch.startswith(("/", "-")), "it starts with '/' or '-'"),
        (branch.startswith("refs/"), "it starts with 'refs/' (give the short name)"),
        (branch.endswith(("/", ".", ".lock")), "it ends with '/', '.' or '.lock'"),
        ("//" in branch or "/." in branch or "@{" in branch, "it contains '//', '/.' or '@{'"),
        (branch in ("HEAD", "@"), "it is a reserved name"),
        (len(branch) > 200, f"it is {len(branch)} characters long (at most 200)"),
    )
    return next((why for bad, why in checks if bad), None)


def validate_branch(branch: str | None) -> str | None:
    """Check a target branch name (``None`` means main).

    Args:
        branch: The branch to push to, or ``None``/``"main"`` for main.

    Returns:
        The branch, or ``None`` for main.

    Raises:
        InvalidRevisionError: For names git or the Hub would refuse, naming the value and why.
    """
    if branch is None or branch == "main":
        return None
    if not isinstance(branch, str):
        raise InvalidRevisionError(f"Branch name must be text, not {type(branch).__name__}")
    problem = _branch_problem(branch)
    if problem is not None:
        raise InvalidRevisionError(f"Invalid branch name {branch!r}: {problem}")
    return branch


def validate_tag(tag: str | None) -> str | None:
    """Check the name of a tag to put on the pushed commit (``None``: no tag).

    Args:
        tag: The tag, e.g. ``v1`` or ``v1.0.2``.

    Returns:
        The tag, or ``None``.

    Raises:
        InvalidRevisionError: For names git or the Hub would refuse, naming the value and why.
    """
    if tag is None:
        return None
    if not isinstance(tag, str):
        raise InvalidRevisionError(f"Tag name must be text, not {type(tag).__name__}")
    problem = _branch_problem(tag)
    if problem is not None:
        raise InvalidRevisionError(
            f"Invalid tag name {tag!r}: {problem}",
            "Use a tag like 'v1' or 'v1.0.2': no spaces, '..', '~', '^', ':' or a leading '/'.",
        )
    return tag


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
        tag: A tag to put on the pushed commit (``v1``). It must not exist yet (checked before any upload);
            :func:`hubui.pipeline.publish` creates it once verification passed. Not with ``create_pr``.
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
    files = folder_files(folder)  # refuses links, FIFOs, sockets and devices, naming them
    if not any(f.path in CONFIG_FILES for f in files):
        raise InvalidInputError(
            f"{str(folder)!r} has no {' or '.join(CONFIG_FILES)}: it is not an exported model folder.",
            "Pass the folder that `hubui convert` wrote.",
        )
    return files


def _http_error(exc: BaseException) -> HfHubHTTPError | None:
    return next((e for e in exception_chain(exc) if isinstance(e, HfHubHTTPError) and e.response is not None), None)


def _retry_after(error: HfHubHTTPError) -> float | None:
    raw = error.response.headers.get("retry-after", "").strip() if error.response is not None else ""
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: rare; the backoff applies instead


def _transient(exc: BaseException) -> tuple[str, float | None] | None:
    """``(reason, Retry-After seconds or None)`` when ``exc`` is worth retrying, else ``None``."""
    http = _http_error(exc)
    if http is not None:
        status = http.response.status_code
        return (f"HTTP {status}", _retry_after(http)) if status in RETRYABLE_STATUS else None
    transport = next((e for e in exception_chain(exc) if isinstance(e, httpx2.TransportError)), None)
    return (type(transport).__name__, None) if transport is not None else None


def _failed_request(exc: BaseException) -> tuple[str, str]:
    """``(method, url)`` of the request that failed, or ``("", "")``."""
    for e in exception_chain(exc):
        try:
            if isinstance(e, HfHubHTTPError) and e.response is not None:
                return e.response.request.method, str(e.response.request.url)
            if isinstance(e, httpx2.RequestError):
                return e.request.method, str(e.request.url)
        except RuntimeError:  # httpx raises when no request is attached
            continue
    return "", ""


def _at_commit_endpoint(exc: BaseException) -> bool:
    return "/commit/" in urlsplit(_failed_request(exc)[1]).path


def _retried_by_hf_hub(exc: BaseException) -> bool:
    """Whether huggingface_hub already retried the failed request with its own backoff (up to 23 s).

    It does for preupload, LFS batch and uploads, tree listings and file-metadata HEADs, and resumes a
    file download whose connection dropped; retrying those again would multiply the waits.
    """
    method, url = _failed_request(exc)
    path = urlsplit(url).path
    if "/preupload/" in path or "/info/lfs/" in path or "/tree/" in path or method in ("HEAD", "PUT"):
        return True
    return method == "GET" and "/api/" not in path and _http_error(exc) is None


def _not_retried_by_hf_hub(exc: Exception) -> bool:
    return not _retried_by_hf_hub(exc)


def _retrying(
    call: Callable[[], Any], what: str, policy: RetryPolicy, say: ProgressFn, may_retry: Callable[[Exception], bool]
) -> Any:
    """Run ``call``, retrying transient Hub errors (429, 5xx, lost connections) with backoff.

    ``may_retry`` vetoes retries that would not be safe or that huggingface_hub already made.
    The last error is re-raised unchanged, for the caller to translate.
    """
    attempt = 0
    while True:
        try:
            return call()
        except (HfHubHTTPError, httpx2.TransportError, OSError, HubUnreachableError) as exc:
            # HubUnreachableError: hubui's own translation (whoami, rebuilding); its cause says if it is transient.
            transient = _transient(exc)
            if transient is None or attempt >= policy.retries or not may_retry(exc):
                raise
            reason, retry_after = transient
            if retry_after is not None and retry_after > policy.max_retry_after:
                raise
            wait = retry_after if retry_after is not None else policy.delay(attempt)
            attempt += 1
            logger.warning("%s: %s from the Hub; retry %d/%d in %.1fs", what, reason, attempt, policy.retries, wait)
            say(f"{what}: {reason} from the Hub; retrying in {wait:.1f}s ({attempt}/{policy.retries})")
            time.sleep(wait)


def _translate(exc: Exception, request: PushRequest, endpoint: str) -> HubUIError:
    repo = request.repo_id
    http = _http_error(exc)
    if http is None and any(isinstance(e, httpx2.TransportError) for e in exception_chain(exc)):
        if _at_commit_endpoint(exc) and not any(isinstance(e, httpx2.ConnectError) for e in exception_chain(exc)):
            return HubUnreachableError(
                f"Lost the connection to the Hub at {endpoint} while committing to {repo}; "
                "the commit may or may not have landed.",
                "Check the repo's history, then push again: unchanged files make no new commit.",
            )
        during = f" ({exc})" if isinstance(exc, RuntimeError) else ""  # which file, when uploading one
        return HubUnreachableError(
            f"Lost the connection to the Hub at {endpoint} while pushing {repo}{during}; nothing was committed.",
            "Check that the Hub is up and your network, then push again: "
            "files that were already uploaded are not sent again.",
        )
    if http is not None and http.response is not None:
        status = http.response.status_code
        server = (http.server_message or "").strip()
        if status == 403:
            return NamespaceForbiddenError(f"The Hub refused to write to {repo!r}: {server or 'HTTP 403'}")
        if status == 412:
            return PushError(f"{repo} changed while pushing: {server}", "Push again; nothing was committed.")
        if status == 429:
            wait = _retry_after(http)
            after = f" and asks to wait {wait:.0f}s" if wait is not None else ""
            return PushError(
                f"The Hub is rate-limiting pushes to {repo!r} (HTTP 429){after}: {server or 'too many requests'}",
                "Nothing was committed. Wait a while, then push again.",
            )
        if status in RETRYABLE_STATUS:
            return PushError(
                f"The Hub kept failing while pushing to {repo!r} (HTTP {status}, also after retries): "
                f"{server or 'server error'}",
                "Nothing was committed. The Hub is having trouble: push again later; "
                "files that were already uploaded are not sent again.",
            )
        return PushError(f"The Hub refused the push to {repo!r} (HTTP {status}): {server or exc}")
    return PushError(f"Push to {repo!r} failed: {exc}")


class _Session:
    """The checked identity and a client for one push or plan."""

    def __init__(self, request: PushRequest, token: str | None, say: ProgressFn | None = None) -> None:
        self.namespace, _ = validate_repo_id(request.repo_id)
        validate_branch(request.branch)
        validate_tag(request.tag)
        if request.tag is not None and request.create_pr:
            raise InvalidInputError(
                f"A tag ({request.tag!r}) cannot be put on a pull request (--tag with --create-pr).",
                "Push without --tag: whoever merges the PR tags the merged commit.",
            )
        if request.readme_mode not in MERGE_MODES:
            raise InvalidInputError(
                f"Unknown README mode {request.readme_mode!r}", f"Use one of: {', '.join(MERGE_MODES)}."
            )
        self.endpoint = auth.endpoint()
        self.token = auth.resolve_token(token)
        self.policy = RetryPolicy.from_env()
        self.say: ProgressFn = say or (lambda _msg: None)
        self.identity = self.retrying(lambda: auth.whoami(self.token, endpoint=self.endpoint), "checking the token")
        # Anyone with a write token may open a PR on someone else's public repo (that is how a fixed
        # checkpoint or card is proposed to its owner); creating it or committing to it stays refused.
        self.foreign: NamespaceForbiddenError | None = None
        try:
            auth.require_write(self.identity, self.namespace)
        except NamespaceForbiddenError as exc:
            if not request.create_pr:
                raise
            self.foreign = exc
        self.api = HfApi(endpoint=self.endpoint, token=self.token)

    def retrying(
        self, call: Callable[[], Any], what: str, may_retry: Callable[[Exception], bool] = _not_retried_by_hf_hub
    ) -> Any:
        """``call`` with :func:`_retrying` under this session's policy."""
        return _retrying(call, what, self.policy, self.say, may_retry)

    def repo_private(self, repo_id: str) -> bool | None:
        """The repo's visibility, or ``None`` when it does not exist (or is not visible to us)."""
        try:
            return bool(self.retrying(lambda: self.api.model_info(repo_id), "reading the repo").private)
        except RepositoryNotFoundError:
            return None

    def head(self, repo_id: str, revision: str | None) -> str | None:
        """The commit ``revision`` (default main) points at, or ``None`` when it does not exist."""
        try:
            return self.retrying(lambda: self.api.model_info(repo_id, revision=revision), "reading the repo").sha
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


def _target(request: PushRequest, foreign: bool = False) -> str:
    base = request.branch or "main"
    if request.create_pr and foreign:
        return f"will open a PR on {request.repo_id} against {base} (you cannot write to it: its owner decides)"
    where = f"pull request against {base}" if request.create_pr else (f"branch {base}" if request.branch else "main")
    return f"{where}, then tag {request.tag!r} once verified" if request.tag else where


def _overrides(request: PushRequest) -> dict[str, bytes]:
    """Files pushed with other content than the folder's (open_clip's hf_tokenizer_self config)."""
    from hubui.export import hub_config_override

    return hub_config_override(request.folder, request.repo_id, request.hf_tokenizer_self)


# Stands for an existing README that "keep" leaves alone without reading it (it is over the size limit).
_UNREAD_README = "(an existing README, not read: it is larger than hubui reads)"


def _prepare(
    request: PushRequest, card: ModelCard | str | None, token: str | None, say: ProgressFn | None = None
) -> tuple[_Session, list[PlannedFile], str | None, str | None, bool | None, str | None]:
    files = _folder_files(Path(request.folder))
    verdict = check_parity_gate(Path(request.folder), request.allow_failed_parity)
    session = _Session(request, token, say)
    overrides = _overrides(request)
    files = [PlannedFile(f.path, len(overrides[f.path])) if f.path in overrides else f for f in files]
    try:
        private = session.repo_private(request.repo_id)
        check_target(session, request, private)
    except (HfHubHTTPError, httpx2.TransportError) as exc:
        raise _translate(exc, request, session.endpoint) from exc
    # The README: ours (from `card`, else the folder's), merged with what the repo already has.
    folder_readme = next((f for f in files if f.path == "README.md"), None)
    files = [f for f in files if f.path != "README.md"]
    new_text: str | None = None
    if card is not None:
        new_text = str(card)
    elif folder_readme is not None:
        new_text = read_text_checked(request.folder, folder_readme)
        raise_for_card_text(new_text, "The folder's README.md")  # before ModelCard() parses its model-index
    existing = None
    if private is not None:
        try:
            existing = session.retrying(
                lambda: session.existing_readme(request.repo_id, request.branch), "reading the README"
            )
        except (HfHubHTTPError, httpx2.TransportError) as exc:
            raise _translate(exc, request, session.endpoint) from exc
        except InvalidCardError:
            if request.readme_mode != "keep":
                raise
            existing = _UNREAD_README  # "keep" needs only to know that there is one; it is left as it is
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
        target=_target(request, session.foreign is not None),
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
    session, files, readme, _, private, _ = _prepare(request, card, token, say)
    with contextlib.ExitStack() as opened:
        # Opened (and checked again) before anything is created: what is uploaded is the file that was checked.
        operations = commit_operations(request.folder, files, _overrides(request), readme, opened)
        return _push_operations(request, session, files, operations, private, say)


def _push_operations(
    request: PushRequest,
    session: _Session,
    files: list[PlannedFile],
    operations: list[CommitOperationAdd],
    private: bool | None,
    say: ProgressFn,
) -> PushResult:
    repo, branch = request.repo_id, request.branch
    try:
        before = session.head(repo, branch) if private is not None else None
        if private is None:
            say(f"creating {repo}")
            session.retrying(lambda: session.api.create_repo(repo, private=request.private, exist_ok=True), "create")
        if branch is not None and session.foreign is None:
            session.retrying(lambda: session.api.create_branch(repo, branch=branch, exist_ok=True), "create branch")
        if request.create_pr and private is not None:
            found = find_identical_open_pr(session.api, repo, branch or "main", operations)
            if found is not None:
                say(f"PR #{found.num} already proposes these exact files: {found.url}; no second PR was opened")
                return PushResult(
                    repo_id=repo,
                    repo_url=f"{session.endpoint}/{repo}",
                    commit_oid=found.head,
                    commit_url=f"{session.endpoint}/{repo}/commit/{found.head}",
                    revision=found.revision,
                    pr_url=found.url,
                    files=tuple(files),
                    changed=False,
                    existing_pr=found.num,
                )
        if request.private or private is None:
            check_visibility_again(session, request, say)
        total = sum(f.size for f in files)
        say(f"uploading {len(files)} files ({total / 1e6:.1f} MB) as one commit")

        def commit() -> Any:
            return session.api.create_commit(
                repo,
                operations,
                commit_message=request.commit_message,
                commit_description=request.commit_description or None,
                revision=branch,
                create_pr=request.create_pr,
            )

        def may_retry(exc: Exception) -> bool:
            # huggingface_hub already retried preupload and LFS requests; only the commit POST is ours to retry.
            # Re-sending a commit is safe on a branch (unchanged files make no new commit) but could open a
            # second PR, so a PR is re-sent only when the Hub surely did not act on the first one.
            if not _at_commit_endpoint(exc):
                return False
            if not request.create_pr:
                return True
            http = _http_error(exc)
            if http is not None:
                return http.response.status_code in _UNPROCESSED_STATUS
            return any(isinstance(e, httpx2.ConnectError) for e in exception_chain(exc))

        info = session.retrying(commit, "commit", may_retry)
    except (HfHubHTTPError, httpx2.TransportError, RuntimeError) as exc:
        # huggingface_hub wraps a failed LFS upload in RuntimeError("Error while uploading 'x' to the Hub.").
        if isinstance(exc, RuntimeError) and _transient(exc) is None and _http_error(exc) is None:
            raise
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

        def download() -> tuple[str, str, Any]:
            snapshot = snapshot_download(
                result.repo_id,
                revision=result.commit_oid,
                cache_dir=cache,
                token=secret,
                endpoint=auth.endpoint(),
            )
            # A transformers-target folder is rebuilt with from_pretrained(repo), whatever the original's library.
            rebuilt_library = "transformers" if folder_library(snapshot) == "transformers" else library
            rebuilt = rebuild_from_hub(
                result.repo_id, revision=result.commit_oid, cache_dir=cache, library=rebuilt_library, token=secret
            )
            return snapshot, rebuilt_library, rebuilt

        try:
            secret = auth.resolve_token(token)
            policy = RetryPolicy.from_env()
            snapshot, rebuilt_library, rebuilt = _retrying(
                download, "verification download", policy, lambda _m: None, _not_retried_by_hf_hub
            )
        except (httpx2.TransportError, HubUnreachableError, HfHubHTTPError, OSError) as exc:
            logger.warning("Verification of %s not completed: %s", where, type(exc).__name__)
            return Verification("not completed", f"Could not re-download {where}: {_short(exc)}. The push landed.")
        if rebuilt_library == "transformers":
            # Compared with the timm original through hubui.to_transformers (key map, processor check).
            from hubui.to_transformers import iter_transformers_parity

            run_parity = iter_transformers_parity
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
        InvalidCardError: The README is larger than :data:`hubui.card_yaml.MAX_README_BYTES` (1 MiB; its
            size is checked before it is downloaded), or is not UTF-8.
        HubUnreachableError: The Hub cannot be reached.
    """
    validate_repo_id(repo_id)
    endpoint = auth.endpoint()
    secret = token.strip() if token and token.strip() else None
    what = f"{repo_id}'s README"
    try:
        url = hf_hub_url(repo_id, "README.md", revision=revision, endpoint=endpoint)
        metadata = get_hf_file_metadata(url, token=secret or False, endpoint=endpoint)
        check_readme_size(metadata.size or 0, what)  # before the download: a README is input from others
        with tempfile.TemporaryDirectory(prefix="hubui-readme-") as tmp:
            path = hf_hub_download(
                repo_id, "README.md", revision=revision, cache_dir=tmp, token=secret or False, endpoint=endpoint
            )
            check_readme_size(os.path.getsize(path), what)  # it may have grown between the two requests
            try:
                return Path(path).read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidCardError(f"{what} is not UTF-8 text (bad byte at offset {exc.start}).") from exc
    except LocalEntryNotFoundError as exc:
        # huggingface_hub's "no connection and nothing cached" is a subclass of EntryNotFoundError: an
        # unreachable Hub must not read as "this repo has no README".
        raise HubUnreachableError(f"Cannot reach the Hub at {endpoint} to read {repo_id}'s README") from exc
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return None
    except httpx2.TransportError as exc:
        raise HubUnreachableError(f"Cannot reach the Hub at {endpoint} to read {repo_id}'s README") from exc


def _short(exc: Exception) -> str:
    text = exc.message if isinstance(exc, HubUIError) else (str(exc) or type(exc).__name__)
    return text.splitlines()[0][:300]


__all__ = [
    "RETRYABLE_STATUS",
    "PlannedFile",
    "PushPlan",
    "PushRequest",
    "PushResult",
    "RetryPolicy",
    "Verification",
    "check_parity_gate",
    "fetch_readme",
    "plan_push",
    "push",
    "read_parity_verdict",
    "validate_branch",
    "validate_repo_id",
    "validate_tag",
    "verify_push",
]
