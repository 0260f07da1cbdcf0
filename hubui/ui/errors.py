"""The one place where errors become what a person sees in the app.

:func:`describe` turns an exception into ``(title, message, hint)``: a :class:`~hubui.HubUIError` keeps
its message and hint; anything else is logged server-side (its type only: an unexpected message may
quote a secret) and shown as a generic internal error. :func:`to_gr_error` wraps that in a
``gr.Error`` (no traceback, HTML-escaped), :func:`inline` in a Markdown line for inline messages, and
:func:`ui_handler` applies the mapping to every callback. Any token held by the session or passed as
a ``gr.OAuthToken`` is scrubbed from the text as a last line of defence.

The core writes for every face (the CLI, Python, the app); :func:`ui_words` turns what only makes sense
outside the app ("the token argument", a server path, a CLI flag) into what a person in the app sees and
can act on. :func:`shown_at` is how the app shows an error once, next to what caused it: the message goes
into one output of the event and the ``gr.Error`` is raised without a toast (API callers still get it).
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import re
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

import gradio as gr

import hubui
from hubui.ui.state import Session

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal error, see the server logs."
WARN = "⚠"  # every inline error starts with it, and nothing else in the app shows it: one per failed action
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _title(exc: BaseException) -> str:
    """``ReadOnlyTokenError`` -> ``Read only token``."""
    name = type(exc).__name__.removesuffix("Error") or "Error"
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return words[:1].upper() + words[1:]


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<token>")
    return text


# What the core says for every face, as the app says it (the app has a Classes box, a Precision choice...).
_UI_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"\bThe token from the token argument\b", "This token"),
        (r"\bthe token from the token argument\b", "this token"),
        (r"\bthe token argument\b", "the token you gave"),
        (
            r"Pass a real token \(from your Hub settings page\), or leave it out to use HF_TOKEN or `hf auth login`\.",
            "Paste a real token from your Hub settings page.",
        ),
        (r"\bset num_classes=(\d+)( \(and label_names\))?", r"set Classes to \1 on the Model tab"),
        (r"\bnum_classes=(\d+) was asked", r"Classes \1 was asked"),
        (r"\bfix num_classes\b", "fix Classes on the Model tab"),
        (r"\bnum_classes=0 or another head\b", "Classes 0 or another head"),
        (r"convert with --precision (\w+)( \(or (\w+)\))?", r"choose Precision \1\2 on the Convert tab"),
        (r"a smaller --precision", "a smaller Precision"),
        (
            r"Pass --allow-random-weights \(CLI\) / tick the confirmation \(app\)"
            r"(, or PushRequest\(allow_random_weights=True\))?",
            "Tick “Push random weights anyway” next to the Push button",
        ),
        (r"Choose a precision that fits, or pass --allow-unpushable-size[^.]*\.", "Choose a Precision that fits."),
        (
            r"Choose a smaller --max-shard-size \(the default is [^)]*\), or pass --allow-unpushable-size[^.]*\.",
            "The app writes the default shard size: convert it with `hubui convert --max-shard-size` instead.",
        ),
        (r"Free some space, choose --out on another disk, or a smaller --precision\.", "Choose a smaller Precision."),
        (r"; if you know more is free \(MemAvailable[^)]*\), pass --no-memory-check \(memory_check=False\)", ""),
        (r", or with a smaller --max-shard-size where the format is sharded", ""),
        (r" \((?:overwrite|allow_unpushable_size|memory_check|out_dir)=[^)]*\)", ""),
        # The Model tab's tag box takes a Hub repo as hf-hub:owner/name (the core's hf_hub_id).
        (r"Set architecture='([^']+)'\.", r"Pick \1 as the Architecture on the Model tab."),
        (
            r"Point hf_hub_id at a repo pushed with (\w+), or load its weights as a checkpoint\.",
            r"Type hf-hub: and a repo pushed with \1 in the tag box, or upload its weights as a checkpoint.",
        ),
        (r"\bhf_hub_id '", "The Hub repo '"),
        # The Card & push tab shows license_name / license_link as the "License name" / "License link" boxes.
        (r"Card field 'license_name' = None is required with license 'other'\.", "The License name box is empty."),
        (r"Name the license, e\.g\. 'my-license'\.", "A licence “other” needs a name: type one, e.g. my-license."),
        (r"Card field 'license_(name|link)' = ", r"The License \1 "),
        (r"for 'license_(name|link)'", r"for the License \1"),
        (r"'other' with license_name and license_link", "“other” with its name and link"),
    )
)
# An absolute server path (not part of a URL or a repo id): shown as its last part only.
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"`()<>]+/)+([^\s/'\"`()<>,;]*)")


def ui_words(text: str) -> str:
    """A core message as the app says it: no CLI-only wording, no server paths.

    Args:
        text: A message or hint written for every face.

    Returns:
        The text with "the token argument", CLI flags the app offers as controls and server paths
        (as their last part) rewritten.
    """
    for pattern, replacement in _UI_WORDS:
        text = pattern.sub(replacement, text)
    # A folder's own name is all a visitor needs; the server's layout is not theirs to see.
    return _SERVER_PATH.sub(lambda m: m.group(1) or "a server folder", text)


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> tuple[str, str, str]:
    """Map an exception to ``(title, message, hint)`` for people. This is the app's only mapping.

    Args:
        exc: What was raised.
        secrets: Tokens to remove from the text, should one ever appear in it.

    Returns:
        A :class:`hubui.HubUIError`'s class as a title, its message and its hint; for anything else a
        generic "internal error" (the exception's type is logged, never its text).
    """
    if isinstance(exc, hubui.HubUIError):
        secrets = tuple(secrets)
        return _title(exc), ui_words(_scrub(exc.message, secrets)), ui_words(_scrub(exc.hint or "", secrets))
    # The type and the frames only: the text of an unexpected exception may quote a secret.
    frames = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("internal error in the app: %s (message withheld)\n%s", type(exc).__name__, frames)
    return "Internal error", INTERNAL_ERROR, "Try again; if it keeps happening, report it with the server logs."


def to_gr_error(exc: BaseException, secrets: Iterable[str] = ()) -> gr.Error:
    """The ``gr.Error`` to raise for ``exc``: message and hint, escaped, without a traceback."""
    if isinstance(exc, gr.Error):
        return exc
    title, message, hint = describe(exc, secrets)
    text = html.escape(message, quote=False) + (f"<br>{html.escape(hint, quote=False)}" if hint else "")
    error = gr.Error(text, title=title, print_exception=False)
    error.hubui_inline = _inline_text(message, hint)  # type: ignore[attr-defined]  # for shown_at
    return error


def inline(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The same mapping as a Markdown line, for errors shown inside a tab."""
    _, message, hint = describe(exc, secrets)
    return _inline_text(message, hint)


def _inline_text(message: str, hint: str) -> str:
    return f"**{WARN} {_md(message)}**" + (f"  \n{_md(hint)}" if hint else "")


def _md(text: str) -> str:
    """Plain text that Markdown shows as written (no HTML, no emphasis)."""
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", text)


def attempt(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, str]:
    """Call ``fn``; on an error return ``(None, inline message)`` instead, for errors shown inside a tab.

    Returns:
        ``(result, "")`` or ``(None, message)``.
    """
    try:
        return fn(*args, **kwargs), ""
    except Exception as exc:  # the same mapping as ui_handler, shown inline
        return None, inline(exc, _secrets([*args, *kwargs.values()]))


def _secrets(values: Iterable[Any]) -> list[str]:
    found = []
    for value in values:
        if isinstance(value, (Session, gr.OAuthToken)) and value.token:
            found.append(value.token)
    return found


def ui_handler(fn: F) -> F:
    """Wrap a callback (plain or generator) so that every exception leaves it as a mapped ``gr.Error``."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            secrets = _secrets([*args, *kwargs.values()])
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # the one mapping point: see describe()
                raise to_gr_error(exc, secrets) from None

        return cast(F, stream)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        secrets = _secrets([*args, *kwargs.values()])
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # the one mapping point: see describe()
            raise to_gr_error(exc, secrets) from None

    return cast(F, call)


def _inline_of(error: gr.Error) -> str:
    """The inline Markdown of a mapped ``gr.Error`` (or of one raised directly, from its text)."""
    text = getattr(error, "hubui_inline", None)
    if text is None:
        plain = html.unescape(re.sub(r"<br\s*/?>", "\n", str(error.message)))
        message, _, hint = plain.partition("\n")
        text = _inline_text(message, hint)
    return str(text)


def _placed(error: gr.Error, slot: int | None, count: int, prefix: str, also: dict[int, Any]) -> Any:
    values: list[Any] = [gr.skip()] * count
    for index, value in also.items():
        values[index] = value
    if slot is not None:
        values[slot] = prefix + _inline_of(error)
    return values[0] if count == 1 else tuple(values)


def _quiet(error: gr.Error) -> gr.Error:
    """The same error without the toast: it is already on the page, next to its cause."""
    quiet = gr.Error(error.message, title=error.title, visible=False, print_exception=False)
    quiet.hubui_inline = _inline_of(error)  # type: ignore[attr-defined]
    return quiet


def shown_at(
    fn: Callable[..., Any],
    slot: int | None,
    count: int,
    *,
    prefix: str = "",
    also: dict[int, Any] | None = None,
) -> Callable[..., Iterator[Any]]:
    """Wire ``fn`` so that its error shows once, in its output ``slot``, and nowhere else.

    Gradio shows an error raised by a callback as a toast, and as an "Error" pill on every output of the
    event (unless the event's ``show_progress`` is ``"hidden"``, which every event wired through this is):
    five pills and a toast for one failed Run. Instead the message goes into the output next to the control
    that failed, and the error is raised again without a toast, so that API callers still get it.

    Args:
        fn: A callback (plain or generator), usually wrapped by :func:`ui_handler`.
        slot: The output that shows the message (its index among the event's outputs), or ``None`` when
            ``fn`` shows it itself.
        count: How many outputs the event has.
        prefix: Markdown put before the message (``"## ERROR\n"`` for the verdict).
        also: Other outputs to set on an error (index -> value), e.g. the progress line.

    Returns:
        A generator callback with ``fn``'s signature (gradio reads it for the token and the request).
    """
    extra = dict(also or {})

    def placed(exc: Exception) -> tuple[Any, gr.Error]:
        error = exc if isinstance(exc, gr.Error) else to_gr_error(exc, _secrets([]))
        return _placed(error, slot, count, prefix, extra), _quiet(error)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # shown once, in its slot; see the docstring
                value, error = placed(exc)
                yield value
                raise error from None

        return stream

    @functools.wraps(fn)
    def once(*args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # shown once, in its slot; see the docstring
            value, error = placed(exc)
            yield value
            raise error from None
        yield result

    return once


def clear_pills(event: Any, outputs: list[Any]) -> Any:
    """After ``event`` fails, take gradio's "Error" pill off each of its outputs; returns ``event``.

    Gradio marks every output of a failed event with an "Error" pill, even with ``show_progress="hidden"``.
    The message already stands in its slot (:func:`shown_at`), so the pills only repeat it: a no-op event on
    the same outputs, run on failure only, sets their status back to complete.
    """
    shown = [o for o in outputs if not isinstance(o, gr.State)]

    def unchanged() -> Any:
        return gr.skip() if len(shown) == 1 else tuple(gr.skip() for _ in shown)

    event.failure(unchanged, None, shown, show_progress="hidden", queue=False)
    return event


__all__ = [
    "INTERNAL_ERROR",
    "WARN",
    "attempt",
    "clear_pills",
    "describe",
    "inline",
    "shown_at",
    "to_gr_error",
    "ui_handler",
    "ui_words",
]
