"""The one place where errors become what a person sees in the app.

:func:`describe` turns an exception into ``(title, message, hint)``: a :class:`~hubui.HubUIError` keeps
its message and hint; anything else is logged server-side (its type only: an unexpected message may
quote a secret) and shown as a generic internal error. :func:`to_gr_error` wraps that in a
``gr.Error`` (no traceback, HTML-escaped), :func:`inline` in a Markdown line for inline messages, and
:func:`ui_handler` applies the mapping to every callback. Any token held by the session or passed as
a ``gr.OAuthToken`` is scrubbed from the text as a last line of defence.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import re
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import gradio as gr

import hubui
from hubui.ui.state import Session

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal error, see the server logs."
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
        return _title(exc), _scrub(exc.message, secrets), _scrub(exc.hint or "", secrets)
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
    return gr.Error(text, title=title, print_exception=False)


def inline(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The same mapping as a Markdown line, for errors shown inside a tab."""
    _, message, hint = describe(exc, secrets)
    return f"**⚠ {_md(message)}**" + (f"  \n{_md(hint)}" if hint else "")


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


__all__ = ["INTERNAL_ERROR", "attempt", "describe", "inline", "to_gr_error", "ui_handler"]
