"""Keeping signed URLs out of every log hubui writes (the local Hub's access log, and the HTTP clients' logs).

An LFS link carries its signature in its query string, and uvicorn's access log, httpx's request log (printed with
``hubui -v``) and urllib3's debug log print URLs with their query. :func:`install_log_redaction` adds a filter to
those loggers (and to the root logger's handlers) that replaces the query of every ``/_lfs/`` link and any
``sig=`` / ``signature=`` / ``token=`` value before a record is written. It never drops a record.
"""

from __future__ import annotations

import logging
import re

_SIGNED_QUERY = re.compile(r"(/_lfs/[^\s?\"']*)\?[^\s\"']*", re.IGNORECASE)
_SIG_PARAM = re.compile(r"((?:^|[?&;])(?:sig|signature|x-amz-signature|token)=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the query of every LFS link, and any ``sig=`` / ``signature=`` value, replaced."""
    text = _SIGNED_QUERY.sub(r"\1?<signed query hidden>", text)
    return _SIG_PARAM.sub(r"\1<hidden>", text)


class RedactSignedUrls(logging.Filter):
    """A logging filter that rewrites records whose message holds a signed URL; it never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record with bad args: leave it to the handler to report
            return True
        if redact(message) == message:
            return True
        # Rewrite the arguments, not the format: uvicorn's access formatter unpacks record.args itself.
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        message = record.getMessage()
        if redact(message) != message:
            record.msg, record.args = redact(message), None
        return True


def _clean(arg: object) -> object:
    if isinstance(arg, (int, float)):
        return arg
    text = str(arg)
    hidden = redact(text)
    return hidden if hidden != text else arg


_FILTER = RedactSignedUrls()
# Loggers that print request URLs: uvicorn's access log (server) and the HTTP clients huggingface_hub, timm and
# open_clip use (client, at INFO/DEBUG, e.g. with ``hubui -v``).
URL_LOGGERS = (
    "uvicorn.access",
    "uvicorn.error",
    "httpx",
    "httpx2",
    "urllib3.connectionpool",
    "huggingface_hub",
    # a logger's filters do not apply to its children's records: name the ones that print URLs
    "huggingface_hub.utils._http",
    "huggingface_hub.lfs",
    "huggingface_hub._commit_api",
    "huggingface_hub.file_download",
)


def install_log_redaction() -> None:
    """Add :class:`RedactSignedUrls` to every logger that prints request URLs and to the root logger's handlers.

    Safe to call more than once.
    """
    handlers = list(logging.getLogger().handlers)
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        handlers += logger.handlers
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in handlers:  # records of child loggers pass their ancestors' handlers
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


__all__ = ["URL_LOGGERS", "RedactSignedUrls", "install_log_redaction", "redact"]
