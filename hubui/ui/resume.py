"""A page reload takes up the same session: the model, the run and the card come back.

How: on its first load a tab gets a random key (:class:`hubui.ui.state.SessionStore`) that it keeps in its
``sessionStorage`` (which survives a reload of that tab, and no more). A reload sends the key back, and the server
puts the tab's state back to that :class:`~hubui.ui.state.Session`: the token stays in the server's memory, never
in the browser. The form's values are remembered server-side as they change (:func:`remember`) and put back into
the components (:func:`resume_session`).

The model tab's events recompute what follows a choice (the search empties the architecture, a new architecture
resets the tag, the tag fills the card's licence...). While a restore is under way (``Session.pending``), the
``reapply_*`` callbacks chained after those events put the remembered values back once the form is in the state
it was; the visitor's first change of one of those inputs ends it (:func:`forget_pending`). So the outcome does
not depend on the order in which gradio runs these events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from hubui.ui import forms, handlers, plots, views
from hubui.ui.card_handlers import EXTRAS, LAST_MARKDOWN
from hubui.ui.card_tab import section_id
from hubui.ui.state import Session, SessionStore

STORAGE_KEY = "hubui-session"
# The load event's first input is the key box: the key comes from this tab's sessionStorage, not from the page.
READ_KEY_JS = f"(...args) => [window.sessionStorage.getItem('{STORAGE_KEY}') || '', args[1]]"
WRITE_KEY_JS = f"(key) => {{ if (key) window.sessionStorage.setItem('{STORAGE_KEY}', key); return []; }}"
RUN_OUTPUTS = 5  # verdict, parity table, plot, exported files, push button
MODEL_KEYS = ("model-library", "model-results", "model-tag")
DEFAULT_KEYS = ("card-license", "card-license-name", "card-base-model", "card-pipeline-tag")


def remembered_ids(card_ids: Sequence[str]) -> tuple[str, ...]:
    """The elem_ids whose values a reload puts back, in the order the wiring lists their components."""
    return (
        "model-library", "model-search", "model-results", "model-tag", "convert-precision", "convert-tolerance",
        "convert-target", *card_ids, "push-namespace", "push-name", "push-branch", "push-private", "push-create-pr",
        "push-readme-mode", "push-message", "push-override", "push-allow-random",
    )  # fmt: skip


def card_ids() -> tuple[str, ...]:
    """The card form's elem_ids (card_tab's order), then the extras' (:data:`card_handlers.EXTRAS`)."""
    fields = ("license", "language", "tags", "datasets", "base-model", "pipeline-tag", "description", "usage")
    return (*(f"card-{f}" for f in fields), "card-citation", "card-eval", *(section_id(s) for s in EXTRAS))


def remember(keys: Sequence[str]) -> Callable[..., None]:
    """The callback that keeps the form's values in the session as they change (``(session, *values)``)."""

    def keep(session: Session, *values: Any) -> None:
        session.form.update(zip(keys, values, strict=True))

    return keep


def _value(key: str, value: Any) -> Any:
    """What to give a component back: dropdowns get their remembered value among their choices."""
    if key == "model-results" or key == "push-namespace":
        return gr.update(choices=[value] if value else [], value=value)
    if key == "model-tag":
        tags = dict.fromkeys([forms.RANDOM_WEIGHTS, value or forms.RANDOM_WEIGHTS])
        return gr.update(choices=list(tags), value=value)
    return value


def run_outputs(session: Session) -> tuple[Any, ...]:
    """The last conversion's verdict, table, plot, files and push button, as a finished run leaves them."""
    result = session.result
    if result is None:
        return (gr.skip(),) * RUN_OUTPUTS
    report = result.report
    verdict = views.verdict_markdown(report)
    if report.weights_origin is not None:
        verdict += f"\n\nWeights: {views.md(report.weights_origin.describe())}"
    frame = plots.samples_frame(report)
    plot = gr.update(value=frame, label=plots.plot_label(frame))
    gate = gr.update(interactive=bool(result.passed or session.form.get("push-override")))
    return verdict, views.parity_frame(report), plot, views.files_frame(result.export.files), gate


def resume_session(store: SessionStore, keys: Sequence[str]) -> Callable[..., tuple[Any, ...]]:
    """The load callback: ``(key, session, request) -> (session, key, *remembered values, *run outputs)``."""

    def resume(key: str | None, session: Session, request: gr.Request) -> tuple[Any, ...]:
        tab = request.session_hash if request is not None else None
        restored = store.resume(key, tab)
        if restored is None:
            return (session, store.register(session, tab), *(gr.skip(),) * (len(keys) + RUN_OUTPUTS))
        restored.form.pop(LAST_MARKDOWN, None)  # the new page's Markdown box is empty: fill it again
        restored.pending = dict(restored.form)
        values = [_value(k, restored.form[k]) if k in restored.form else gr.skip() for k in keys]
        return (restored, key, *values, *run_outputs(restored))

    return resume


def _restoring(session: Session, **now: Any) -> bool:
    """A restore is under way and the form is back where it was for ``now`` (elem_id with ``-`` as ``_``)."""
    pending = session.pending
    return bool(pending) and all(pending.get(k.replace("_", "-")) == v for k, v in now.items())


def reapply_architecture(session: Session, library: str | None) -> Any:
    """After a search: the remembered architecture, when the search was the remembered one's."""
    if _restoring(session, model_library=library) and session.pending.get("model-results"):
        return gr.update(value=session.pending["model-results"])
    return gr.skip()


def reapply_tag(session: Session, library: str | None, architecture: str | None) -> Any:
    """After the architecture's facts: the remembered tag, when the architecture is the remembered one."""
    if _restoring(session, model_library=library, model_results=architecture) and "model-tag" in session.pending:
        return gr.update(value=session.pending["model-tag"])
    return gr.skip()


def reapply_facts(session: Session, library: str, architecture: str | None, tag: str | None, checkpoint: Any) -> Any:
    """After the remembered tag is back: the facts of those weights (the tag's own ``.input`` event did not fire)."""
    if _restoring(session, model_library=library, model_results=architecture, model_tag=tag):
        return handlers.select_weights(library, architecture, tag, checkpoint)
    return gr.skip(), gr.skip()


def reapply_defaults(session: Session, library: str | None, architecture: str | None, tag: str | None) -> Any:
    """After the card's fields followed the model: the remembered ones, when the model is the remembered one."""
    if _restoring(session, model_library=library, model_results=architecture, model_tag=tag):
        return tuple(session.pending.get(k, gr.skip()) for k in DEFAULT_KEYS)
    return (gr.skip(),) * len(DEFAULT_KEYS)


def reapply_namespace(session: Session) -> Any:
    """After the login status: the remembered namespace."""
    if session.pending.get("push-namespace"):
        return gr.update(value=session.pending["push-namespace"])
    return gr.skip()


def forget_pending(session: Session) -> None:
    """The visitor changed a model input: the restore is over."""
    session.pending = {}


__all__ = [
    "READ_KEY_JS",
    "STORAGE_KEY",
    "WRITE_KEY_JS",
    "card_ids",
    "forget_pending",
    "reapply_architecture",
    "reapply_defaults",
    "reapply_facts",
    "reapply_namespace",
    "reapply_tag",
    "remember",
    "remembered_ids",
    "resume_session",
    "run_outputs",
]
