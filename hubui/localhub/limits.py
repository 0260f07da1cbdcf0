"""Size and time limits of the local Hub, and the body readers that enforce them.

Every request body is read through these helpers: a declared ``Content-Length`` over the cap is refused before a
byte is read, a streamed body is counted as it arrives and refused as soon as it passes the cap, and NDJSON commit
payloads are split line by line in linear time. Nothing here holds more than one capped body or one line.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

MiB = 1024 * 1024

MAX_JSON_BODY = 8 * MiB
"""JSON endpoints (preupload, LFS batch, paths-info, create/delete repo, settings, branches, discussions).
A preupload or LFS batch of 256 files (huggingface_hub's chunk) is under 0.5 MB; 8 MiB leaves room for
paths-info over many thousand paths."""

MAX_VALIDATE_YAML_BODY = 1 * MiB
"""/api/validate-yaml, which anyone may call: a README's metadata block is a few KB; 1 MiB is also the largest
README whose metadata the Hub reads as card data."""

MAX_NDJSON_LINE = 96 * MiB
"""One commit line: a base64 regular file of up to ``storage.MAX_REGULAR_FILE`` (64 MiB), plus its JSON."""

MAX_COMMIT_BODY = 1024 * MiB
"""A whole commit payload. Lines are stored one at a time, so this bounds how long one request may stream, not
memory; huggingface_hub sends files of 10 MB and more (and binaries) through LFS, not inline."""

MAX_COMMIT_OPERATIONS = 200_000
"""Operations in one commit; the Hub recommends far fewer files per commit."""

MAX_HEADER_BYTES = 64 * 1024
"""Request line plus headers; a client sends under 2 KB."""

UPLOAD_LINK_TTL = 3600
"""Seconds an LFS upload (and verify) link may be started in. huggingface_hub asks for every upload link of a
commit first and then uploads five at a time, so the last link of a big push is used long after the batch; an
upload link only accepts bytes whose sha256 is the signed one, so a leaked one gives nothing away."""

DOWNLOAD_LINK_TTL = 300
"""Seconds an LFS download link may be used: a leaked one reads the object, so it must die quickly. git-lfs asks
the batch endpoint again for an expired link; huggingface_hub downloads through /resolve with the token instead."""

VERIFY_GRACE = 3600
"""Seconds after an upload link expires that its verify call is still accepted: verify runs after the upload, which
may outlast the link, and only says whether the object arrived."""


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


HEADER_TIMEOUT = _env_seconds("HUBUI_LOCALHUB_HEADER_TIMEOUT", 10.0)
"""Seconds a connection may take to send a complete request line and headers (slowloris); clients send them in
one write. ``HUBUI_LOCALHUB_HEADER_TIMEOUT`` overrides it (the tests use 2 s)."""

KEEP_ALIVE_TIMEOUT = 5
"""Seconds an idle kept-alive connection stays open (uvicorn's default, set explicitly)."""

STORAGE_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class BodyError(Exception):
    """A request body the Hub refuses: ``status`` (400 or 413) and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _mib(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n} bytes"


def check_declared_length(request: Request, limit: int, what: str) -> None:
    """Refuse a body whose ``Content-Length`` is over ``limit`` before reading any of it.

    Raises:
        BodyError: 413 naming the limit, 400 for a malformed header.
    """
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError as exc:
        raise BodyError(400, f"Invalid Content-Length header: {declared[:40]!r}") from exc
    if size > limit:
        raise BodyError(413, f"The body of {what} is {size} bytes; the local Hub accepts up to {_mib(limit)}")


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """Read a whole body of at most ``limit`` bytes.

    Args:
        request: The request.
        limit: The most bytes accepted.
        what: Names the endpoint in the error ("a validate-yaml request").

    Returns:
        The body.

    Raises:
        BodyError: 413 as soon as more than ``limit`` bytes arrived (or were declared).
    """
    check_declared_length(request, limit, what)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, f"The body of {what} is over {_mib(limit)}, the most the local Hub accepts")
        parts.append(chunk)
    return b"".join(parts)


def parse_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object body.

    Raises:
        BodyError: 400 naming what is wrong (not JSON, not UTF-8, not an object).
    """
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"The body of {what} is not UTF-8 text") from exc
    except ValueError as exc:
        raise BodyError(400, f"The body of {what} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BodyError(400, f"The body of {what} must be a JSON object, not {type(body).__name__}")
    return body


async def ndjson_lines(stream: AsyncIterator[bytes], *, max_line: int, max_total: int) -> AsyncIterator[bytes]:
    """Split a streamed NDJSON body into its non-empty lines, in time linear in its size.

    Each chunk is searched for newlines once (from where the last search stopped), and a line's bytes are copied
    once, when it is complete. At most one line (plus one chunk) is held.

    Raises:
        BodyError: 413 when a line is longer than ``max_line`` or the body longer than ``max_total``.
    """
    pending: list[bytes] = []  # pieces of the current, unfinished line
    pending_size = 0
    total = 0
    async for chunk in stream:
        if not chunk:
            continue
        total += len(chunk)
        if total > max_total:
            raise BodyError(413, f"The commit payload is over {_mib(max_total)}; split it into several commits")
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            piece = chunk[start:end]
            if pending:
                pending.append(piece)
                line = b"".join(pending)
                pending, pending_size = [], 0
            else:
                line = piece
            if len(line) > max_line:
                raise BodyError(413, _line_too_long(max_line))
            if line.strip():
                yield line
            start = end + 1
        if start < len(chunk):
            rest = chunk[start:]
            pending.append(rest)
            pending_size += len(rest)
            if pending_size > max_line:
                raise BodyError(413, _line_too_long(max_line))
    if pending:
        line = b"".join(pending)
        if line.strip():
            yield line


def _line_too_long(max_line: int) -> str:
    return f"A commit line is over {_mib(max_line)}; upload big files through LFS"


def storage_full_message(exc: OSError) -> str:
    """What a client is told (with 507) when the disk, a quota or a file-size limit refused a write."""
    return (
        f"The local Hub's storage is full ({exc.strerror}); nothing was saved. Free disk space where the Hub keeps "
        "its data (its --root), then try again."
    )


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or a quota, or a file-size limit) refused a write."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS


__all__ = [
    "DOWNLOAD_LINK_TTL",
    "HEADER_TIMEOUT",
    "KEEP_ALIVE_TIMEOUT",
    "MAX_COMMIT_BODY",
    "MAX_COMMIT_OPERATIONS",
    "MAX_HEADER_BYTES",
    "MAX_JSON_BODY",
    "MAX_NDJSON_LINE",
    "MAX_VALIDATE_YAML_BODY",
    "UPLOAD_LINK_TTL",
    "VERIFY_GRACE",
    "BodyError",
    "check_declared_length",
    "is_storage_full",
    "ndjson_lines",
    "parse_json_object",
    "read_body",
    "storage_full_message",
]
