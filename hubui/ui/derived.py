"""Values the app derives from what the user chose, recomputed whenever those choices change.

Each was filled once and then went stale: the repo name kept ``resnet18.a1_in1k`` after random weights were
chosen, the facts panel kept the default tag after "(random weights)" or a checkpoint, and an old dry-run plan
or push result stayed under changed inputs. Here the repo name follows the weights unless the user typed their
own, the facts say which weights will really be loaded, a repo name is checked (and an ``ns/name`` paste split)
as it is typed, and an earlier plan or result is marked out of date. Callbacks, a few lines each, over hubui's
public API; no state of their own (the last suggested name travels in a ``gr.State``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr

import hubui
from hubui.ui import forms, views
from hubui.ui.errors import WARN, describe, ui_handler
from hubui.ui.state import Session

STALE = "**Out of date:** the inputs changed since this was made; run it again."
_STALE_RE = re.compile(r"^\*\*Out of date:\*\*[^\n]*\n\n")


# --- the repo name follows the weights --------------------------------------------------------------
def suggested_name(library: str, architecture: str | None, tag: str | None, checkpoint: Any) -> str | None:
    """The repo name for the weights chosen (``resnet18.a1_in1k``, ``resnet18-random-seed0``, a checkpoint's
    stem), or ``None`` while no architecture is chosen."""
    if not architecture or not architecture.strip():
        return None
    return hubui.suggested_repo_name(forms.model_spec(library, architecture, tag, checkpoint))


@ui_handler
def follow_name(
    library: str, architecture: str | None, tag: str | None, checkpoint: Any, name: str | None, last: str | None
) -> tuple[Any, str | None]:
    """The name box follows the weights, unless it holds a name the user typed.

    Args:
        library, architecture, tag, checkpoint: The Model tab's choices.
        name: The name box now.
        last: The name this callback suggested last (a ``gr.State``).

    Returns:
        ``(name box update, the new suggestion)``; the box is left alone when it holds the user's own name.
    """
    suggestion = suggested_name(library, architecture, tag, checkpoint)
    if suggestion is None:
        return gr.skip(), last
    typed = (name or "").strip()
    if typed and typed != (last or ""):
        return gr.skip(), last  # the user's own name: never overwritten
    return suggestion, suggestion


# --- the repo name is checked as it is typed --------------------------------------------------------
def name_problem(namespace: str | None, name: str | None) -> str:
    """What is wrong with the repo name, in the words of the core's check, or ``""``.

    An ``ns/name`` paste is not a problem: leaving the box splits it (see :func:`split_name`).
    """
    text = (name or "").strip()
    if not text:
        return ""
    if text.count("/") == 1:
        pasted_ns, _, rest = text.partition("/")
        return _problem(f"{pasted_ns}/{rest}") or (
            f"`{views.md(text)}` is a full repo id: leaving the box puts `{views.md(pasted_ns)}` in Namespace "
            f"and `{views.md(rest)}` in Repo name."
        )
    if "/" in text:
        return f"**{WARN} `{views.md(text)}` has more than one `/`:** give the repo name only (e.g. `my-model`)."
    return _problem(f"{namespace or 'your-name'}/{text}")


def _problem(repo_id: str) -> str:
    try:
        hubui.validate_repo_id(repo_id)
    except hubui.HubUIError as exc:
        _, message, hint = describe(exc)
        return f"**{WARN} {views.md(message)}**" + (f"  \n{views.md(hint)}" if hint else "")
    return ""


@ui_handler
def split_name(namespace: str | None, name: str | None) -> tuple[Any, Any, str]:
    """Leaving the name box: an ``ns/name`` paste goes into the two boxes (``demo/foo`` -> ``demo`` + ``foo``).

    Returns:
        ``(namespace update, name update, the problem left, or "")``.
    """
    text = (name or "").strip()
    if text.count("/") != 1 or _problem(text):
        return gr.skip(), gr.skip(), name_problem(namespace, name)
    pasted_ns, _, rest = text.partition("/")
    return pasted_ns, rest, ""


# --- the facts say which weights will be loaded -----------------------------------------------------
def weights_line(library: str, architecture: str, tag: str | None, checkpoint: Any) -> str:
    """One line under the facts: the weights a Run will load, as :class:`hubui.WeightsOrigin` describes them."""
    spec = forms.model_spec(library, architecture, tag, checkpoint)
    if spec.checkpoint is not None:  # named, never hashed here: the hash is taken (once) by the conversion
        return f"**Weights:** your checkpoint {views.code(Path(str(spec.checkpoint)).name)} (it wins over the tag)"
    return f"**Weights:** {views.md(hubui.weights_origin(spec).describe())}"


def facts_for_weights(
    facts: hubui.ModelFacts, library: str, architecture: str, tag: str | None, checkpoint: Any
) -> str:
    """The facts panel for the weights chosen: random weights or a checkpoint show no pretrained tag."""
    spec = forms.model_spec(library, architecture, tag, checkpoint)
    if spec.pretrained is None:  # the bare architecture's facts name its default tag: not what will be loaded
        facts = replace(facts, tag=None, hf_hub_id=None, license=None)
    return views.facts_markdown(facts) + "\n\n" + weights_line(library, architecture, tag, checkpoint)


# --- a plan or result made from other inputs --------------------------------------------------------
def mark_stale(text: str | None) -> Any:
    """An earlier dry-run plan or push result, marked out of date (the inputs it was made from changed)."""
    if not text or not text.strip() or _STALE_RE.match(text) or WARN in text:
        return gr.skip()  # nothing shown, already marked, or an error (it stays as it is)
    return f"{STALE}\n\n{text}"


def _digest(session: Session, values: tuple[Any, ...]) -> str:
    # The run counts too: a new conversion is another export even when every form value is the same.
    return hashlib.sha256(repr((session.runs, values)).encode("utf-8", "replace")).hexdigest()


def made_from(kind: str) -> Callable[..., None]:
    """The callback that notes the inputs a plan or result (``kind``) is made from: ``(session, *values)``.

    Wired to the same click as the dry run / push, so it sees the values that click sent.
    """

    def note(session: Session, *values: Any) -> None:
        session.made_from[kind] = _digest(session, values)

    return note


def stale_unless_same(kind: str) -> Callable[..., Any]:
    """The callback ``(text, session, *values)`` that marks the plan or result out of date (:func:`mark_stale`)
    unless ``values`` are those it was made from. Gradio also fires change events for values set by the app
    and late ones; only a real change marks it."""

    def check(text: str | None, session: Session, *values: Any) -> Any:
        if session.made_from.get(kind) == _digest(session, values):
            return gr.skip()
        return mark_stale(text)

    return check


__all__ = [
    "STALE",
    "facts_for_weights",
    "follow_name",
    "made_from",
    "mark_stale",
    "name_problem",
    "split_name",
    "stale_unless_same",
    "suggested_name",
    "weights_line",
]
