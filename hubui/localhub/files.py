"""Serving stored files (byte ranges, streaming, and headers that keep a browser from running what it downloads),
and receiving uploads.

Anyone who can push can upload HTML or SVG; served inline on the Hub's origin it would run there (with the
visitor's cookies and same-origin access to the API). So only types a browser displays without running anything
are served inline; everything else is an attachment, and every answer says ``nosniff`` so that a browser cannot
guess a type that runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hubui.localhub.storage import ObjectReceiver

CHUNK = 1024 * 1024

# Types a browser shows without running code. text/plain covers README.md, .py, .yaml and the like.
INLINE_TYPES = {
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "audio/mpeg",
    "audio/wav",
    "audio/x-wav",
    "audio/ogg",
    "audio/flac",
    "video/mp4",
    "video/webm",
}
_AS_TEXT = (".md", ".txt", ".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".jsonl", ".gitattributes", ".log")


class RangeError(ValueError):
    """A ``Range`` header that cannot be served; ``message`` names it (answered 416)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def content_headers(path: str) -> dict[str, str]:
    """``Content-Type``, ``Content-Disposition`` and ``X-Content-Type-Options`` for a repo file at ``path``."""
    name = path.rsplit("/", 1)[-1]
    if name.lower().endswith(_AS_TEXT) or name == ".gitattributes":
        ctype = "text/plain"
    else:
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    inline = ctype in INLINE_TYPES
    shown = f"{ctype}; charset=utf-8" if ctype.startswith("text/") or ctype == "application/json" else ctype
    return {
        "Content-Type": shown,
        "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(name)}",
        "X-Content-Type-Options": "nosniff",
    }


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Parse ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` into an inclusive range, or ``None`` for all.

    Raises:
        RangeError: For a malformed range or one outside the file.
    """
    if not header or not header.startswith("bytes="):
        return None
    spec = header[len("bytes=") :].split(",")[0].strip()
    start_s, _, end_s = spec.partition("-")
    try:
        if not start_s:
            n = int(end_s)
            start, end = max(0, size - n), size - 1
        else:
            start = int(start_s)
            end = int(end_s) if end_s else size - 1
    except ValueError as exc:
        raise RangeError(f"Invalid range {header[:80]!r}") from exc
    if (start >= size and size > 0) or start > end + 1:
        raise RangeError(f"Range {header[:80]!r} is outside a file of {size} bytes")
    return start, min(end, size - 1)


async def file_response(request: Request, path: Path, size: int, headers: dict[str, str]) -> Response:
    """Stream ``path`` (or the asked range of it) with ``headers``; HEAD gets the headers only.

    Raises:
        RangeError: For a ``Range`` that cannot be served.
    """
    rng = parse_range(request.headers.get("range"), size)
    status = 200
    start, end = 0, size - 1
    if rng is not None:
        start, end = rng
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)

    async def body() -> AsyncIterator[bytes]:
        async with await anyio.open_file(path, "rb") as fh:
            await fh.seek(start)
            remaining = length
            while remaining > 0:
                chunk = await fh.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    return StreamingResponse(body(), status_code=status, headers=headers)


_UPLOAD_BLOCK = 8 << 20


async def receive_pipelined(request: Request, receiver: ObjectReceiver) -> None:
    """Stream an upload into ``receiver``, hashing and writing one block in a worker thread while the event loop
    receives the next: done inline, the disk write and the sha256 sat between reads and halved the upload speed.
    At most two blocks (16 MB) per upload are in memory."""
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[None] | None = None
    block: list[bytes] = []
    held = 0
    try:
        async for chunk in request.stream():
            if not chunk:
                continue
            block.append(chunk)
            held += len(chunk)
            if held >= _UPLOAD_BLOCK:
                data, block, held = b"".join(block), [], 0
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, receiver.write, data)
        if pending is not None:
            await pending
            pending = None
        if block:
            await run_in_threadpool(receiver.write, b"".join(block))
    finally:
        if pending is not None:
            # Whatever went wrong, let the worker finish before the caller closes the receiver's file.
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)


__all__ = ["INLINE_TYPES", "RangeError", "content_headers", "file_response", "parse_range", "receive_pipelined"]
