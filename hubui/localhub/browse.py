"""Plain HTML pages of the local Hub, so a person can see what was pushed, and README metadata reading.

:func:`render` answers every page under a repo: the repo at a revision (files, the rendered model card with its
metadata as badges, commits, branches, pull requests), one commit with its diff
(:mod:`hubui.localhub.pages_history`), and one discussion or pull request with its diff. Every page is sent with
:data:`PAGE_HEADERS`, whose Content-Security-Policy lets no script run. Sizes are SI (:mod:`~.pages_common`).
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

import yaml

from hubui.localhub.pages_card import CSP, MAX_RENDERED_CARD, card_section
from hubui.localhub.pages_common import PREFIX as _PREFIX
from hubui.localhub.pages_common import page as _page
from hubui.localhub.pages_common import repo_base, size_html, split_front_matter
from hubui.localhub.pages_history import commit_page, discussion_page
from hubui.localhub.storage import Commit, Discussion, RepoMeta, StorageError, Store
from hubui.localhub.yamlsafe import card_data_of

PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
"""The headers of every HTML page of the local Hub."""
_CARD_TITLES = {"model": "Model card", "dataset": "Dataset card", "space": "README"}


def validate_card_yaml(content: str) -> list[str]:
    """Return the problems of a README's metadata block (empty when it is fine)."""
    front, _ = split_front_matter(content)
    if front is None:
        return []
    try:
        data = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        return [f"The YAML metadata block is not valid YAML: {exc}"]
    if data is not None and not isinstance(data, dict):
        return ["The YAML metadata block must be a mapping"]
    errors = []
    for key in ("tags", "datasets", "language"):
        value = (data or {}).get(key)
        if value is not None and not isinstance(value, (str, list)):
            errors.append(f'"{key}" must be a string or a list of strings')
    return errors


def read_card_data(store: Store, commit: Commit) -> dict[str, Any]:
    """The README's metadata at ``commit``, or ``{}`` when there is none or it does not parse."""
    entry = commit.files.get("README.md")
    if entry is None or entry.size > 1024 * 1024:
        return {}
    try:
        text = store.object_path(entry.sha256).read_text(encoding="utf-8")
        front, _ = split_front_matter(text)
        data = yaml.safe_load(front) if front else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def index_page(repos: list[RepoMeta]) -> str:
    rows = "".join(
        f"<tr><td><a href='/{_PREFIX[m.repo_type]}{html.escape(m.repo_id)}'>{html.escape(m.repo_id)}</a></td>"
        f"<td>{m.repo_type}</td><td>{'private' if m.private else 'public'}</td></tr>"
        for m in repos
    )
    body = "<h1>hubui local Hub</h1>"
    body += (
        f"<table><tr><th>repo</th><th>type</th><th>visibility</th></tr>{rows}</table>"
        if rows
        else ("<p class='muted'>No repos yet.</p>")
    )
    return _page("hubui local Hub", body)


def not_found_page(what: str) -> str:
    return _page(
        "Not found", f"<h1>Not found</h1><p><code>{html.escape(what)}</code> does not exist or is private.</p>"
    )


def _readme(store: Store, commit: Commit) -> tuple[bytes | None, int | None]:
    """The README's bytes (None when missing or too big to render) and its size (None when missing)."""
    entry = commit.files.get("README.md")
    if entry is None:
        return None, None
    if entry.size > MAX_RENDERED_CARD:
        return None, entry.size
    try:
        return store.object_path(entry.sha256).read_bytes(), entry.size
    except OSError:
        return None, entry.size


def repo_page(
    meta: RepoMeta,
    revision: str,
    commit: Commit,
    history: list[Commit],
    refs: dict[str, dict[str, str]],
    discussions: list[Discussion],
    store: Store | None = None,
) -> str:
    """The page of one repo at one revision: its card (when ``store`` is given), files with sizes, commits,
    branches, pull requests and discussions."""
    esc = html.escape
    base = repo_base(meta.repo_type, meta.repo_id)
    files = "".join(
        f"<tr><td><a href='{esc(base)}/resolve/{esc(commit.id)}/{esc(quote(p))}'>{esc(p)}</a></td>"
        f"<td>{size_html(e.size)}</td><td>{'LFS' if e.lfs else ''}</td></tr>"
        for p, e in commit.files.items()
    )
    commits = "".join(
        f"<tr><td><a href='{esc(base)}/commit/{c.id}'><code>{c.id[:10]}</code></a></td><td>{esc(c.summary)}</td>"
        f"<td>{esc(c.author)}</td><td>{esc(c.date)}</td></tr>"
        for c in history
    )
    branches = ", ".join(
        f"<a href='{esc(base)}/tree/{esc(quote(b, safe=''))}'>{esc(b)}</a>" for b in sorted(refs["heads"])
    )
    threads = "".join(
        f"<li><a href='{esc(base)}/discussions/{d.num}'>#{d.num}</a> {esc(d.title)} "
        f"<span class='muted'>{'pull request' if d.is_pull_request else 'discussion'} · {esc(d.status)} · "
        f"by {esc(d.author)}{f' · refs/pr/{d.num}' if d.is_pull_request else ''}</span></li>"
        for d in discussions
    )
    card = ""
    if store is not None:
        readme, size = _readme(store, commit)
        data = card_data_of(readme.decode("utf-8", "replace")) if readme is not None else {}
        card = card_section(
            readme, data, f"{base}/resolve/{commit.id}/README.md", size=size, title=_CARD_TITLES[meta.repo_type]
        )
    body = (
        f"<h1>{esc(meta.repo_id)}</h1><p class='muted'>{meta.repo_type} · "
        f"{'private' if meta.private else 'public'}{' · sdk ' + esc(meta.sdk) if meta.sdk else ''}</p>"
        f"<p>Revision <code>{esc(revision)}</code> = commit <code>{commit.id}</code></p>"
        f"{card}"
        f"<h2>Files</h2><table><tr><th>path</th><th>size</th><th></th></tr>{files}</table>"
        "<p class='muted'>Sizes in SI units: 1 kB = 1000 bytes, 1 MB = 10<sup>6</sup> bytes, "
        "1 GB = 10<sup>9</sup> bytes.</p>"
        f"<h2>Commits</h2><table><tr><th>id</th><th>message</th><th>author</th><th>date</th></tr>{commits}</table>"
        f"<h2>Branches</h2><p>{branches}</p>"
        + (f"<h2>Pull requests and discussions</h2><ul>{threads}</ul>" if threads else "")
    )
    return _page(meta.repo_id, body)


def render(store: Store, meta: RepoMeta, rest: list[str], revision: str | None) -> tuple[int, str]:
    """The page under a repo that ``rest`` (the URL path after ``ns/name``, decoded) names, and its status.

    ``[]``: the repo at ``revision`` (main by default); ``["tree", rev]``: at ``rev``; ``["commit", sha]``: one
    commit and its diff; ``["discussions", n]``: one discussion or pull request (with its diff). Anything else, or
    a revision, commit or discussion that does not exist, is a 404 page.

    Args:
        store: The local Hub's store.
        meta: The repo (the caller checked that the visitor may read it).
        rest: The path segments after the repo id.
        revision: The ``?revision=`` query value, if any.

    Returns:
        ``(status, html)``.
    """
    where = f"{meta.repo_id}/{'/'.join(rest)}"
    if rest[:1] == ["commit"] and len(rest) == 2:
        try:
            return 200, commit_page(store, meta, store.resolve(meta, rest[1]))
        except StorageError:
            return 404, not_found_page(where)
    if rest[:1] == ["discussions"] and len(rest) == 2:
        found = next((d for d in store.discussions(meta) if str(d.num) == rest[1]), None)
        return (200, discussion_page(store, meta, found)) if found else (404, not_found_page(where))
    if rest[:1] == ["tree"] and len(rest) >= 2:
        revision = rest[1]
    elif rest:
        return 404, not_found_page(where)
    revision = revision or "main"
    try:
        commit = store.resolve(meta, revision)
    except StorageError:
        return 404, not_found_page(f"{meta.repo_id}@{revision}")
    history = store.history(meta, commit.id)
    return 200, repo_page(meta, revision, commit, history, store.refs(meta), store.discussions(meta), store)
