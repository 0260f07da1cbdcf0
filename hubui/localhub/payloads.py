"""Fields of JSON request bodies and lines of commit payloads, checked so that a malformed body is a 400 that
names the field (and its line), never a 500 from deep inside a handler."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from hubui.localhub.limits import BodyError

_THREAD_PARSE = 256 * 1024  # JSON larger than this is parsed in a worker thread, not on the event loop


def str_field(body: dict[str, Any], key: str) -> str:
    """``body[key]`` as a string (``""`` when missing or null).

    Raises:
        BodyError: 400 naming the field when it holds something else.
    """
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BodyError(400, f'"{key}" must be a string, not {type(value).__name__}')
    return value


def list_of_objects(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``body[key]`` as a list of JSON objects (``[]`` when missing).

    Raises:
        BodyError: 400 naming the field when it is not a list of objects.
    """
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BodyError(400, f'"{key}" must be a list of objects')
    return value


async def commit_line(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    """Parse line ``number`` of a commit payload into its key and value object.

    Raises:
        BodyError: 400 naming the line and what is wrong with it.
    """
    try:
        # A line can hold a 64 MB file: parse it in a worker thread.
        item = json.loads(line) if len(line) < _THREAD_PARSE else await run_in_threadpool(json.loads, line)
    except UnicodeDecodeError as exc:
        raise BodyError(400, f"Malformed commit payload: line {number} is not UTF-8 text") from exc
    except ValueError as exc:
        raise BodyError(400, f"Malformed commit payload: line {number} is not valid JSON ({exc})") from exc
    if not isinstance(item, dict) or not isinstance(item.get("key"), str) or "value" not in item:
        raise BodyError(400, f'Malformed commit payload: line {number} must be {{"key": ..., "value": ...}}')
    key, value = item["key"], item["value"]
    if not isinstance(value, dict):
        raise BodyError(400, f'Malformed commit payload: the "{key}" value on line {number} must be an object')
    return key, value


def json_bytes(data: Any) -> bytes:
    """Compact UTF-8 JSON, for answers built in a worker thread."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def json_response(body: bytes) -> Response:
    """An ``application/json`` answer of already encoded ``body``."""
    return Response(body, media_type="application/json")


__all__ = ["commit_line", "json_bytes", "json_response", "list_of_objects", "str_field"]
