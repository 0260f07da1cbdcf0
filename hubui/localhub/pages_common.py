"""What every HTML page of the local Hub shares: the frame, the style, links and sizes.

Sizes are in SI units, as the Hub shows them: ``kB``, ``MB``, ``GB`` are 10^3, 10^6, 10^9 bytes (never 2^10...), and
every size carries the exact byte count in its ``title``. Every value from a repo (paths, messages, card text) goes
through :func:`html.escape` or the Markdown renderer's escaping before it reaches a page.
"""

from __future__ import annotations

import html
from urllib.parse import quote

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .5rem;"
    "border-bottom:1px solid #ddd}code{background:#f4f4f4;padding:0 .2rem}.muted{color:#777}"
    ".badge{display:inline-block;margin:0 .3rem .3rem 0;padding:.1rem .5rem;border-radius:1rem;"
    "background:#eef2ff;border:1px solid #c7d2fe;font-size:.85rem}.badge b{font-weight:600}"
    ".card{border:1px solid #ddd;border-radius:.5rem;padding:0 1rem;margin:1rem 0}"
    ".card pre{background:#f6f8fa;padding:.5rem;overflow:auto}"
    ".diff{font-family:monospace;font-size:.85rem;white-space:pre;overflow:auto;background:#fafafa;"
    "border:1px solid #ddd;padding:.25rem 0}.diff span{display:block;padding:0 .5rem}"
    ".diff .add{background:#e6ffec}.diff .del{background:#ffebe9}.diff .hunk{color:#0550ae;background:#f0f6ff}"
    ".change{margin:1rem 0}.change h3{font-size:1rem;margin:.25rem 0}"
)
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}

_UNITS = (("kB", 10**3), ("MB", 10**6), ("GB", 10**9))


def page(title: str, body: str) -> str:
    """A whole HTML page: ``title`` (escaped here) around ``body`` (already HTML)."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def repo_base(repo_type: str, repo_id: str) -> str:
    """The page path of a repo (``/datasets/ns/name`` for a dataset), URL-quoted."""
    return "/" + PREFIX[repo_type] + quote(repo_id, safe="/")


def format_size(n: int) -> str:
    """A byte count in SI units, three significant digits: ``512 B``, ``2.05 kB``, ``44.7 MB``, ``1.20 GB``.

    Args:
        n: Bytes.

    Returns:
        The size as text (kB = 1000 bytes, MB = 10^6 bytes, GB = 10^9 bytes).
    """
    if n < 1000:
        return f"{n} B"
    for unit, scale in _UNITS:
        value = n / scale
        # 999.6 kB would round to "1000 kB": that is the next unit's "1.00 MB".
        if value < 999.5 or unit == "GB":
            digits = 2 if value < 9.995 else 1 if value < 99.95 else 0
            return f"{value:.{digits}f} {unit}"
    raise AssertionError("unreachable: GB takes every size")


def split_front_matter(text: str) -> tuple[str | None, str]:
    """Split a README into its YAML front matter (or ``None``) and the body."""
    if not text.startswith("---"):
        return None, text
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n") == "---":
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None, text


def size_html(n: int) -> str:
    """:func:`format_size` with the exact byte count in a tooltip."""
    return f"<span class='size' title='{n:,} bytes'>{format_size(n)}</span>"


__all__ = ["PREFIX", "STYLE", "format_size", "page", "repo_base", "size_html", "split_front_matter"]
