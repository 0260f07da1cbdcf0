"""A model card on the local Hub's repo page: the README's Markdown as HTML, its metadata as badges and a table of
its evaluation results.

The Markdown is rendered by markdown-it-py (CommonMark plus tables and strikethrough) with raw HTML switched off:
a ``<script>`` or an ``onerror=`` in a README comes out as text, never as markup, and links with ``javascript:``,
``vbscript:``, ``file:`` or non-image ``data:`` URLs are not made links (markdown-it's ``validateLink``). Every
metadata value is escaped. The page also answers with a Content-Security-Policy that forbids scripts
(:data:`CSP`), so even a renderer bug could not run one.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from hubui.localhub.pages_common import format_size, split_front_matter

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; base-uri 'none'; form-action 'none'"
"""The Content-Security-Policy of every local Hub page: no script of any origin runs."""

MAX_RENDERED_CARD = 1_000_000  # bytes; a bigger README is linked, not rendered
_MAX_BADGES = 50  # per kind of metadata: a card with thousands of tags stays a readable page
_MAX_EVAL_ROWS = 200


@functools.cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # "html": False is what keeps a README's own markup (scripts, iframes, event handlers) out of the page.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    """A README body (no front matter) as safe HTML: raw HTML in it is escaped, unsafe links are dropped."""
    return str(_markdown().render(text))


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if v is not None and not isinstance(v, (dict, list))][:_MAX_BADGES]


def _badge(key: str, label: str, value: str, href: str | None = None) -> str:
    text = f"<b>{html.escape(label)}</b> {html.escape(value)}" if label else html.escape(value)
    if href:
        text = f"<a href='{html.escape(href)}'>{text}</a>"
    return f"<span class='badge' data-key='{html.escape(key)}'>{text}</span>"


def _looks_like_repo_id(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(p and p not in (".", "..") for p in parts) and ":" not in value


def card_badges(data: dict[str, Any]) -> str:
    """The card metadata a reader looks for first, as badges: licence, pipeline tag, library, base model(s),
    datasets, languages and tags. A base model that is a repo id links to its page on this Hub."""
    out: list[str] = []
    licences = _as_list(data.get("license"))
    if licences == ["other"] and data.get("license_name"):
        licences = [f"other ({data['license_name']})"]
    out += [_badge("license", "License:", v) for v in licences]
    out += [_badge("pipeline_tag", "Task:", v) for v in _as_list(data.get("pipeline_tag"))]
    out += [_badge("library_name", "Library:", v) for v in _as_list(data.get("library_name"))]
    relation = data.get("base_model_relation")
    label = f"Base model ({relation}):" if isinstance(relation, str) and relation else "Base model:"
    out += [
        _badge("base_model", label, v, f"/{v}" if _looks_like_repo_id(v) else None)
        for v in _as_list(data.get("base_model"))
    ]
    out += [_badge("datasets", "Dataset:", v) for v in _as_list(data.get("datasets"))]
    out += [_badge("language", "Language:", v) for v in _as_list(data.get("language"))]
    out += [_badge("tags", "", v) for v in _as_list(data.get("tags"))]
    return f"<p class='badges'>{''.join(out)}</p>" if out else ""


def eval_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(task, dataset, metric, value)`` for each metric of the card's ``model-index``, in order."""
    rows: list[tuple[str, str, str, str]] = []
    index = data.get("model-index")
    for model in index if isinstance(index, list) else []:
        results = model.get("results") if isinstance(model, dict) else None
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict):
                continue
            task, dataset = result.get("task") or {}, result.get("dataset") or {}
            task_name = _named(task, "name", "type")
            dataset_name = _named(dataset, "name", "type")
            split = dataset.get("split") if isinstance(dataset, dict) else None
            if split:
                dataset_name += f" ({split})"
            metrics = result.get("metrics")
            for metric in metrics if isinstance(metrics, list) else []:
                if isinstance(metric, dict):
                    rows.append((task_name, dataset_name, _named(metric, "name", "type"), str(metric.get("value", ""))))
    return rows[:_MAX_EVAL_ROWS]


def _named(value: Any, *keys: str) -> str:
    if not isinstance(value, dict):
        return str(value) if value else ""
    return next((str(value[k]) for k in keys if value.get(k)), "")


def eval_table(data: dict[str, Any]) -> str:
    """The card's evaluation results as a table ("" when it has none)."""
    rows = eval_rows(data)
    if not rows:
        return ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    head = "<tr><th>task</th><th>dataset</th><th>metric</th><th>value</th></tr>"
    return f"<h3>Evaluation results</h3><table class='eval'>{head}{body}</table>"


def card_section(
    readme: bytes | None, data: dict[str, Any], readme_href: str, *, size: int | None = None, title: str = "Model card"
) -> str:
    """The card block of a repo page: badges, evaluation results and the rendered README body.

    Args:
        readme: The README's bytes; None when the repo has none, or (``size`` given) when it is too big to render.
        data: Its parsed metadata (``{}`` when none or invalid).
        readme_href: Where the raw README is, for a README too big or not UTF-8.
        size: The README's size in bytes, when known.
        title: The block's heading.

    Returns:
        HTML.
    """
    heading = f"<h2>{html.escape(title)}</h2>"
    link = f"<a href='{html.escape(readme_href)}'>read it raw</a>"
    if readme is None and size is None:
        return f"{heading}<p class='muted'>No card (README.md) yet.</p>"
    if readme is None or len(readme) > MAX_RENDERED_CARD:
        shown = format_size(size if size is not None else len(readme or b""))
        return f"{heading}<p class='muted'>README.md is {shown}, too big to show here: {link}.</p>"
    try:
        text = readme.decode("utf-8")
    except UnicodeDecodeError:
        return f"{heading}<p class='muted'>README.md is not UTF-8 text: {link}.</p>"
    _, body = split_front_matter(text)
    return f"{heading}{card_badges(data)}{eval_table(data)}<div class='card'>{render_markdown(body)}</div>"


__all__ = ["CSP", "MAX_RENDERED_CARD", "card_badges", "card_section", "eval_rows", "eval_table", "render_markdown"]
