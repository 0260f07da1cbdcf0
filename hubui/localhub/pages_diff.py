"""What changed between two file tables, as HTML: files added, changed and removed, with their sizes, and a
line diff for small text files.

A file is shown as text when neither side is stored through LFS, each side is at most :data:`MAX_TEXT_DIFF` bytes,
and each decodes as UTF-8 without NUL bytes; otherwise it is "binary" and the page shows its sizes (and its
sha256 when that changed). A diff longer than :data:`MAX_DIFF_LINES` lines is cut, and says so.
"""

from __future__ import annotations

import difflib
import html
from dataclasses import dataclass

from hubui.localhub.pages_common import size_html
from hubui.localhub.storage import FileEntry, Store

MAX_TEXT_DIFF = 200_000  # bytes per side; bigger text files show sizes only
MAX_DIFF_LINES = 2_000  # per file


@dataclass(frozen=True)
class FileChange:
    """One path that differs between two commits.

    Args:
        path: The file's path in the repo.
        kind: ``"added"``, ``"removed"`` or ``"changed"``.
        old: Its entry before (None when added).
        new: Its entry after (None when removed).
    """

    path: str
    kind: str
    old: FileEntry | None
    new: FileEntry | None


def changes(old: dict[str, FileEntry], new: dict[str, FileEntry]) -> list[FileChange]:
    """The paths that differ between two file tables, sorted by path."""
    out = []
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path), new.get(path)
        if a == b:
            continue
        kind = "added" if a is None else "removed" if b is None else "changed"
        out.append(FileChange(path, kind, a, b))
    return out


def _text(store: Store, entry: FileEntry | None) -> list[str] | None:
    """The file's lines, [] for a missing side, None when it is not shown as text."""
    if entry is None:
        return []
    if entry.lfs or entry.size > MAX_TEXT_DIFF:
        return None
    try:
        data = store.object_path(entry.sha256).read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def _line_diff(a: list[str], b: list[str]) -> str:
    lines = list(difflib.unified_diff(a, b, lineterm="", n=3))[2:]  # drop the ---/+++ header: the path is above
    shown = lines[:MAX_DIFF_LINES]
    spans = []
    for line in shown:
        cls = "hunk" if line.startswith("@@") else "add" if line[:1] == "+" else "del" if line[:1] == "-" else "ctx"
        spans.append(f"<span class='{cls}'>{html.escape(line) or '&nbsp;'}</span>")
    more = len(lines) - len(shown)
    tail = f"<p class='muted'>{more} more diff lines not shown.</p>" if more > 0 else ""
    return f"<div class='diff'>{''.join(spans)}</div>{tail}" if spans else "<p class='muted'>No line changed.</p>"


def _sizes(change: FileChange) -> str:
    if change.old is None and change.new is not None:
        return size_html(change.new.size)
    if change.new is None and change.old is not None:
        return size_html(change.old.size)
    assert change.old is not None and change.new is not None
    return f"{size_html(change.old.size)} → {size_html(change.new.size)}"


def _change_html(store: Store, change: FileChange) -> str:
    entry = change.new or change.old
    assert entry is not None  # a change has at least one side
    head = (
        f"<h3 data-kind='{change.kind}'>{change.kind}: <code>{html.escape(change.path)}</code> "
        f"<span class='muted'>{_sizes(change)}{' · LFS' if entry.lfs else ''}</span></h3>"
    )
    a, b = _text(store, change.old), _text(store, change.new)
    if a is not None and b is not None:
        return f"<div class='change'>{head}{_line_diff(a, b)}</div>"
    if change.old is not None and change.new is not None and change.old.sha256 != change.new.sha256:
        sha = f"<code>{change.old.sha256[:12]}…</code> → <code>{change.new.sha256[:12]}…</code>"
    else:
        sha = f"<code>{entry.sha256[:12]}…</code>"
    return f"<div class='change'>{head}<p class='muted'>Binary file: sha256 {sha}.</p></div>"


def diff_section(store: Store, old: dict[str, FileEntry], new: dict[str, FileEntry]) -> str:
    """The changes from ``old`` to ``new`` as HTML: a one-line summary, then each file with its sizes and, for small
    text files, the lines that changed.

    Args:
        store: Where the files' bytes are.
        old: The file table before (``{}`` for a first commit).
        new: The file table after.

    Returns:
        HTML.
    """
    found = changes(old, new)
    if not found:
        return "<h2>Changes</h2><p class='muted'>No file changed.</p>"
    counts = {k: sum(c.kind == k for c in found) for k in ("added", "changed", "removed")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    files = "file" if len(found) == 1 else "files"
    body = "".join(_change_html(store, c) for c in found)
    return f"<h2>Changes</h2><p class='summary'>{len(found)} {files}: {summary}.</p>{body}"


__all__ = ["MAX_DIFF_LINES", "MAX_TEXT_DIFF", "FileChange", "changes", "diff_section"]
