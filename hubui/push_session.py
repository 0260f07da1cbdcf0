"""One push's session: the checked request, the token's identity and rights, and a client that retries; and
:func:`fetch_readme`, the README a repo has now."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubui import auth
from hubui.card_merge import MERGE_MODES
from hubui.card_yaml import check_readme_size
from hubui.errors import HubUnreachableError, InvalidCardError, InvalidInputError, NamespaceForbiddenError
from hubui.push_names import validate_branch, validate_repo_id, validate_tag
from hubui.push_retry import RetryPolicy, _not_retried_by_hf_hub, _retrying

if TYPE_CHECKING:
    from hubui.push_types import ProgressFn, PushRequest


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


__all__ = ["fetch_readme"]
