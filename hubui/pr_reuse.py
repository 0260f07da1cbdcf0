"""Finding an open pull request that already proposes exactly the files a push would send.

Proposing a converted checkpoint to someone else's repo (``hubui push --create-pr``) is often run twice: a
retry, a script, a second click. Each run would open one more identical PR for the owner to close. Before
opening one, hubui looks at the repo's open PRs against the same base branch and compares, file by file,
what each PR's head (``refs/pr/N``) holds with what the push would commit: the sha256 for LFS files, the git
blob id for the others (the ids the Hub reports in its tree). A PR that holds every one of them unchanged
already proposes these exact files, and is reused instead.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

logger = logging.getLogger(__name__)

# The newest open PRs looked at; each costs two small requests. Older ones are not looked at.
MAX_PRS_CHECKED = 20


@dataclass(frozen=True)
class OpenPullRequest:
    """An open PR whose head holds the files of the push.

    Args:
        num: The PR number.
        url: Its page.
        head: The commit at ``refs/pr/N``.
        author: Who opened it.
    """

    num: int
    url: str
    head: str
    author: str | None

    @property
    def revision(self) -> str:
        return f"refs/pr/{self.num}"


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _same(operation: CommitOperationAdd, remote: object) -> bool:
    lfs = getattr(remote, "lfs", None)
    if lfs is not None:
        return bool(lfs.sha256 == operation.upload_info.sha256.hex())
    if operation.upload_info.size > 10 * 1024 * 1024:
        return False  # a regular (non-LFS) file on the Hub is at most 10 MB: this one cannot be it
    with operation.as_file() as handle:
        return _git_blob_sha1(handle.read()) == getattr(remote, "blob_id", None)


def find_identical_open_pr(
    api: HfApi, repo_id: str, base: str, operations: Sequence[CommitOperationAdd]
) -> OpenPullRequest | None:
    """The newest open PR against ``base`` whose head holds every file of ``operations`` unchanged.

    Args:
        api: A client with the pushing user's token.
        repo_id: The repo.
        base: The branch the PR would target (``main`` or the request's branch).
        operations: The additions the push would commit (their sha256 is already computed).

    Returns:
        The PR, or ``None`` when no open PR holds the same files (or the Hub cannot list them: the push
        then opens a PR as it would have anyway).
    """
    wanted = {op.path_in_repo: op for op in operations}
    try:
        prs = [
            d
            for d in api.get_repo_discussions(repo_id, discussion_type="pull_request", discussion_status="open")
            if d.is_pull_request and d.status == "open"
        ]
    except HfHubHTTPError as exc:
        logger.warning("Could not list the open PRs of %s (%s); opening a new one", repo_id, exc)
        return None
    for pr in sorted(prs, key=lambda d: d.num, reverse=True)[:MAX_PRS_CHECKED]:
        revision = f"refs/pr/{pr.num}"
        try:
            details = api.get_discussion_details(repo_id, pr.num)
            if (details.target_branch or "refs/heads/main").removeprefix("refs/heads/") != base:
                continue
            found = {p.path: p for p in api.get_paths_info(repo_id, list(wanted), revision=revision)}
            if set(found) != set(wanted) or not all(_same(op, found[path]) for path, op in wanted.items()):
                continue
            head = api.model_info(repo_id, revision=revision).sha
        except HfHubHTTPError as exc:
            logger.warning("Could not read PR #%d of %s (%s); skipping it", pr.num, repo_id, exc)
            continue
        return OpenPullRequest(pr.num, pr.url, str(head), pr.author)
    return None


__all__ = ["MAX_PRS_CHECKED", "OpenPullRequest", "find_identical_open_pr"]
