"""The local Hub's pages for one commit and for one discussion or pull request, each with what it changed.

A commit's page shows its message, author, date and parents, and its diff against its first parent (a first
commit: against nothing). A pull request's page shows its comments (Markdown, rendered safely), its commits and
its diff against its merge base, the newest commit it shares with its base branch, as the Hub's "Files changed"
tab does. Diffs come from :mod:`hubui.localhub.pages_diff`.
"""

from __future__ import annotations

import html
from typing import Any

from hubui.localhub.discussions import DiscussionBook
from hubui.localhub.pages_card import render_markdown
from hubui.localhub.pages_common import page, repo_base
from hubui.localhub.pages_diff import diff_section
from hubui.localhub.storage import Commit, Discussion, RepoMeta, StorageError, Store


def _commit_link(base: str, oid: str) -> str:
    return f"<a href='{html.escape(base)}/commit/{html.escape(oid)}'><code>{html.escape(oid[:10])}</code></a>"


def commit_page(store: Store, meta: RepoMeta, commit: Commit) -> str:
    """One commit: message, author, date, parents, and every file it added, changed or removed.

    Args:
        store: Where the files' bytes are.
        meta: The repo.
        commit: The commit.

    Returns:
        The HTML page.
    """
    base = repo_base(meta.repo_type, meta.repo_id)
    parent = store.get_commit(meta, commit.parents[0]) if commit.parents else None
    parents = ", ".join(_commit_link(base, p) for p in commit.parents) or "none (first commit)"
    description = f"<pre>{html.escape(commit.description)}</pre>" if commit.description else ""
    body = (
        f"<p><a href='{html.escape(base)}'>{html.escape(meta.repo_id)}</a></p>"
        f"<h1>{html.escape(commit.summary)}</h1>{description}"
        f"<p class='muted'>commit <code>{html.escape(commit.id)}</code> · by {html.escape(commit.author)} · "
        f"{html.escape(commit.date)} · parents: {parents} · "
        f"<a href='{html.escape(base)}/tree/{html.escape(commit.id)}'>browse files at this commit</a></p>"
        + diff_section(store, parent.files if parent else {}, commit.files)
    )
    return page(f"{commit.summary} · {meta.repo_id}", body)


def _event_html(event: dict[str, Any]) -> str:
    author = html.escape(str((event.get("author") or {}).get("name", "")))
    when = html.escape(str(event.get("createdAt", "")))
    data = event.get("data") or {}
    kind = event.get("type")
    if kind == "comment":
        if data.get("hidden"):
            text = "<p class='muted'>This comment was hidden.</p>"
        else:
            text = render_markdown(str((data.get("latest") or {}).get("raw", "")))
        return f"<div class='card'><p class='muted'>{author} commented · {when}</p>{text}</div>"
    if kind == "commit":
        oid, subject = html.escape(str(data.get("oid", ""))[:10]), html.escape(str(data.get("subject", "")))
        what = f"pushed commit <code>{oid}</code>: {subject}"
    elif kind == "status-change":
        what = f"changed the status to {html.escape(str(data.get('status', '')))}"
    elif kind == "title-change":
        what = f"renamed it to “{html.escape(str(data.get('to', '')))}”"
    else:
        what = html.escape(str(kind))
    return f"<p class='muted'>{author} {what} · {when}</p>"


def discussion_page(store: Store, meta: RepoMeta, discussion: Discussion) -> str:
    """A discussion or pull request: its comments and events; for a pull request also its commits and diff.

    Args:
        store: Where the repo's commits, discussions and files are.
        meta: The repo.
        discussion: The discussion.

    Returns:
        The HTML page.
    """
    book = DiscussionBook(store)
    base = repo_base(meta.repo_type, meta.repo_id)
    kind = "Pull request" if discussion.is_pull_request else "Discussion"
    head = (
        f"<p><a href='{html.escape(base)}'>{html.escape(meta.repo_id)}</a></p>"
        f"<h1>{html.escape(discussion.title)} <span class='muted'>#{discussion.num}</span></h1>"
        f"<p class='muted'>{kind} · {html.escape(discussion.status)} · opened by {html.escape(discussion.author)} · "
        f"{html.escape(discussion.created_at)}"
    )
    events = "".join(_event_html(e) for e in book.events(meta, discussion))
    if not discussion.is_pull_request:
        return page(f"{discussion.title} · {meta.repo_id}", f"{head}</p>{events}")
    try:
        tip, merge_base = book._merge_base(meta, discussion)  # the same base the API's diff uses
        commits = book.pr_commits(meta, discussion)
        diff = diff_section(store, merge_base.files, tip.files)
    except StorageError as exc:  # a damaged store: say so on the page rather than answer 500
        commits, diff = [], f"<h2>Changes</h2><p class='muted'>{html.escape(exc.message)}</p>"
    head += (
        f" · <code>refs/pr/{discussion.num}</code> into <code>{html.escape(discussion.base or 'main')}</code> · "
        f"<a href='{html.escape(base)}/tree/refs%2Fpr%2F{discussion.num}'>browse files</a></p>"
    )
    listed = "".join(f"<li>{_commit_link(base, c.id)} {html.escape(c.summary)}</li>" for c in commits)
    commit_list = f"<h2>Commits</h2><ul>{listed}</ul>" if listed else "<h2>Commits</h2><p class='muted'>None yet.</p>"
    return page(
        f"{discussion.title} · {meta.repo_id}",
        head + events + commit_list + diff,
    )


__all__ = ["commit_page", "discussion_page"]
