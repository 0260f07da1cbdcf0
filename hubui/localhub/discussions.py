"""Discussions and pull requests of the local Hub: comments, status, titles, merges and diffs.

The discussion list itself (number, title, author, status) lives in the store's ``discussions.json``;
what happens on each discussion (comments and their edits, renames, status changes, merge commit) lives
next to it in ``discussion-events.json``. A discussion with no stored events still has the one the Hub
always shows first: its description, as a comment by its author. A pull request's commits are not
stored as events: they are the commits of ``refs/pr/N`` that its base did not have, read from the refs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hubui.localhub.paths import check_tree
from hubui.localhub.storage import (
    Commit,
    Discussion,
    FileEntry,
    RepoMeta,
    StorageError,
    Store,
    _read_json,
    _write_atomic,
    now_iso,
)

EVENTS_FILE = "discussion-events.json"
MAX_DIFF_FILE = 1 << 20  # larger regular files are shown as changed, not line by line
STATUSES = ("open", "closed")


def _event_id() -> str:
    return os.urandom(12).hex()


def _user_json(name: str) -> dict[str, Any]:
    return {"name": name, "type": "user", "fullname": name, "avatarUrl": "", "isPro": False}


def comment_event(author: str, text: str, *, event_id: str | None = None, date: str | None = None) -> dict[str, Any]:
    """A ``comment`` event as the Hub returns it."""
    date = date or now_iso()
    return {
        "id": event_id or _event_id(),
        "type": "comment",
        "createdAt": date,
        "author": _user_json(author),
        "data": {
            "edited": False,
            "hidden": False,
            "numEdits": 0,
            "editors": [author],
            "reactions": [],
            "latest": {"raw": text, "html": "", "updatedAt": date, "author": _user_json(author)},
        },
    }


def _simple_event(kind: str, author: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": _event_id(), "type": kind, "createdAt": now_iso(), "author": _user_json(author), "data": data}


class DiscussionBook:
    """Everything that happens on a repo's discussions and pull requests.

    Args:
        store: The local Hub's store; its per-repo lock guards every change made here.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- files ----------------------------------------------------------------------------------------
    def _events_path(self, meta: RepoMeta) -> Path:
        return self.store._repo_dir(meta.repo_type, meta.repo_id) / EVENTS_FILE

    def _load(self, meta: RepoMeta) -> dict[str, dict[str, Any]]:
        path = self._events_path(meta)
        return _read_json(path) if path.is_file() else {}

    def _save(self, meta: RepoMeta, extra: dict[str, dict[str, Any]]) -> None:
        _write_atomic(self._events_path(meta), json.dumps(extra).encode())

    def _save_discussion(self, meta: RepoMeta, new: Discussion) -> None:
        items = [new if d.num == new.num else d for d in self.store.discussions(meta)]
        _write_atomic(self.store._discussions_path(meta), json.dumps([asdict(d) for d in items]).encode())

    def get(self, meta: RepoMeta, num: int) -> Discussion:
        """The discussion ``num``.

        Raises:
            StorageError: 404 when the repo has no such discussion.
        """
        for d in self.store.discussions(meta):
            if d.num == num:
                return d
        raise StorageError(404, f"Discussion #{num} not found in {meta.repo_id}")

    def _stored_events(self, meta: RepoMeta, d: Discussion, extra: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        entry = extra.get(str(d.num))
        if entry is not None:
            return list(entry["events"])
        first_id = hashlib.sha1(f"{meta.repo_type}/{meta.repo_id}#{d.num}".encode()).hexdigest()[:24]
        return [comment_event(d.author, d.description, event_id=first_id, date=d.created_at)]

    def merge_commit_id(self, meta: RepoMeta, num: int) -> str | None:
        return self._load(meta).get(str(num), {}).get("mergeCommitId")

    # --- reads ----------------------------------------------------------------------------------------
    def events(self, meta: RepoMeta, d: Discussion) -> list[dict[str, Any]]:
        """The discussion's events, oldest first, with a pull request's commits among them."""
        events = self._stored_events(meta, d, self._load(meta))
        if d.is_pull_request:
            for c in self.pr_commits(meta, d):
                events.append(
                    {
                        "id": c.id[:24],
                        "type": "commit",
                        "createdAt": c.date,
                        "author": _user_json(c.author),
                        "data": {"subject": c.summary, "oid": c.id},
                    }
                )
            # The opening comment stays first: the commit of a PR opened by create_commit predates it.
            events[1:] = sorted(events[1:], key=lambda e: e["createdAt"])
        return events

    def num_comments(self, meta: RepoMeta, d: Discussion) -> int:
        return sum(1 for e in self._stored_events(meta, d, self._load(meta)) if e["type"] == "comment")

    def _ancestors(self, meta: RepoMeta, oid: str) -> set[str]:
        seen: set[str] = set()
        todo = [oid]
        while todo:
            cur = todo.pop()
            if cur in seen:
                continue
            seen.add(cur)
            commit = self.store.get_commit(meta, cur)
            if commit is not None:
                todo.extend(commit.parents)
        return seen

    def _merge_base(self, meta: RepoMeta, d: Discussion) -> tuple[Commit, Commit]:
        """The pull request's tip and the newest commit it shares with its base."""
        refs = self.store.refs(meta)
        tip = self.store.get_commit(meta, refs["prs"].get(str(d.num), ""))
        if tip is None:
            raise StorageError(500, f"refs/pr/{d.num} points at a missing commit; the store is damaged")
        stored = self._load(meta).get(str(d.num), {}).get("mergeBase")
        if stored:
            base = self.store.get_commit(meta, stored)
            if base is not None:
                return tip, base
        head = refs["heads"].get(d.base or "main")
        shared = self._ancestors(meta, head) if head else set()
        cur: Commit | None = tip
        while cur is not None and cur.id not in shared:
            cur = self.store.get_commit(meta, cur.parents[0]) if cur.parents else None
        return tip, (cur or tip)

    def pr_commits(self, meta: RepoMeta, d: Discussion) -> list[Commit]:
        """The commits of ``refs/pr/N`` since its merge base, oldest first."""
        tip, base = self._merge_base(meta, d)
        out: list[Commit] = []
        cur: Commit | None = tip
        while cur is not None and cur.id != base.id:
            out.append(cur)
            cur = self.store.get_commit(meta, cur.parents[0]) if cur.parents else None
        return out[::-1]

    def diff(self, meta: RepoMeta, d: Discussion) -> str:
        """A git-style diff of what the pull request changes against its merge base."""
        tip, base = self._merge_base(meta, d)
        return "".join(self._file_diff(p, base.files.get(p), tip.files.get(p)) for p in _changed(base.files, tip.files))

    def _text(self, entry: FileEntry | None) -> list[str] | None:
        if entry is None:
            return []
        if entry.lfs:
            lines = f"version https://git-lfs.github.com/spec/v1\noid sha256:{entry.sha256}\nsize {entry.size}\n"
            return lines.splitlines(keepends=True)
        if entry.size > MAX_DIFF_FILE:
            return None
        try:
            return self.store.object_path(entry.sha256).read_bytes().decode("utf-8").splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            return None

    def _file_diff(self, path: str, old: FileEntry | None, new: FileEntry | None) -> str:
        head = f"diff --git a/{path} b/{path}\n"
        if old is None:
            head += "new file mode 100644\n"
        elif new is None:
            head += "deleted file mode 100644\n"
        head += f"index {(old.blob_id if old else '0' * 40)[:7]}..{(new.blob_id if new else '0' * 40)[:7]}\n"
        a, b = self._text(old), self._text(new)
        if a is None or b is None:
            return head + f"Binary files a/{path} and b/{path} differ\n"
        lines = difflib.unified_diff(
            a, b, fromfile=f"a/{path}" if old else "/dev/null", tofile=f"b/{path}" if new else "/dev/null"
        )
        no_eol = "\n\\ No newline at end of file\n"
        return head + "".join(line if line.endswith("\n") else line + no_eol for line in lines)

    # --- changes --------------------------------------------------------------------------------------
    def _append(self, meta: RepoMeta, d: Discussion, *events: dict[str, Any]) -> None:
        extra = self._load(meta)
        entry = extra.setdefault(str(d.num), {"events": self._stored_events(meta, d, extra)})
        entry["events"].extend(events)
        self._save(meta, extra)

    def comment(self, meta: RepoMeta, num: int, author: str, text: str) -> dict[str, Any]:
        """Add a comment; returns its event."""
        if not text.strip():
            raise StorageError(400, "A comment must not be empty")
        with self.store._lock(meta.repo_type, meta.repo_id):
            d = self.get(meta, num)
            event = comment_event(author, text)
            self._append(meta, d, event)
        return event

    def set_status(self, meta: RepoMeta, num: int, author: str, status: str, comment: str = "") -> dict[str, Any]:
        """Close or reopen; returns the status-change event.

        Raises:
            StorageError: 400 for another status or a merged pull request.
        """
        if status not in STATUSES:
            raise StorageError(400, f"Invalid status {status!r}: use 'open' or 'closed'")
        with self.store._lock(meta.repo_type, meta.repo_id):
            d = self.get(meta, num)
            if d.status == "merged":
                raise StorageError(400, f"Pull request #{num} is merged; its status cannot change")
            event = _simple_event("status-change", author, {"status": status})
            events = [event] + ([comment_event(author, comment)] if comment.strip() else [])
            self._append(meta, d, *events)
            self._save_discussion(meta, replace(d, status=status))
        return event

    def rename(self, meta: RepoMeta, num: int, author: str, title: str) -> dict[str, Any]:
        """Change the title; returns the title-change event."""
        title = title.strip()
        if not title or len(title) > 200:
            raise StorageError(400, "A title must be 1 to 200 characters")
        with self.store._lock(meta.repo_type, meta.repo_id):
            d = self.get(meta, num)
            event = _simple_event("title-change", author, {"from": d.title, "to": title})
            self._append(meta, d, event)
            self._save_discussion(meta, replace(d, title=title))
        return event

    def find_comment(self, meta: RepoMeta, num: int, comment_id: str) -> dict[str, Any]:
        d = self.get(meta, num)
        for e in self._stored_events(meta, d, self._load(meta)):
            if e["id"] == comment_id and e["type"] == "comment":
                return e
        raise StorageError(404, f"Comment {comment_id} not found in discussion #{num}")

    def update_comment(
        self, meta: RepoMeta, num: int, comment_id: str, editor: str, *, text: str | None = None, hide: bool = False
    ) -> dict[str, Any]:
        """Edit a comment's text or hide it; returns the updated event."""
        with self.store._lock(meta.repo_type, meta.repo_id):
            d = self.get(meta, num)
            extra = self._load(meta)
            entry = extra.setdefault(str(d.num), {"events": self._stored_events(meta, d, extra)})
            for e in entry["events"]:
                if e["id"] == comment_id and e["type"] == "comment":
                    data = e["data"]
                    if text is not None:
                        if not text.strip():
                            raise StorageError(400, "A comment must not be empty")
                        data["edited"], data["numEdits"] = True, data["numEdits"] + 1
                        data["latest"] = {**data["latest"], "raw": text, "updatedAt": now_iso()}
                        data["editors"] = sorted({*data["editors"], editor})
                    if hide:
                        data["hidden"] = True
                    self._save(meta, extra)
                    return e
        raise StorageError(404, f"Comment {comment_id} not found in discussion #{num}")

    def merge(self, meta: RepoMeta, num: int, author: str, comment: str = "") -> Commit:
        """Merge pull request ``num`` into its base with a merge commit.

        Raises:
            StorageError: 400 if it is not an open pull request, 409 when a file it changes also changed on
                the base since (the message names the files).
        """
        with self.store._lock(meta.repo_type, meta.repo_id):
            d = self.get(meta, num)
            if not d.is_pull_request:
                raise StorageError(400, f"#{num} is a discussion, not a pull request")
            if d.status != "open":
                raise StorageError(400, f"Pull request #{num} is {d.status}; only an open one can be merged")
            tip, base = self._merge_base(meta, d)
            refs = self.store.refs(meta)
            branch = d.base or "main"
            head = self.store.get_commit(meta, refs["heads"].get(branch, ""))
            if head is None:
                raise StorageError(404, f"The base branch {branch!r} of #{num} no longer exists", "RevisionNotFound")
            files = dict(head.files)
            conflicts = []
            for path in _changed(base.files, tip.files):
                theirs = head.files.get(path)
                if theirs != base.files.get(path) and theirs != tip.files.get(path):
                    conflicts.append(path)
                elif path in tip.files:
                    files[path] = tip.files[path]
                else:
                    files.pop(path, None)
            if conflicts:
                raise StorageError(
                    409, f"Pull request #{num} conflicts with {branch} on: {', '.join(sorted(conflicts))}"
                )
            try:  # each side was a valid tree; together they may hold a file and a folder of one name, or NFC twins
                check_tree(files, [p for p in _changed(base.files, tip.files) if p in tip.files])
            except StorageError as exc:
                raise StorageError(409, f"Pull request #{num} conflicts with {branch}: {exc.message}") from exc
            commit = self.store._write_commit(
                meta, (head.id, tip.id), author, f"Merge refs/pr/{num}: {d.title}", "", files
            )
            refs["heads"][branch] = commit.id
            self.store._write_refs(meta, refs)
            extra = self._load(meta)
            entry = extra.setdefault(str(d.num), {"events": self._stored_events(meta, d, extra)})
            entry["events"].append(_simple_event("status-change", author, {"status": "merged"}))
            if comment.strip():
                entry["events"].append(comment_event(author, comment))
            entry["mergeCommitId"], entry["mergeBase"] = commit.id, base.id
            self._save(meta, extra)
            self._save_discussion(meta, replace(d, status="merged"))
        return commit


def _changed(old: dict[str, FileEntry], new: dict[str, FileEntry]) -> Iterator[str]:
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            yield path
