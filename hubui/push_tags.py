"""Tags on a pushed commit (``hubui push --tag v1``): refused before any upload when taken, made after the check.

The order matters: a tag says "this commit is the release", so it is made only once the re-downloaded commit
has passed verification (with ``--no-verify``, right after the push, since no check was asked for). A tag that
already exists is refused before anything is uploaded: the Hub would refuse it only after the commit landed,
leaving a pushed but untagged release.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hubui import auth
from hubui.errors import InvalidInputError, PushError

if TYPE_CHECKING:
    from hubui.push_types import PushRequest, PushResult, Verification


def _exists_error(repo_id: str, tag: str, target: str | None) -> InvalidInputError:
    where = f" (it points at {target[:10]})" if target else ""
    return InvalidInputError(
        f"Tag {tag!r} already exists on {repo_id}{where}; nothing was uploaded.",
        "Choose another tag (e.g. the next version), or delete the old tag on the Hub first.",
    )


def check_tag_free(api: HfApi, repo_id: str, tag: str) -> None:
    """Refuse a tag that ``repo_id`` already has (a repo that does not exist has none).

    Args:
        api: A client with the pushing user's token.
        repo_id: The repo.
        tag: The tag to create after the push.

    Raises:
        InvalidInputError: The tag exists; the message says where it points.
        HfHubHTTPError: The refs could not be listed (the caller translates it).
    """
    try:
        refs = api.list_repo_refs(repo_id)
    except RepositoryNotFoundError:
        return
    existing = {t.name: t.target_commit for t in refs.tags}
    if tag in existing:
        raise _exists_error(repo_id, tag, existing[tag])


def create_tag(api: HfApi, repo_id: str, tag: str, commit: str, message: str | None = None) -> None:
    """Tag ``commit`` of ``repo_id``.

    Args:
        api: A client with the pushing user's token.
        repo_id: The repo.
        tag: The tag.
        commit: The pushed commit (40 hex digits).
        message: The tag's message.

    Raises:
        PushError: The Hub refused the tag (for instance, someone made it in the meantime: HTTP 409); the
            commit itself has landed.
    """
    try:
        api.create_tag(repo_id, tag=tag, revision=commit, tag_message=message)
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise PushError(
            f"The push to {repo_id} landed ({commit[:10]}), but the Hub refused the tag {tag!r} "
            f"(HTTP {status}): {exc.server_message or exc}",
            "Create the tag on the Hub, or with `hf` / HfApi.create_tag, on that commit.",
        ) from exc


def tag_after_push(
    request: PushRequest,
    result: PushResult,
    verification: Verification | None,
    token: str | None,
    say: Callable[[str], None],
) -> str | None:
    """Create ``request.tag`` on the pushed commit when the verification passed (or none was asked for).

    Args:
        request: The push request (``tag`` ``None``: nothing to do).
        result: What the push returned.
        verification: The verification, or ``None`` when it was skipped (``--no-verify``).
        token: The token used to push.
        say: Receives a line saying what was tagged, or why not.

    Returns:
        The tag created, or ``None`` (no tag asked for, or the verification did not pass).

    Raises:
        PushError: The Hub refused the tag (the commit has landed).
    """
    if request.tag is None:
        return None
    if verification is not None and verification.status != "passed":
        say(f"tag {request.tag!r} NOT created: the verification {verification.status}")
        return None
    api = HfApi(endpoint=auth.endpoint(), token=auth.resolve_token(token))
    create_tag(api, result.repo_id, request.tag, result.commit_oid, request.commit_message)
    say(f"tagged {result.commit_oid[:10]} as {request.tag!r}")
    return request.tag


__all__ = ["check_tag_free", "create_tag", "tag_after_push"]
