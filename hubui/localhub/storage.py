"""On-disk storage of the local Hub: repos, their refs and commits, and the list of their discussions.

Layout under ``root``::

    localhub.lock                       flock'ed by the one server using the root; holds its PID
    objects/ab/<sha256>                 every file's bytes, addressed by sha256 (LFS and regular alike)
    tmp/                                uploads in flight; same filesystem, so a finished one is renamed in
    repos/<type>/<ns>/<name>/repo.json  visibility, sdk, creation date
    repos/.../refs.json                 {"heads": {branch: commit}, "prs": {"N": commit}}
    repos/.../commits/<sha1>.json       parents, author, message, date and the full file table
    repos/.../discussions.json          discussions and pull requests
    repos/.../lfs/<sha256>              marks an LFS object as uploaded *to this repo*

Why it is crash-safe: objects and commit files are immutable and written (then fsynced) before the
ref moves, and a ref moves with one ``os.replace`` of ``refs.json``. A crash at any point leaves
either the old ref or the new one, each pointing at a complete commit. Objects are only renamed into
``objects/`` after their sha256 and size were checked.

The records it reads and writes are in :mod:`hubui.localhub.records`, the objects in :mod:`hubui.localhub.objects`,
the atomic writes in :mod:`hubui.localhub.diskio`; their names are importable from here too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from dataclasses import asdict
from pathlib import Path

# Under these names so that every write here goes through storage._write_atomic (a crash test swaps it for one that
# dies just before a ref moves).
from hubui.localhub.diskio import read_json as _read_json
from hubui.localhub.diskio import write_atomic as _write_atomic
from hubui.localhub.objects import ObjectReceiver, ObjectStore

# StorageError and check_path live in their own modules; the server and the discussions import them from here.
from hubui.localhub.paths import check_path, check_tree
from hubui.localhub.records import (
    GITATTRIBUTES,
    LFS_PATTERNS,
    LFS_SIZE_THRESHOLD,
    MAX_REGULAR_FILE,
    NAME_RE,
    REPO_TYPES,
    SHA1_RE,
    SHA256_RE,
    AddFile,
    AddLfsFile,
    Commit,
    Delete,
    Discussion,
    FileEntry,
    Operation,
    RepoMeta,
    check_branch_name,
    git_blob_sha1,
    lfs_pointer,
    now_iso,
    wants_lfs,
)
from hubui.localhub.rootlock import RootLock
from hubui.localhub.storage_errors import StorageError

__all__ = [
    "GITATTRIBUTES",
    "LFS_PATTERNS",
    "LFS_SIZE_THRESHOLD",
    "MAX_REGULAR_FILE",
    "NAME_RE",
    "REPO_TYPES",
    "SHA1_RE",
    "SHA256_RE",
    "SHORT_SHA_RE",
    "AddFile",
    "AddLfsFile",
    "Commit",
    "Delete",
    "Discussion",
    "FileEntry",
    "ObjectReceiver",
    "ObjectStore",
    "Operation",
    "RepoMeta",
    "StorageError",
    "Store",
    "_read_json",
    "_write_atomic",
    "check_branch_name",
    "check_path",
    "git_blob_sha1",
    "lfs_pointer",
    "now_iso",
    "resolve_tag_or_short_sha",
    "wants_lfs",
]

# Tags are created and deleted in hubui.localhub.tags; reading them is part of resolving a revision, so it is here.
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


class Store(ObjectStore):
    """The local Hub's storage. Thread-safe: ref updates take a per-repo lock.

    Only one Store at a time may open a root, in any process: it holds ``<root>/localhub.lock`` until
    :meth:`close` (or until the process ends).

    Args:
        root: The folder everything lives in. Created if missing.

    Raises:
        LocalHubRootInUseError: If another Store (a running local Hub) has the root open.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # Before anything else touches the root: a second server would clean the first one's uploads in flight
        # and overwrite the refs it moves (commits answered 200, then lost).
        self._root_lock = RootLock.acquire(self.root)
        for sub in ("objects", "tmp", "repos"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._clean_tmp()

    def close(self) -> None:
        """Give the root back, so that another Store or server may open it (idempotent)."""
        self._root_lock.release()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- secrets --------------------------------------------------------------------------------------
    def signing_key(self) -> bytes:
        """A per-root random key that signs LFS upload links, so they survive a restart."""
        path = self.root / "signing.key"
        if not path.exists():
            _write_atomic(path, os.urandom(32))
            os.chmod(path, 0o600)
        return path.read_bytes()

    # --- repos ----------------------------------------------------------------------------------------
    def _repo_dir(self, repo_type: str, repo_id: str) -> Path:
        ns, name = repo_id.split("/", 1)
        return self.root / "repos" / repo_type / ns / name

    def _lock(self, repo_type: str, repo_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((repo_type, repo_id.lower()), threading.Lock())

    def get_repo(self, repo_type: str, repo_id: str) -> RepoMeta | None:
        if repo_type not in REPO_TYPES or repo_id.count("/") != 1:
            return None
        ns, name = repo_id.split("/")
        if not (NAME_RE.match(ns) and NAME_RE.match(name)):
            return None
        path = self._repo_dir(repo_type, repo_id) / "repo.json"
        if not path.is_file():
            return None
        return RepoMeta(**_read_json(path))

    def list_repos(self) -> list[RepoMeta]:
        metas = []
        for path in sorted((self.root / "repos").glob("*/*/*/repo.json")):
            metas.append(RepoMeta(**_read_json(path)))
        return metas

    def create_repo(
        self, repo_type: str, namespace: str, name: str, *, private: bool, author: str, sdk: str | None = None
    ) -> RepoMeta:
        """Create a repo with one commit holding ``.gitattributes``.

        Raises:
            StorageError: 400 for a bad name or type, 409 if it exists.
        """
        if repo_type not in REPO_TYPES:
            raise StorageError(400, f"Invalid repo type {repo_type!r}")
        for part in (namespace, name):
            if not NAME_RE.match(part) or ".." in part or part.endswith((".git", ".")):
                raise StorageError(
                    400,
                    f"Invalid repo name: {f'{namespace}/{name}'!r}: use up to 96 letters, digits, '-', '_' or '.', "
                    "not ending in '.' or '.git'",
                )
        repo_id = f"{namespace}/{name}"
        with self._lock(repo_type, repo_id):
            if self.get_repo(repo_type, repo_id) is not None or self._case_clash(repo_type, repo_id):
                raise StorageError(409, f"You already created this {repo_type} repo: {repo_id}", "RepoExists")
            meta = RepoMeta(repo_type, namespace, name, private, now_iso(), sdk)
            entry = self.put_bytes(GITATTRIBUTES.encode())
            commit = self._write_commit(meta, (), author, "initial commit", "", {".gitattributes": entry})
            d = self._repo_dir(repo_type, repo_id)
            _write_atomic(d / "refs.json", json.dumps({"heads": {"main": commit.id}, "prs": {}}).encode())
            # repo.json last: a repo exists only once it is complete.
            _write_atomic(d / "repo.json", json.dumps(asdict(meta)).encode())
        return meta

    def _case_clash(self, repo_type: str, repo_id: str) -> bool:
        return any(m.repo_id.lower() == repo_id.lower() for m in self.list_repos() if m.repo_type == repo_type)

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        import shutil

        with self._lock(repo_type, repo_id):
            d = self._repo_dir(repo_type, repo_id)
            # Remove repo.json first so a crash mid-delete leaves an invisible repo, not a broken one.
            with contextlib.suppress(FileNotFoundError):
                (d / "repo.json").unlink()
            shutil.rmtree(d, ignore_errors=True)

    def set_private(self, meta: RepoMeta, private: bool) -> RepoMeta:
        with self._lock(meta.repo_type, meta.repo_id):
            new = RepoMeta(**{**asdict(meta), "private": private})
            _write_atomic(self._repo_dir(meta.repo_type, meta.repo_id) / "repo.json", json.dumps(asdict(new)).encode())
        return new

    # --- refs and commits -----------------------------------------------------------------------------
    def refs(self, meta: RepoMeta) -> dict[str, dict[str, str]]:
        return _read_json(self._repo_dir(meta.repo_type, meta.repo_id) / "refs.json")

    def _write_refs(self, meta: RepoMeta, refs: dict[str, dict[str, str]]) -> None:
        _write_atomic(self._repo_dir(meta.repo_type, meta.repo_id) / "refs.json", json.dumps(refs).encode())

    def get_commit(self, meta: RepoMeta, oid: str) -> Commit | None:
        if not SHA1_RE.match(oid):
            return None
        path = self._repo_dir(meta.repo_type, meta.repo_id) / "commits" / f"{oid}.json"
        if not path.is_file():
            return None
        return Commit.from_json(_read_json(path))

    def resolve(self, meta: RepoMeta, revision: str) -> Commit:
        """Resolve a branch, ``refs/heads/x``, ``refs/pr/N`` or a 40-hex commit id.

        Raises:
            StorageError: 404 ``RevisionNotFound``.
        """
        refs = self.refs(meta)
        oid: str | None = None
        if revision.startswith("refs/heads/"):
            oid = refs["heads"].get(revision[len("refs/heads/") :])
        elif revision.startswith("refs/pr/"):
            oid = refs["prs"].get(revision[len("refs/pr/") :])
        elif revision in refs["heads"]:
            oid = refs["heads"][revision]
        elif SHA1_RE.match(revision):
            oid = revision
        else:
            oid = resolve_tag_or_short_sha(self, meta, refs, revision)
        commit = self.get_commit(meta, oid) if oid else None
        if commit is None:
            raise StorageError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def history(self, meta: RepoMeta, revision: str) -> list[Commit]:
        """Commits reachable from ``revision`` by first parents, newest first."""
        commit: Commit | None = self.resolve(meta, revision)
        out = []
        while commit is not None:
            out.append(commit)
            commit = self.get_commit(meta, commit.parents[0]) if commit.parents else None
        return out

    def _write_commit(
        self,
        meta: RepoMeta,
        parents: tuple[str, ...],
        author: str,
        summary: str,
        description: str,
        files: dict[str, FileEntry],
    ) -> Commit:
        # Not a git commit id, but a stable 40-hex digest of everything the commit holds.
        date = now_iso()
        body = {
            "parents": list(parents),
            "author": author,
            "summary": summary,
            "description": description,
            "date": date,
            "files": {p: asdict(e) for p, e in sorted(files.items())},
        }
        oid = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()
        commit = Commit(oid, parents, author, summary, description, date, dict(sorted(files.items())))
        path = self._repo_dir(meta.repo_type, meta.repo_id) / "commits" / f"{oid}.json"
        _write_atomic(path, json.dumps(commit.to_json()).encode())
        return commit

    def create_branch(self, meta: RepoMeta, branch: str, starting_point: str | None) -> str:
        """Create ``branch`` at ``starting_point`` (default: main's head).

        Raises:
            StorageError: 400 bad name, 404 bad starting point, 409 exists.
        """
        check_branch_name(branch)
        with self._lock(meta.repo_type, meta.repo_id):
            start = self.resolve(meta, starting_point or "main")
            refs = self.refs(meta)
            if branch in refs["heads"]:
                raise StorageError(409, f"Reference refs/heads/{branch} already exists")
            refs["heads"][branch] = start.id
            self._write_refs(meta, refs)
        return start.id

    def delete_branch(self, meta: RepoMeta, branch: str) -> None:
        with self._lock(meta.repo_type, meta.repo_id):
            refs = self.refs(meta)
            if branch == "main":
                raise StorageError(400, "Cannot delete refs/heads/main: it is the default branch")
            if refs["heads"].pop(branch, None) is None:
                raise StorageError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            self._write_refs(meta, refs)

    # --- LFS scoping ----------------------------------------------------------------------------------
    def repo_has_lfs(self, meta: RepoMeta, sha256: str, size: int) -> bool:
        marker = self._repo_dir(meta.repo_type, meta.repo_id) / "lfs" / sha256
        return marker.is_file() and self.has_object(sha256, size)

    def mark_lfs(self, meta: RepoMeta, sha256: str) -> None:
        marker = self._repo_dir(meta.repo_type, meta.repo_id) / "lfs" / sha256
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    # --- commits --------------------------------------------------------------------------------------
    def commit(
        self,
        meta: RepoMeta,
        revision: str,
        operations: list[Operation],
        *,
        author: str,
        summary: str,
        description: str = "",
        parent_commit: str | None = None,
        create_pr: bool = False,
        pr_title: str | None = None,
    ) -> tuple[Commit, int | None]:
        """Apply ``operations`` on top of ``revision`` as one atomic commit.

        With ``create_pr`` the commit goes to a new ``refs/pr/N`` whose base is ``revision``, which
        stays unchanged.

        Returns:
            The new commit and the pull request number (``None`` without ``create_pr``).

        Raises:
            StorageError: 400 for bad operations or a missing LFS object, 404 for an unknown revision,
                412 for a stale ``parent_commit``.
        """
        if not summary.strip():
            raise StorageError(400, "The commit summary must not be empty")
        if revision.startswith("refs/heads/"):
            revision = revision[len("refs/heads/") :]
        with self._lock(meta.repo_type, meta.repo_id):
            refs = self.refs(meta)
            if revision in refs["heads"]:
                kind, key = "heads", revision
            elif revision.startswith("refs/pr/") and revision[len("refs/pr/") :] in refs["prs"]:
                if create_pr:
                    raise StorageError(400, "Cannot open a pull request on a pull request ref")
                kind, key = "prs", revision[len("refs/pr/") :]
            else:
                raise StorageError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = self.get_commit(meta, refs[kind][key])
            if head is None:
                raise StorageError(500, f"The ref {revision} points at a missing commit; the store is damaged")
            if parent_commit is not None and parent_commit != head.id:
                raise StorageError(
                    412,
                    "The branch was updated since you opened this page. Please refresh and try again. "
                    f"(parent {parent_commit} is not the head {head.id} of {revision})",
                )
            files = dict(head.files)
            for op in operations:
                self._apply(meta, files, op)
            check_tree(files, [op.path for op in operations if not isinstance(op, Delete)])
            commit = self._write_commit(meta, (head.id,), author, summary, description, files)
            pr_num = None
            if create_pr:
                pr_num = self._new_discussion(meta, pr_title or summary, description, author, True, base=key)
                refs = self.refs(meta)
                refs["prs"][str(pr_num)] = commit.id
            else:
                refs[kind][key] = commit.id
            self._write_refs(meta, refs)
        return commit, pr_num

    def _apply(self, meta: RepoMeta, files: dict[str, FileEntry], op: Operation) -> None:
        if isinstance(op, AddFile):
            files[check_path(op.path)] = op.entry
        elif isinstance(op, AddLfsFile):
            check_path(op.path)
            if not SHA256_RE.match(op.sha256):
                raise StorageError(400, f"Invalid LFS oid for {op.path!r}: {op.sha256!r}")
            if not self.repo_has_lfs(meta, op.sha256, op.size):
                raise StorageError(
                    400,
                    f"Your push was rejected because an LFS pointer ({op.path}) points to an object that "
                    "was never uploaded to this repo, or has another size",
                )
            files[op.path] = FileEntry(
                size=op.size, sha256=op.sha256, blob_id=git_blob_sha1(lfs_pointer(op.sha256, op.size)), lfs=True
            )
        elif op.folder:
            prefix = op.path.rstrip("/") + "/"
            doomed = [p for p in files if p.startswith(prefix)]
            if not doomed:
                raise StorageError(404, f"Folder not found in repo: {op.path!r}", "EntryNotFound")
            for p in doomed:
                del files[p]
        else:
            if files.pop(op.path, None) is None:
                # The Hub deletes a folder named without its trailing '/' too (huggingface_hub sends "deletedFile").
                doomed = [p for p in files if p.startswith(op.path + "/")]
                if not doomed:
                    raise StorageError(404, f"File not found in repo: {op.path!r}", "EntryNotFound")
                for p in doomed:
                    del files[p]

    # --- discussions ----------------------------------------------------------------------------------
    def _discussions_path(self, meta: RepoMeta) -> Path:
        return self._repo_dir(meta.repo_type, meta.repo_id) / "discussions.json"

    def discussions(self, meta: RepoMeta) -> list[Discussion]:
        path = self._discussions_path(meta)
        if not path.is_file():
            return []
        return [Discussion(**d) for d in _read_json(path)]

    def _new_discussion(
        self, meta: RepoMeta, title: str, description: str, author: str, is_pr: bool, base: str | None
    ) -> int:
        items = self.discussions(meta)
        num = max((d.num for d in items), default=0) + 1
        items.append(Discussion(num, title, description, author, is_pr, "open", now_iso(), base))
        _write_atomic(self._discussions_path(meta), json.dumps([asdict(d) for d in items]).encode())
        return num

    def create_discussion(self, meta: RepoMeta, title: str, description: str, author: str, is_pr: bool) -> int:
        """Open a discussion; a pull request also gets ``refs/pr/N`` at main's head."""
        with self._lock(meta.repo_type, meta.repo_id):
            num = self._new_discussion(meta, title, description, author, is_pr, base="main" if is_pr else None)
            if is_pr:
                refs = self.refs(meta)
                refs["prs"][str(num)] = refs["heads"]["main"]
                self._write_refs(meta, refs)
        return num
