"""Tags of local Hub repos: ``refs/tags/<name>`` pointing at a commit, stored beside the branches in
``refs.json`` under ``"tags"``, created and deleted by members and resolved wherever a revision is."""

from __future__ import annotations

# resolve_tag_or_short_sha lives with the rest of revision resolution in storage; its name stays importable here.
from hubui.localhub.storage import (
    SHORT_SHA_RE,
    RepoMeta,
    StorageError,
    Store,
    check_branch_name,
    resolve_tag_or_short_sha,
)

__all__ = ["SHORT_SHA_RE", "create_tag", "delete_tag", "resolve_tag_or_short_sha"]


def create_tag(store: Store, meta: RepoMeta, tag: str, revision: str) -> str:
    """Tag ``revision`` (a branch, pull request ref, tag or commit id, short or long) as ``tag``.

    Returns:
        The tagged commit id.

    Raises:
        StorageError: 404 ``RevisionNotFound`` for an unknown revision, 400 for a bad tag name, 409 if the tag exists.
    """
    commit = store.resolve(meta, revision)
    try:
        check_branch_name(tag)
    except StorageError as exc:
        raise StorageError(400, f"Invalid tag name: {tag!r}") from exc
    with store._lock(meta.repo_type, meta.repo_id):
        refs = store.refs(meta)
        tags = refs.setdefault("tags", {})
        if tag in tags:
            raise StorageError(409, f"Tag already exists: refs/tags/{tag}")
        tags[tag] = commit.id
        store._write_refs(meta, refs)
    return commit.id


def delete_tag(store: Store, meta: RepoMeta, tag: str) -> None:
    """Delete ``tag``.

    Raises:
        StorageError: 404 ``RevisionNotFound`` when there is no such tag (a branch name is not a tag).
    """
    name = tag[len("refs/tags/") :] if tag.startswith("refs/tags/") else tag
    with store._lock(meta.repo_type, meta.repo_id):
        refs = store.refs(meta)
        if (refs.get("tags") or {}).pop(name, None) is None:
            raise StorageError(404, f"Invalid rev id: tag {name!r} not found", "RevisionNotFound")
        store._write_refs(meta, refs)
