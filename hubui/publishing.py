"""Push an exported folder to the Hub as one commit, and prove afterwards that it still reproduces the logits.

Order of work, so that nothing is uploaded when anything before the commit fails: validate the
request, check the folder's files (regular files only: :mod:`hubui.push_files`), the parity gate, the
random-weights gate (:mod:`hubui.provenance`), the token's identity and rights, read the repo's existing README,
check that a requested tag is free, and only then create the repo/branch, check its visibility again, open the
files, and send a single commit (to a branch or as a PR; a PR that already proposes the same files is reused:
:mod:`hubui.pr_reuse`).

The pieces live next to it: the names (:mod:`hubui.push_names`), the request and answers
(:mod:`hubui.push_types`), retries and error translation (:mod:`hubui.push_retry`), the session and the
README download (:mod:`hubui.push_session`), the target checks (:mod:`hubui.push_checks`), tags
(:mod:`hubui.push_tags`) and the re-download check (:mod:`hubui.push_verify`); this module re-exports
their public names.
"""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import CommitOperationAdd, ModelCard
from huggingface_hub.errors import HfHubHTTPError

from hubui.card_lint import card_warnings
from hubui.card_merge import card_diff, merge_card
from hubui.card_rules import raise_for_card_text
from hubui.errors import InvalidCardError, InvalidInputError, ParityFailedError, exception_chain
from hubui.libraries import format_names, get_format
from hubui.pr_reuse import find_identical_open_pr
from hubui.preflight import check_push_sizes
from hubui.provenance import read_weights_origin
from hubui.push_checks import check_random_weights, check_target, check_visibility_again
from hubui.push_files import PlannedFile, commit_operations, folder_files, read_text_checked
from hubui.push_names import validate_branch, validate_repo_id, validate_tag
from hubui.push_retry import (
    _UNPROCESSED_STATUS,
    RETRYABLE_STATUS,
    RetryPolicy,
    _at_commit_endpoint,
    _http_error,
    _transient,
    _translate,
)
from hubui.push_session import _Session, fetch_readme
from hubui.push_types import ProgressFn, PushPlan, PushRequest, PushResult, Verification
from hubui.push_types import ReadmeMode as ReadmeMode  # was defined here
from hubui.push_verify import verify_push

PARITY_FILE = "parity.json"


@functools.cache
def _config_files() -> tuple[str, ...]:
    """The config file names of every registered format: a folder holding none of them is no export folder."""
    return tuple(dict.fromkeys(get_format(n).files.config for n in format_names()))


def __getattr__(name: str) -> Any:
    # CONFIG_FILES was a constant; asking the registry only when it is read keeps this import light.
    if name == "CONFIG_FILES":
        return _config_files()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _origin_line(folder: Path) -> str | None:
    origin = read_weights_origin(folder)
    return origin.describe() if origin is not None else None


def _folder_files(folder: Path) -> list[PlannedFile]:
    files = folder_files(folder)  # refuses links, FIFOs, sockets and devices, naming them
    check_push_sizes(folder, ((f.path, f.size) for f in files))  # the Hub refuses a file over 50 GB: say so first
    configs = _config_files()
    if not any(f.path in configs for f in files):
        raise InvalidInputError(
            f"{str(folder)!r} has no {' or '.join(configs)}: it is not an exported model folder.",
            "Pass the folder that `hubui convert` wrote.",
        )
    return files


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
    """Files pushed with other content than the folder's (a format's ``hf_tokenizer_self`` config)."""
    from hubui.export import hub_config_override

    return hub_config_override(request.folder, request.repo_id, request.hf_tokenizer_self)


# Stands for an existing README that "keep" leaves alone without reading it (it is over the size limit).
_UNREAD_README = "(an existing README, not read: it is larger than hubui reads)"


def _prepare(
    request: PushRequest, card: ModelCard | str | None, token: str | None, say: ProgressFn | None = None
) -> tuple[_Session, list[PlannedFile], str | None, str | None, bool | None, str | None]:
    files = _folder_files(Path(request.folder))
    verdict = check_parity_gate(Path(request.folder), request.allow_failed_parity)
    check_random_weights(Path(request.folder), request.allow_random_weights)
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
        RandomWeightsError: The folder holds random weights and ``request.allow_random_weights`` is false.
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
        weights_origin=_origin_line(Path(request.folder)),
        # The README the repo will have: the uploaded one, else the one kept (unless it was too large to read).
        warnings=() if readme is None and existing == _UNREAD_README else card_warnings(readme or existing),
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
