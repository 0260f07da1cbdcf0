"""Plain HTML pages of the local Hub, so a person can see what was pushed, and README metadata reading."""

from __future__ import annotations

import html
from typing import Any

import yaml

from hubui.localhub.storage import Commit, Discussion, RepoMeta, Store

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem;"
    "border-bottom:1px solid #ddd}code{background:#f4f4f4;padding:0 .2rem}.muted{color:#777}"
)
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def split_front_matter(text: str) -> tuple[str | None, str]:
    """Split a README into its YAML front matter (or ``None``) and the body."""
    if not text.startswith("---"):
        return None, text
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n") == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None, text


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


def repo_page(
    meta: RepoMeta,
    revision: str,
    commit: Commit,
    history: list[Commit],
    refs: dict[str, dict[str, str]],
    discussions: list[Discussion],
) -> str:
    """The page of one repo at one revision: files with sizes, commits, branches and pull requests."""
    esc = html.escape
    base = f"/{_PREFIX[meta.repo_type]}{meta.repo_id}"
    files = "".join(
        f"<tr><td><a href='{esc(base)}/resolve/{esc(commit.id)}/{esc(p)}'>{esc(p)}</a></td>"
        f"<td>{_size(e.size)}</td><td>{'LFS' if e.lfs else ''}</td></tr>"
        for p, e in commit.files.items()
    )
    commits = "".join(
        f"<tr><td><a href='{esc(base)}/commit/{c.id}'><code>{c.id[:10]}</code></a></td><td>{esc(c.summary)}</td>"
        f"<td>{esc(c.author)}</td><td>{esc(c.date)}</td></tr>"
        for c in history
    )
    branches = ", ".join(f"<a href='{esc(base)}/tree/{esc(b)}'>{esc(b)}</a>" for b in sorted(refs["heads"]))
    prs = "".join(
        f"<li><a href='{esc(base)}/discussions/{d.num}'>#{d.num}</a> {esc(d.title)} "
        f"<span class='muted'>by {esc(d.author)} · refs/pr/{d.num}</span></li>"
        for d in discussions
        if d.is_pull_request
    )
    body = (
        f"<h1>{esc(meta.repo_id)}</h1><p class='muted'>{meta.repo_type} · "
        f"{'private' if meta.private else 'public'}{' · sdk ' + esc(meta.sdk) if meta.sdk else ''}</p>"
        f"<p>Revision <code>{esc(revision)}</code> = commit <code>{commit.id}</code></p>"
        f"<h2>Files</h2><table><tr><th>path</th><th>size</th><th></th></tr>{files}</table>"
        f"<h2>Commits</h2><table><tr><th>id</th><th>message</th><th>author</th><th>date</th></tr>{commits}</table>"
        f"<h2>Branches</h2><p>{branches}</p>" + (f"<h2>Pull requests</h2><ul>{prs}</ul>" if prs else "")
    )
    return _page(meta.repo_id, body)
