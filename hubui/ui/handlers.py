"""The app's callbacks: a few lines each, over hubui's public API.

Every callback takes the session's :class:`~hubui.ui.state.Session` (a ``gr.State``) and, where it
needs a token, ``oauth_token: gr.OAuthToken | None`` (gradio fills it on a Space with OAuth). Errors
leave through :func:`hubui.ui.errors.ui_handler` as ``gr.Error``, or as inline Markdown where the tab
shows them inline. The core is always given the session's token explicitly, so a visitor never acts
with the server's token (see :mod:`hubui.ui.state` for the rule).

The Card & push tab's callbacks live in :mod:`hubui.ui.card_handlers`; they are named here too, for the
scripts and tests that call them as ``handlers.push`` and so on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr

import hubui
from hubui.libraries import NATIVE
from hubui.progress import StageTracker, with_ticks
from hubui.ui import derived, forms, plots, views
from hubui.ui.card_handlers import dry_run, load_existing_card, preview_card, push
from hubui.ui.errors import attempt, inline, ui_handler
from hubui.ui.state import Session
from hubui.ui.tokens import session_token as _token

SEARCH_LIMIT = 100
_ENV_TOKENS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
TICK_S = 1.0  # a stage with no news redraws its progress line this often


# --- tokens -----------------------------------------------------------------------------------------
def _server_token_source() -> str:
    return next((f"{var}" for var in _ENV_TOKENS if os.environ.get(var)), "the cached login (`hf auth login`)")


def _namespaces(session: Session) -> dict[str, Any]:
    names = list(session.identity.namespaces) if session.identity else []
    return gr.update(choices=names, value=names[0] if names else None)


def _login_outputs(session: Session, status: str = "") -> tuple[str, dict[str, Any], Session]:
    return status or views.identity_markdown(session.identity, session.token_source), _namespaces(session), session


# --- login ------------------------------------------------------------------------------------------
@ui_handler
def on_load(session: Session, oauth_token: gr.OAuthToken | None) -> tuple[str, dict[str, Any], Session]:
    """Page load: adopt the OAuth sign-in (OAuth mode), or the server's own token (single-user mode)."""
    if session.token is None and not session.signed_out:
        if session.oauth and oauth_token is not None:
            ok, message = attempt(_token, session, oauth_token)
            return _login_outputs(session, "" if ok is not None else message)
        if not session.oauth:
            token, message = attempt(hubui.resolve_token)
            if token is None:
                return _login_outputs(session, "Not logged in: paste a token (or set HF_TOKEN and restart).")
            identity, message = attempt(hubui.whoami, token)
            if identity is None:
                return _login_outputs(session, message)
            session.log_in(token, identity, _server_token_source())
    return _login_outputs(session)


@ui_handler
def log_in(token_text: str, session: Session) -> tuple[str, str, dict[str, Any], Session]:
    """Check a typed token with the Hub and make it this session's; the box is cleared."""
    token = (token_text or "").strip()
    if not token:
        what = "empty" if not token_text else f"only whitespace ({len(token_text)} characters)"
        raise hubui.NotLoggedInError(f"The token box is {what}.", "Paste a token from your Hub settings page.")
    try:
        identity = hubui.whoami(token)
    except hubui.HubUIError as exc:
        if session.identity is not None:  # one message, and it says what the status line would have said
            still = f"You are still logged in as {session.identity.name}: the rejected token was not used."
            exc.hint = f"{exc.hint} {still}" if exc.hint else still
        raise
    session.log_in(token, identity, "typed token")
    status, namespaces, session = _login_outputs(session)
    return status, "", namespaces, session


@ui_handler
def log_out(session: Session) -> tuple[str, dict[str, Any], Session]:
    """Forget this session's token."""
    session.log_out()
    return _login_outputs(session, "Logged out.")


# --- model ------------------------------------------------------------------------------------------
SEARCH_INFO = "type in the search box"


def searching(library: str, pattern: str) -> dict[str, Any]:
    """The architecture list says a search runs (a cold one takes seconds, while the zoo is listed)."""
    return gr.update(info=f"searching {library} for {pattern.strip() or '*'}…")


@ui_handler
def search(library: str, pattern: str, current: str | None = None) -> tuple[dict[str, Any], str]:
    """Instant search of the library's architectures; errors inline.

    ``current`` is the architecture chosen when the search was sent. Only a choice the new list lacks (another
    library's, an older search's) is cleared; otherwise the value is left alone, because the visitor may have
    picked from the previous list while this search ran, and a late answer must not wipe that pick.
    """
    entries, message = attempt(hubui.search_models, library, pattern or "", False, SEARCH_LIMIT)
    names = [e.name for e in entries or []]
    if entries is not None and not names:
        message = f"No {views.md(library)} architecture matches {views.code(pattern)}: try a shorter part or `*`."
    info = f"{len(names)} found" + (" (the first ones: type more to narrow)" if len(names) >= SEARCH_LIMIT else "")
    if current and current not in names:
        return gr.update(choices=names, info=info if names else SEARCH_INFO, value=None), message
    return gr.update(choices=names, info=info if names else SEARCH_INFO), message


@ui_handler
def select_model(library: str, architecture: str | None) -> Iterator[tuple[Any, Any, Any]]:
    """Facts and pretrained tags of the chosen architecture; errors inline.

    The tag box waits first, while the tags are looked up (the Hub is asked which it can serve): a tag picked
    from the previous list meanwhile would be replaced by the new default. One event does both, so the box is
    always usable again when it ends, whatever other events run meanwhile.
    """
    random_only = gr.update(choices=[forms.RANDOM_WEIGHTS], value=forms.RANDOM_WEIGHTS, interactive=True, info="")
    if not architecture:
        # Leave model-error alone: it may hold the search's "no model matches" message.
        yield "", random_only, gr.skip()
        return
    yield gr.skip(), gr.update(interactive=False, info=f"looking up the pretrained tags of {architecture}…"), gr.skip()
    facts, message = attempt(hubui.model_facts, library, architecture)
    if facts is None:
        yield "", random_only, message
        return
    tag, note, choices = _default_weights(library, architecture, facts)
    panel = derived.facts_for_weights(facts, library, architecture, tag, None)
    yield panel, gr.update(choices=[forms.RANDOM_WEIGHTS, *choices], value=tag, info=note, interactive=True), ""


TAG_READY = gr.update(interactive=True, info="")  # the tag box after a failed look-up: usable again


def _default_weights(library: str, architecture: str, facts: hubui.ModelFacts) -> tuple[str, str, list[Any]]:
    """The tag to preselect: the library's default if the configured Hub can serve it, else one it can, else
    random weights; with the note that says why, and the tags labelled by whether this Hub has them."""
    if not facts.pretrained_tags:
        return forms.RANDOM_WEIGHTS, "", []
    servable = hubui.servable_tags(library, architecture)  # one cheap request per model, cached; never raises
    chosen = hubui.default_weights(servable, facts.tag)
    note = chosen.note
    if chosen.tag is None and note:  # the one other source of trained weights the box itself takes
        note += f" Or type {forms.HUB_PREFIX}owner/name here to load the weights of a repo this Hub has."
    return chosen.tag or forms.RANDOM_WEIGHTS, note, list(servable.choices())


@ui_handler
def select_tag(library: str, architecture: str | None, tag: str | None) -> tuple[str, Any]:
    """Facts for the tag (licence and preprocessing differ per tag); errors inline."""
    return select_weights(library, architecture, tag, None)


@ui_handler
def select_weights(library: str, architecture: str | None, tag: str | None, checkpoint: Any) -> tuple[str, Any]:
    """Facts for the weights a Run will load: the tag's, or the bare architecture's for random weights and a
    checkpoint (which wins over the tag); errors inline."""
    if not architecture:
        return "", gr.skip()
    spec = forms.model_spec(library, architecture, tag, checkpoint)
    name = hubui.pretrained_name(library, spec.architecture, spec.pretrained)
    facts, message = attempt(hubui.model_facts, library, name)
    if facts is None:
        return "", message
    return derived.facts_for_weights(facts, library, architecture, tag, checkpoint), ""


# --- convert ----------------------------------------------------------------------------------------
def gate(session: Session, override: bool) -> dict[str, Any]:
    """Push is enabled when parity passed, or when the override box is ticked."""
    passed = session.result is not None and session.result.passed
    return gr.update(interactive=bool(passed or override))


@ui_handler
def run_convert(
    session: Session,
    library: str,
    architecture: str | None,
    tag: str | None,
    checkpoint: Any,
    precision: str,
    tolerance_mode: str,
    images: Any,
    repo_name: str | None,
    override: bool,
    target: str = NATIVE,
    num_classes: str | float | None = None,
    request: gr.Request | None = None,
) -> Iterator[tuple[Any, ...]]:
    """Stream a conversion: table, progress, plot and verdict after every step and parity batch.

    The progress names the stage, its own progress, how long it has run and the time left; while a stage gives
    no news (a rebuild), it alone is redrawn every :data:`TICK_S` seconds, with a bar that moves on each redraw.
    The verdict names the weights' origin (pretrained tag, checkpoint, or random weights with their seed).

    ``target`` is ``"native"`` or another registered target (offered only when installed; see
    :func:`forms.target_choices`). ``num_classes``: the Classes box (empty: the model's own classifier).

    Yields:
        ``(table, progress, plot, verdict, files, push button, repo name, session)``.
    """
    uploads = [p for p in (forms.file_path(checkpoint), *forms.file_paths(images)) if p]
    try:
        yield from _run_convert(
            session, library, architecture, tag, checkpoint, precision, tolerance_mode, images, repo_name, override,
            target, num_classes, request,
        )  # fmt: skip
    except hubui.HubUIError as exc:
        _hide_server_paths(exc, session, uploads)  # errors before the conversion starts: the spec, the images
        raise


def _run_convert(
    session: Session,
    library: str,
    architecture: str | None,
    tag: str | None,
    checkpoint: Any,
    precision: str,
    tolerance_mode: str,
    images: Any,
    repo_name: str | None,
    override: bool,
    target: str,
    num_classes: str | float | None,
    request: gr.Request | None,
) -> Iterator[tuple[Any, ...]]:
    spec = forms.model_spec(library, architecture, tag, checkpoint, num_classes)
    from hubui.parity import load_image

    image_paths = forms.file_paths(images)
    for path in image_paths:  # an upload that is not an image fails before any model load or folder
        load_image(path)
    out_dir = session.new_run_dir(request.session_hash if request is not None else None)
    options = hubui.ConvertOptions(
        out_dir,
        precision,
        forms.tolerance(tolerance_mode, precision),
        image_paths,
        target=target or NATIVE,
    )
    name = repo_name or hubui.suggested_repo_name(spec)
    session.cancel = cancel = threading.Event()
    report, override_gate = None, gate(session, override)
    uploads = [spec.checkpoint or "", *image_paths]
    try:
        tracker, redraws = StageTracker(), 0
        # The conversion runs in a worker thread so that a stage with no news (a rebuild) still shows its time.
        for event in with_ticks(hubui.iter_convert(spec, options, cancel=cancel), TICK_S, cancel):
            redraws += 1
            if event is None:
                yield _progress_tick(tracker, session, redraws)
                continue
            tracker.update_event(event)
            report = event.report or report
            session.result = event.result or session.result
            stopped = cancel.is_set() and report is None  # cancelled before parity could start
            verdict = _verdict(report, stopped) if event.result or stopped else "## RUNNING"
            line = "cancelled" if stopped else _progress_text(tracker, session, redraws)
            files = views.files_frame(event.result.export.files) if event.result else gr.skip()
            yield _convert_view(report, line, verdict, files, gate(session, override), name, session)
            if stopped:
                return
    except hubui.HubUIError as exc:  # show where it stopped, then let the mapping raise the gr.Error
        _hide_server_paths(exc, session, uploads)
        yield _convert_view(
            report, "stopped by an error", "## ERROR\n" + inline(exc), gr.skip(), override_gate, name, session
        )
        raise
    finally:
        session.cancel = None


def _hide_server_paths(exc: hubui.HubUIError, session: Session, uploads: list[str]) -> None:
    """Rewrite an error's text so that it names uploads by their file names and never shows a server folder.

    Gradio keeps an upload at ``<temp>/gradio/<hash>/<name>``, and exports go to the session's scratch folder:
    neither path means anything to a visitor, and both tell an attacker about the server.
    """
    swaps: dict[str, str] = {}
    for upload in uploads:
        if upload:
            for form in {upload, str(Path(upload).resolve())}:
                swaps[form] = Path(upload).name
    for folder in (session.workdir, session.scratch_root):
        if folder is not None:
            for form in {str(folder), str(Path(folder).resolve())}:
                swaps[form] = "the session folder"
    for old in sorted(swaps, key=len, reverse=True):  # longest first: a folder is a prefix of its files
        exc.message = exc.message.replace(old, swaps[old])
        exc.hint = (exc.hint or "").replace(old, swaps[old])
    exc.args = (exc.message,)


def _verdict(report: hubui.ParityReport | None, stopped: bool) -> str:
    """The verdict, with the weights' origin under its heading: a PASS of random weights says so."""
    text = views.verdict_markdown(report, stopped)
    origin = getattr(report, "weights_origin", None)
    if not text or origin is None:
        return text
    head, _, rest = text.partition("\n")
    # Blank lines around it: Markdown joins single-newline lines into one sentence-less paragraph.
    return f"{head}\n\n**Weights:** {views.md(origin.describe())}" + (f"\n\n{rest}" if rest else "")


PULSE_WIDTH = 8


def _pulse(redraws: int) -> str:
    """A bar whose lit cell moves on every redraw: a stage that cannot say how far it is shows that it works."""
    lit = redraws % PULSE_WIDTH
    return "".join("▰" if i == lit else "▱" for i in range(PULSE_WIDTH))


def _progress_text(tracker: StageTracker, session: Session, redraws: int = 0) -> str:
    running = []
    for status in tracker.running():
        status = replace(status, message=_short_paths(status.message, session))
        if not status.stage_fraction and status.stage != "done":  # "0% of this stage" for 28 s reads as frozen
            status = replace(status, stage_fraction=None, message=f"{_pulse(redraws)} {status.message}")
        running.append(status)
    return views.progress_markdown(running, tracker.finished)


def _progress_tick(tracker: StageTracker, session: Session, redraws: int) -> tuple[Any, ...]:
    """A stage gave no news for a while: only the progress line changes (its time so far, the time left)."""
    line = _progress_text(tracker, session, redraws)
    return (gr.skip(), line, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), session)


def _short_paths(message: str, session: Session) -> str:
    """Progress lines name the export folder; the server's temp path means nothing to a visitor."""
    return message.replace(str(session.workdir), "the session folder") if session.workdir else message


def _convert_view(report: hubui.ParityReport | None, line: str, verdict: str, *rest: Any) -> tuple[Any, ...]:
    frame = plots.samples_frame(report)
    return (views.parity_frame(report), line, gr.update(value=frame, label=plots.plot_label(frame)), verdict, *rest)


@ui_handler
def cancel_convert(session: Session) -> str:
    """Ask the running conversion to stop after its current step."""
    if session.cancel is None:
        return "nothing is running"
    session.cancel.set()
    return "cancelling after the current step…"


__all__ = [
    "TAG_READY",
    "cancel_convert",
    "dry_run",
    "gate",
    "load_existing_card",
    "log_in",
    "log_out",
    "on_load",
    "preview_card",
    "push",
    "run_convert",
    "search",
    "searching",
    "select_model",
    "select_tag",
    "select_weights",
]
