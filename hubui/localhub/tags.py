"""Tags of local Hub repos: ``refs/tags/<name>`` pointing at a commit, stored beside the branches in
``refs.json`` under ``"tags"``, created and deleted by members and resolved wherever a revision is."""

from __future__ import annotations

import re

from hubui.localhub.storage import RepoMeta, StorageError, Store, check_branch_name

SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,39}$")


def resolve_tag_or_short_sha(store: Store, meta: RepoMeta, refs: dict, revision: str) -> str | None:
    """The commit id a tag name (bare or ``refs/tags/``) or an unambiguous short commit id points at."""
    tags = refs.get("tags") or {}
    name = revision[len("refs/tags/") :] if revision.startswith("refs/tags/") else revision
    if name in tags:
        return tags[name]
    if SHORT_SHA_RE.match(revision):
        folder = store._repo_dir(meta.repo_type, meta.repo_id) / "commits"
        found = [p.stem for p in folder.glob(f"{revision}*.json")]
        if len(found) == 1:
            return found[0]
    return None


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
