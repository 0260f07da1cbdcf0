"""The Card & push tab's callbacks: the card preview, "Load existing card", the dry run and the push.

A few lines each over hubui's public API, like :mod:`hubui.ui.handlers` (which keeps the login, model and
convert callbacks). Errors leave through :func:`hubui.ui.errors.ui_handler` as ``gr.Error``, or inline where
the tab shows them inline. The core is always given the session's token explicitly (see :mod:`hubui.ui.state`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

import hubui
from hubui.ui import forms, views
from hubui.ui.errors import attempt, ui_handler
from hubui.ui.state import Session
from hubui.ui.tokens import session_token

_PROGRESS = gr.Progress()  # gradio swaps in a tracker per call; module-level keeps B008 quiet


def _export(session: Session) -> hubui.ConvertResult:
    if session.result is None:
        raise hubui.InvalidInputError("Nothing to push yet.", "Run a conversion on the Convert & parity tab first.")
    return session.result


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
) -> Any:
    """The README a push would upload, rendered; problems with the fields show inline."""
    if session.result is None:
        return gr.skip()  # keeps the hint, or a README loaded from the Hub
    library = session.result.loaded.spec.library
    repo = f"{namespace or 'your-name'}/{(name or '').strip() or 'model'}"
    card, message = attempt(
        hubui.make_card,
        session.result.export.folder,
        repo,
        forms.card_fields(
            library, license, language, tags, datasets, base_model, pipeline_tag, description, usage, citation, evals
        ),
        override=override,
    )
    return message if card is None else views.card_markdown(str(card))


@ui_handler
def load_existing_card(
    session: Session, namespace: str | None, name: str | None, branch: str | None, oauth_token: gr.OAuthToken | None
) -> tuple[Any, ...]:
    """Fetch the target repo's README: fill the form from its metadata, show it in the preview.

    Returns:
        Values for ``forms.CARD_KEYS`` (``gr.skip()`` where the README has none), then the preview.
    """
    token = session.token or (oauth_token.token if oauth_token and not session.signed_out else None)
    repo = forms.repo_id(namespace, name)
    readme = hubui.fetch_readme(repo, token=token, revision=(branch or "").strip() or None)
    if readme is None:
        raise hubui.InvalidInputError(f"{repo} has no README (or does not exist).", "Fill the card fields here.")
    hubui.load_card_metadata(readme, f"{repo}'s README")  # someone else's YAML: refuse an alias bomb first
    values = forms.fields_from_readme(readme)
    return (*(values.get(key, gr.skip()) for key in forms.CARD_KEYS), views.card_markdown(readme))


def _request(session: Session, target: tuple[Any, ...]) -> hubui.PushRequest:
    return forms.push_request(_export(session).export.folder, *target)


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
) -> str:
    """What a push would commit, and the card's diff. Uploads nothing."""
    token = session_token(session, oauth_token)
    request = _request(session, (namespace, name, private, branch, create_pr, message, readme_mode, override))
    fields = forms.card_fields(
        _export(session).loaded.spec.library,
        license,
        language,
        tags,
        datasets,
        base_model,
        pipeline_tag,
        description,
        usage,
        citation,
        evals,
    )
    return views.plan_markdown(hubui.dry_run(request, fields, token=token))


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
    progress: gr.Progress = _PROGRESS,
) -> tuple[str, str]:
    """Push the session's export as one commit (or PR), then re-download and verify it."""
    token = session_token(session, oauth_token)
    result = _export(session)
    request = _request(session, (namespace, name, private, branch, create_pr, message, readme_mode, override))
    tracker = _PushProgress(progress)
    published = hubui.publish(
        request,
        forms.card_fields(
            result.loaded.spec.library,
            license,
            language,
            tags,
            datasets,
            base_model,
            pipeline_tag,
            description,
            usage,
            citation,
            evals,
        ),
        token=token,
        original=result.loaded,
        progress=tracker.say,
        on_report=tracker.report,
    )
    return views.result_markdown(published), views.verification_markdown(published.verification)


__all__ = ["dry_run", "load_existing_card", "preview_card", "push"]
