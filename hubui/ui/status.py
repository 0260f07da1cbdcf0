"""The status bar over every tab: model · weights origin · precision · verdict · ready to push, or why not.

Pure functions, no gradio: :func:`status_markdown` reads the session (its token and its last conversion) and
what the form shows now (:class:`StatusForm`), and gives one line of Markdown. The app redraws it after every
event that changes one of those (see :mod:`hubui.ui.app`).

The bar describes the **last conversion** when there is one (that is what a push uploads), and says so when the
form has changed since; before any conversion it describes the form's choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import hubui
from hubui.ui.forms import HUB_PREFIX, weights_choice
from hubui.ui.views import VERDICTS, md

if TYPE_CHECKING:
    from hubui import ConvertResult
    from hubui.ui.state import Session

READY = "ready to push"
SEP = " · "


@dataclass(frozen=True)
class StatusForm:
    """What the form shows now (the inputs of the next conversion).

    Args:
        library: The library radio's value.
        architecture: The chosen architecture (``None``: none chosen).
        tag: The pretrained-tag dropdown's value (``(random weights)``, a tag, or ``hf-hub:owner/name``).
        checkpoint: The uploaded checkpoint's path or file name (it wins over the tag), or ``None``.
        precision: The precision radio's value.
        override: The "push even though parity did not pass" box.
        allow_random: The "push random weights anyway" box.
    """

    library: str | None = None
    architecture: str | None = None
    tag: str | None = None
    checkpoint: str | None = None
    precision: str | None = None
    override: bool = False
    allow_random: bool = False


def _choice(form: StatusForm) -> tuple[str | None, str | None]:
    """``(pretrained tag, Hub repo)`` of the form's tag box; a box the app would refuse counts as neither."""
    try:
        return weights_choice(form.tag, form.checkpoint)
    except hubui.InvalidInputError:
        return None, None


def form_origin(form: StatusForm) -> str:
    """Where the form's weights would come from, in the words :mod:`hubui.provenance` uses."""
    if form.checkpoint:  # named only: the hash is taken (once) by the conversion
        return f"checkpoint {Path(form.checkpoint).name}"
    tag, hub_repo = _choice(form)
    spec = hubui.ModelSpec(form.library or "", form.architecture or "", pretrained=tag, hf_hub_id=hub_repo)
    return str(hubui.weights_origin(spec).describe())  # no checkpoint: nothing is read


def result_origin(result: ConvertResult) -> str:
    """Where the last conversion's weights came from (its report's record, else its spec)."""
    origin = getattr(result.report, "weights_origin", None)
    if origin is not None:
        return str(origin.describe())
    spec = result.loaded.spec
    tag = f"{HUB_PREFIX}{spec.hf_hub_id}" if spec.hf_hub_id else spec.pretrained
    return form_origin(StatusForm(tag=tag, checkpoint=spec.checkpoint))


def _changed(result: ConvertResult, form: StatusForm) -> bool:
    """Whether the form now asks for another conversion than the last one (model, weights or precision)."""
    spec = result.loaded.spec
    if form.architecture is None and form.library is None:
        return False  # nothing known about the form: say nothing about it
    return (
        (form.library or spec.library) != spec.library
        or (form.architecture or "") != spec.architecture
        or _choice(form) != (spec.pretrained, spec.hf_hub_id)
        or (Path(form.checkpoint).name if form.checkpoint else None)
        != (Path(spec.checkpoint).name if spec.checkpoint else None)
        or (form.precision or result.report.precision) != result.report.precision
    )


def running(session: Session) -> bool:
    """A conversion runs (its result comes with its last event, a moment before the run lets go of its cancel)."""
    return session.cancel is not None and session.result is None


def push_readiness(session: Session, form: StatusForm) -> str:
    """``ready to push``, or ``not ready: <why, and what to do>``."""
    result = session.result
    if running(session):
        return "not ready: a conversion is running"
    if result is None:
        if session.runs:
            return "not ready: the last run stopped before parity finished: convert again to push"
        return "not ready: convert a model on the Convert & parity tab first"
    verdict = result.report.verdict
    if verdict == "cancelled":
        return "not ready: parity cancelled: convert again to push"
    if verdict == "fail" and not form.override:
        return (
            "not ready: parity failed: fix it and convert again, or tick "
            "“Push even though parity did not pass” on the Card & push tab"
        )
    if verdict not in ("pass", "fail"):
        return f"not ready: parity {md(verdict)}: convert again to push"
    origin = getattr(result.report, "weights_origin", None)
    if origin is not None and origin.is_random and not form.allow_random:
        return "not ready: random weights: tick “Push random weights anyway” on the Card & push tab to push them"
    if session.token is None:
        return "not ready: log in on the Login tab"
    if session.identity is not None and not session.identity.can_write:
        return "not ready: this token is read-only: log in with a token that can write"
    ready = READY if verdict == "pass" else f"{READY} (parity failed: the card will say so)"
    if _changed(result, form):
        ready += "; the form has changed since this run: a push uploads this run, Run again to convert the new choice"
    return ready


def status_markdown(session: Session, form: StatusForm) -> str:
    """The status bar's line.

    Args:
        session: The browser session (its last conversion, whether one is running, its login).
        form: What the form shows now.

    Returns:
        Markdown: ``**model** · weights origin · precision · verdict · ready to push`` (or ``not ready: why``).
    """
    result = session.result
    if result is not None:
        spec = result.loaded.spec
        model = f"**{md(spec.library)}/{md(spec.architecture)}**"
        origin, precision = md(result_origin(result)), md(result.report.precision)
        verdict = f"parity **{VERDICTS.get(result.report.verdict, result.report.verdict.upper())}**"
    else:
        chosen = bool(form.architecture)
        model = f"**{md(form.library)}/{md(form.architecture)}**" if chosen else "no model chosen"
        # No model, no weights: "random weights" would describe a choice nobody made yet.
        origin, precision = (md(form_origin(form)) if chosen else ""), md(form.precision or "fp32")
        verdict = "parity **RUNNING**" if running(session) else "parity not run"
    return SEP.join(part for part in (model, origin, precision, verdict, md(push_readiness(session, form))) if part)


def form_from_values(
    library: str | None,
    architecture: str | None,
    tag: str | None,
    checkpoint: object,
    precision: str | None,
    override: bool | None,
    allow_random: bool | None = False,
) -> StatusForm:
    """A :class:`StatusForm` from the components' values (a ``gr.File`` value is a path or has ``.name``)."""
    path = getattr(checkpoint, "name", checkpoint) if checkpoint else None
    return StatusForm(
        library, architecture or None, tag, str(path) if path else None, precision, bool(override), bool(allow_random)
    )


def refresh(
    session: Session,
    library: str | None,
    architecture: str | None,
    tag: str | None,
    checkpoint: object,
    precision: str | None,
    override: bool | None,
    allow_random: bool | None = False,
) -> str:
    """The status bar's callback: its line from the session and the form's current values."""
    form = form_from_values(library, architecture, tag, checkpoint, precision, override, allow_random)
    return status_markdown(session, form)


__all__ = [
    "READY",
    "StatusForm",
    "form_from_values",
    "form_origin",
    "push_readiness",
    "refresh",
    "running",
    "status_markdown",
]
