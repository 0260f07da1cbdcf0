"""How the local Hub decides what an upload does, as the Hub does: the repo's own ``.gitattributes`` says
which files go through LFS, its ``.gitignore`` which are ignored, and a path the Hub cannot store is a 422.
Also ``expand=True`` on tree and paths-info: each entry's last commit.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from hubui.localhub.storage import (
    LFS_PATTERNS,
    LFS_SIZE_THRESHOLD,
    Commit,
    RepoMeta,
    StorageError,
    Store,
    check_path,
)

MAX_RULES_FILE = 1 << 20  # a .gitattributes/.gitignore larger than this is not read (the defaults apply)


def _text(store: Store, commit: Commit, path: str) -> str | None:
    entry = commit.files.get(path)
    if entry is None or entry.lfs or entry.size > MAX_RULES_FILE:
        return None
    try:
        return store.object_path(entry.sha256).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _rules(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _matches(pattern: str, path: str) -> bool:
    """gitignore/gitattributes matching, the common cases: ``*.bin``, ``name``, ``dir/*``, ``dir/``, ``/root.txt``."""
    if pattern.endswith("/"):
        folder = pattern.strip("/")
        return path.startswith(folder + "/") or ("/" not in folder and f"/{folder}/" in f"/{path}")
    if "/" in pattern:
        return fnmatch.fnmatchcase(path, pattern.lstrip("/"))
    return any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/"))


def lfs_patterns(store: Store, commit: Commit) -> list[tuple[str, bool]]:
    """``(pattern, is_lfs)`` from the repo's ``.gitattributes``, later lines winning; the Hub's defaults without one."""
    text = _text(store, commit, ".gitattributes")
    if text is None:
        return [(p, True) for p in LFS_PATTERNS]
    out = []
    for line in _rules(text):
        pattern, *attrs = line.split()
        if "filter=lfs" in attrs:
            out.append((pattern, True))
        elif "-filter" in attrs or "!filter" in attrs:
            out.append((pattern, False))
    return out


def wants_lfs(patterns: list[tuple[str, bool]], path: str, size: int, sample: bytes) -> bool:
    """LFS when the repo's ``.gitattributes`` says so, else for large or binary files."""
    decided = None
    for pattern, is_lfs in patterns:
        if _matches(pattern, path):
            decided = is_lfs
    if decided is not None:
        return decided
    return size >= LFS_SIZE_THRESHOLD or b"\0" in sample


def ignored(gitignore: str | None, path: str) -> bool:
    """Whether ``.gitignore`` text ignores ``path`` (``!pattern`` re-includes)."""
    if not gitignore:
        return False
    result = False
    for rule in _rules(gitignore):
        negate = rule.startswith("!")
        if _matches(rule[1:] if negate else rule, path):
            result = not negate
    return result


def repo_gitignore(store: Store, commit: Commit) -> str | None:
    return _text(store, commit, ".gitignore")


def checked_path(path: str) -> str:
    """A path the Hub can store.

    Raises:
        StorageError: 422 naming the path (the Hub answers 422 for paths like ``..\\x`` or ``/abs``).
    """
    try:
        return check_path(path)
    except StorageError as exc:
        raise StorageError(422, exc.message) from exc


def last_commits(store: Store, meta: RepoMeta, commit: Commit, paths: list[str]) -> dict[str, Commit]:
    """For each file or folder path, the newest commit reachable from ``commit`` (first parents) that changed it."""
    want = {p: (p in commit.files) for p in paths}  # True: a file, False: a folder
    found: dict[str, Commit] = {}
    cur: Commit | None = commit
    while want and cur is not None:
        parent = store.get_commit(meta, cur.parents[0]) if cur.parents else None
        before = parent.files if parent is not None else {}
        changed = {p for p in set(cur.files) | set(before) if cur.files.get(p) != before.get(p)}
        for p, is_file in list(want.items()):
            hit = p in changed if is_file else any(c.startswith(p.rstrip("/") + "/") for c in changed)
            if hit:
                found[p] = cur
                del want[p]
        cur = parent
    return found


def add_last_commits(store: Store, meta: RepoMeta, commit: Commit, entries: list[dict[str, Any]]) -> None:
    """Put ``lastCommit`` ``{id, title, date}`` on each tree/paths-info entry (``expand=True``)."""
    found = last_commits(store, meta, commit, [e["path"] for e in entries])
    for e in entries:
        c = found.get(e["path"])
        if c is not None:
            e["lastCommit"] = {"id": c.id, "title": c.summary, "date": c.date}
