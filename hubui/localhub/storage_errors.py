"""The one error the local Hub's storage raises (its own module, so that :mod:`hubui.localhub.paths` can use it)."""

from __future__ import annotations


class StorageError(Exception):
    """A request the store refuses. ``status`` and ``code`` become the HTTP answer.

    Args:
        status: The HTTP status.
        message: What was refused, naming the bad value.
        code: The ``X-Error-Code`` the real Hub sends for it, if any.
    """

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
