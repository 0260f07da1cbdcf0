"""The local Hub's HTTP errors: :class:`HubHTTPError`, which handlers raise, and the JSON answer it becomes (with the
``X-Error-Message`` / ``X-Error-Code`` headers the huggingface_hub client reads)."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse


def error_response(status: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    # A control character (a path or name with a newline) in a header makes uvicorn drop the connection unanswered.
    text = "".join(c if " " <= c < "\x7f" else "?" for c in message)
    headers = {"X-Error-Message": text[:500], "X-Request-Id": uuid.uuid4().hex}  # the client quotes it in errors
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class HubHTTPError(Exception):
    """Raised inside handlers; becomes an error response."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra
