"""The Card & push tab's callbacks: the card preview and its Markdown, the pre-filled fields, "Load existing card",
the dry run and the push.

A few lines each over hubui's public API, like :mod:`hubui.ui.handlers` (which keeps the login, model and
convert callbacks). Errors leave through :func:`hubui.ui.errors.ui_handler` as ``gr.Error``, or inline where
the tab shows them inline. The core is always given the session's token explicitly (see :mod:`hubui.ui.state`).

The card form is :data:`CARD_INPUTS` (positional, as the tests and scripts call these functions) and then
:data:`EXTRAS` (the writing-guidance sections, then the licence's name and link), given by keyword after them (or
after ``oauth_token``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr
import pandas as pd

import hubui
from hubui.libraries import NATIVE
from hubui.ui import forms, views
from hubui.ui.errors import attempt, ui_handler
from hubui.ui.state import Session
from hubui.ui.tokens import session_token

_PROGRESS = gr.Progress()  # gradio swaps in a tracker per call; module-level keeps B008 quiet
CARD_INPUTS = (
    "license", "language", "tags", "datasets", "base_model", "pipeline_tag", "description", "usage", "citation",
    "evals",
)  # fmt: skip
SECTIONS: tuple[str, ...] = tuple(hubui.CARD_SECTIONS)
LICENCE_MORE = ("license_name", "license_link")  # shown, and written, only with the licence "other"
EXTRAS = (*SECTIONS, *LICENCE_MORE)
"""The card's inputs after :data:`CARD_INPUTS`, by keyword: the sections, then the licence's name and link."""
LOADED_KEYS = (
    "license", "language", "tags", "datasets", "base_model", "pipeline_tag", "evals", "citation", *SECTIONS,
    "description", *LICENCE_MORE,
)  # fmt: skip
"""What "Load existing card" and "Use this Markdown" fill, in this order (then the preview)."""
LAST_MARKDOWN = "card-markdown:last"  # Session.form key: the card last written into the Markdown box


def _export(session: Session) -> hubui.ConvertResult:
    if session.result is None:
        raise hubui.InvalidInputError("Nothing to push yet.", "Run a conversion on the Convert & parity tab first.")
    return session.result


def _library_name(result: hubui.ConvertResult) -> str:
    """The card's ``library_name`` for the export (``transformers`` for the transformers target)."""
    return str(hubui.card_defaults_for(result).library_name)


def _fields(result: hubui.ConvertResult, card: tuple[Any, ...], extras: dict[str, str | None]) -> hubui.CardFields:
    """The form as CardFields: the card written is exactly what the form shows."""
    base = forms.card_fields(_library_name(result), *card)
    texts = {name: (text if text and text.strip() else None) for name, text in extras.items()}
    for key in LICENCE_MORE:  # hidden unless the licence is "other": what the page does not show is not written
        value = texts[key]
        texts[key] = value.strip() if value is not None and base.license == "other" else None
    return dataclasses.replace(base, **texts)


def _extras(*texts: str | None) -> dict[str, str | None]:
    return dict(zip(EXTRAS, texts, strict=True))


def _card(
    session: Session, namespace: str | None, name: str | None, override: bool, card: tuple[Any, ...], extras: dict
) -> tuple[Any, str]:
    """The card for the session's export, or ``(None, inline message)`` when a field is wrong."""
    result = _export(session)
    repo = f"{namespace or 'your-name'}/{(name or '').strip() or 'model'}"
    return attempt(hubui.make_card, result.export.folder, repo, _fields(result, card, extras), override=override)


@ui_handler
def preview_card(
    session: Session,
    namespace: str | None,
    name: str | None,
    override: bool,
    license: str | None,
    language: str | None,
    tags: str | None,
    datasets: str | None,
    base_model: str | None,
    pipeline_tag: str | None,
    description: str | None,
    usage: str | None,
    citation: str | None,
    evals: Any,
    intended_use: str | None = None,
    limitations: str | None = None,
    training_data: str | None = None,
    evaluation: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
) -> Any:
    """The README a push would upload, rendered; problems with the fields show inline."""
    if session.result is None:
        return gr.skip()  # keeps the hint, or a README loaded from the Hub
    card = (license, language, tags, datasets, base_model, pipeline_tag, description, usage, citation, evals)
    readme, message = _card(
        session,
        namespace,
        name,
        override,
        card,
        _extras(intended_use, limitations, training_data, evaluation, license_name, license_link),
    )
    return message if readme is None else views.card_markdown(str(readme))


@ui_handler
def card_views(
    session: Session,
    namespace: str | None,
    name: str | None,
    override: bool,
    license: str | None,
    language: str | None,
    tags: str | None,
    datasets: str | None,
    base_model: str | None,
    pipeline_tag: str | None,
    description: str | None,
    usage: str | None,
    citation: str | None,
    evals: Any,
    intended_use: str | None = None,
    limitations: str | None = None,
    training_data: str | None = None,
    evaluation: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
) -> tuple[Any, Any]:
    """The wiring's preview event: ``(rendered preview, the README's Markdown)`` for the raw editor."""
    if session.result is None:
        return gr.skip(), gr.skip()
    card = (license, language, tags, datasets, base_model, pipeline_tag, description, usage, citation, evals)
    readme, message = _card(
        session,
        namespace,
        name,
        override,
        card,
        _extras(intended_use, limitations, training_data, evaluation, license_name, license_link),
    )
    if readme is None:
        return message, gr.skip()
    text = str(readme)
    # The Markdown box changes only when the card does: a repeat of the same card must not wipe an edit in it.
    unchanged = session.form.get(LAST_MARKDOWN) == text
    session.form[LAST_MARKDOWN] = text
    return views.card_markdown(text), (gr.skip() if unchanged else text)


def _loaded_values(loaded: Any, readme: str) -> tuple[Any, ...]:
    """Form values for :data:`LOADED_KEYS` from a :class:`hubui.card_parse.LoadedCard` (skip what it lacks)."""
    fields, empty = loaded.fields, hubui.CardFields()
    out: list[Any] = []
    for key in LOADED_KEYS:
        if key == "evals":
            rows = [[getattr(r, c, "") for c in forms.EVAL_COLUMNS] for r in fields.eval_results]
            out.append(pd.DataFrame(rows, columns=list(forms.EVAL_COLUMNS)) if rows else gr.skip())
            continue
        value = getattr(fields, key)
        if value == getattr(empty, key) or value in (None, "", []):
            out.append(gr.skip())  # the README does not say: keep what the form has
        elif isinstance(value, list):
            out.append(", ".join(str(v) for v in value))
        else:
            out.append(str(value))
    note = "".join(f"> Not loaded: {views.md(line)}\n>\n" for line in loaded.left_out)
    return (*out, (note + "\n" if note else "") + views.card_markdown(readme))


@ui_handler
def load_existing_card(
    session: Session, namespace: str | None, name: str | None, branch: str | None, oauth_token: gr.OAuthToken | None
) -> tuple[Any, ...]:
    """Fetch the target repo's README: fill the form from it (metadata, sections, eval rows), show it in the preview.

    Returns:
        Values for :data:`LOADED_KEYS` (``gr.skip()`` where the README has none), then the preview.
    """
    token = session.token or (oauth_token.token if oauth_token and not session.signed_out else None)
    repo = forms.repo_id(namespace, name)
    readme = hubui.fetch_readme(repo, token=token, revision=(branch or "").strip() or None)
    if readme is None:
        raise hubui.InvalidInputError(f"{repo} has no README (or does not exist).", "Fill the card fields here.")
    return _loaded_values(hubui.fields_from_readme(readme, f"{repo}'s README"), readme)


@ui_handler
def use_markdown(markdown: str | None) -> tuple[Any, ...]:
    """The raw Markdown editor's text into the form (what a push writes is always the form's value).

    Returns:
        Values for :data:`LOADED_KEYS`, then the preview.
    """
    text = markdown or ""
    if not text.strip():
        raise hubui.InvalidInputError("The Markdown box is empty.", "Write or paste a model card in it first.")
    return _loaded_values(hubui.fields_from_readme(text, "The Markdown box"), text)


@ui_handler
def card_defaults_view(
    library: str, architecture: str | None, tag: str | None, checkpoint: Any, target: str | None
) -> tuple[Any, ...]:
    """The licence, base model and pipeline tag that follow the chosen model, and a note saying so.

    Returns:
        ``(license, license_name, base_model, pipeline_tag, note)``; nothing changes while no model is chosen.
    """
    if not architecture:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), ""
    spec = forms.model_spec(library, architecture, tag, checkpoint)
    defaults, message = attempt(hubui.card_defaults, spec, target or NATIVE)
    if defaults is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), message
    base = defaults.base_model
    base_text = ", ".join(base) if isinstance(base, list) else (base or "")
    name = defaults.license_name or ""
    return defaults.license, name, base_text, defaults.pipeline_tag, views.defaults_markdown(defaults)


def licence_more_view(license: str | None) -> Any:
    """The licence's name and link boxes: shown with the licence "other" only (the Hub needs a name then)."""
    return gr.update(visible=license == "other")


def _request(session: Session, target: tuple[Any, ...], allow_random_weights: bool) -> hubui.PushRequest:
    request = forms.push_request(_export(session).export.folder, *target)
    return dataclasses.replace(request, allow_random_weights=bool(allow_random_weights))


@ui_handler
def dry_run(
    session: Session,
    namespace: str | None,
    name: str | None,
    private: bool,
    branch: str | None,
    create_pr: bool,
    message: str | None,
    readme_mode: str,
    override: bool,
    license: str | None,
    language: str | None,
    tags: str | None,
    datasets: str | None,
    base_model: str | None,
    pipeline_tag: str | None,
    description: str | None,
    usage: str | None,
    citation: str | None,
    evals: Any,
    oauth_token: gr.OAuthToken | None,
    allow_random_weights: bool = False,
    intended_use: str | None = None,
    limitations: str | None = None,
    training_data: str | None = None,
    evaluation: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
) -> str:
    """What a push would commit, and the card's diff (collapsed). Uploads nothing."""
    card = (license, language, tags, datasets, base_model, pipeline_tag, description, usage, citation, evals)
    token = session_token(session, oauth_token)
    target = (namespace, name, private, branch, create_pr, message, readme_mode, override)
    request = _request(session, target, allow_random_weights)
    extras = _extras(intended_use, limitations, training_data, evaluation, license_name, license_link)
    return views.plan_markdown(hubui.dry_run(request, _fields(_export(session), card, extras), token=token))


class _PushProgress:
    """Turns publish()'s status lines and verification reports into a gr.Progress bar."""

    STEPS = (("checking", 0.05), ("creating", 0.1), ("uploading", 0.2), ("committed", 0.6), ("nothing", 0.6))

    def __init__(self, progress: gr.Progress) -> None:
        self.progress = progress

    def say(self, line: str) -> None:
        fraction = next((f for word, f in self.STEPS if line.startswith(word)), 0.65)
        self.progress(fraction, desc=line)

    def report(self, report: hubui.ParityReport) -> None:
        done = report.batches_done / max(report.batches_total, 1)
        self.progress(0.65 + 0.35 * done, desc=f"verifying: batch {report.batches_done}/{report.batches_total}")


@ui_handler
def push(
    session: Session,
    namespace: str | None,
    name: str | None,
    private: bool,
    branch: str | None,
    create_pr: bool,
    message: str | None,
    readme_mode: str,
    override: bool,
    license: str | None,
    language: str | None,
    tags: str | None,
    datasets: str | None,
    base_model: str | None,
    pipeline_tag: str | None,
    description: str | None,
    usage: str | None,
    citation: str | None,
    evals: Any,
    oauth_token: gr.OAuthToken | None,
    allow_random_weights: bool = False,
    intended_use: str | None = None,
    limitations: str | None = None,
    training_data: str | None = None,
    evaluation: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
    progress: gr.Progress = _PROGRESS,
) -> tuple[str, str]:
    """Push the session's export as one commit (or PR), then re-download and verify it."""
    card = (license, language, tags, datasets, base_model, pipeline_tag, description, usage, citation, evals)
    token = session_token(session, oauth_token)
    result = _export(session)
    target = (namespace, name, private, branch, create_pr, message, readme_mode, override)
    request = _request(session, target, allow_random_weights)
    extras = _extras(intended_use, limitations, training_data, evaluation, license_name, license_link)
    tracker = _PushProgress(progress)
    published = hubui.publish(
        request,
        _fields(result, card, extras),
        token=token,
        original=result.loaded,
        progress=tracker.say,
        on_report=tracker.report,
    )
    return views.result_markdown(published), views.verification_markdown(published.verification)


__all__ = [
    "CARD_INPUTS",
    "EXTRAS",
    "LICENCE_MORE",
    "LOADED_KEYS",
    "SECTIONS",
    "card_defaults_view",
    "card_views",
    "dry_run",
    "licence_more_view",
    "load_existing_card",
    "preview_card",
    "push",
    "use_markdown",
]
