"""Retries of the Hub calls that huggingface_hub does not retry itself, and the translation of a failed push's
Hub error into a hubui error that says what happened to the commit."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2
from huggingface_hub.errors import HfHubHTTPError

from hubui.errors import (
    HubUIError,
    HubUnreachableError,
    InvalidInputError,
    NamespaceForbiddenError,
    PushError,
    exception_chain,
)

if TYPE_CHECKING:
    from hubui.push_types import ProgressFn, PushRequest

# The logger of hubui.publishing, whose job this was: logging settings made for it keep working.
logger = logging.getLogger("hubui.publishing")

# Answers that say "try again": rate limited, or the server (or a gateway before it) is in trouble.
RETRYABLE_STATUS = (429, 500, 502, 503, 504)
# Answers after which the Hub has certainly not acted on the request, so even a PR commit can be re-sent.
_UNPROCESSED_STATUS = (429, 502, 503)


@dataclass(frozen=True)
class RetryPolicy:
    """How hubui retries the Hub calls that huggingface_hub does not retry itself.

    huggingface_hub already retries its preupload, LFS and download requests with backoff; hubui adds
    retries around the rest of a push (repo info, create repo/branch, the commit itself) and around the
    verification download. Waits double from ``first_delay`` up to ``max_delay``; a ``Retry-After``
    header is honoured when it asks for no more than ``max_retry_after`` seconds (a longer wait ends
    in an error that says how long).

    ``RetryPolicy.from_env()`` reads ``HUBUI_HTTP_RETRIES`` (default 4) and ``HUBUI_HTTP_BACKOFF``
    (the first wait in seconds, default 1).

    Args:
        retries: Retries after the first try; 0 disables them.
        first_delay: Seconds before the first retry.
        max_delay: Longest wait between two tries.
        max_retry_after: Longest ``Retry-After`` that is waited for.
    """

    retries: int = 4
    first_delay: float = 1.0
    max_delay: float = 16.0
    max_retry_after: float = 120.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The default policy, with ``HUBUI_HTTP_RETRIES`` / ``HUBUI_HTTP_BACKOFF`` applied when set.

        Raises:
            InvalidInputError: A variable that is not a non-negative number, naming it.
        """
        policy = cls()
        for var, attr, kind in (("HUBUI_HTTP_RETRIES", "retries", int), ("HUBUI_HTTP_BACKOFF", "first_delay", float)):
            raw = os.environ.get(var, "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                value = -1
            if value < 0:
                raise InvalidInputError(f"{var} must be a non-negative number, not {raw!r}", f"Unset {var} or fix it.")
            policy = RetryPolicy(**{**policy.__dict__, attr: value})
        return policy

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        return float(min(self.max_delay, self.first_delay * 2**attempt))


def _http_error(exc: BaseException) -> HfHubHTTPError | None:
    return next((e for e in exception_chain(exc) if isinstance(e, HfHubHTTPError) and e.response is not None), None)


def _retry_after(error: HfHubHTTPError) -> float | None:
    raw = error.response.headers.get("retry-after", "").strip() if error.response is not None else ""
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None  # an HTTP date: rare; the backoff applies instead


def _transient(exc: BaseException) -> tuple[str, float | None] | None:
    """``(reason, Retry-After seconds or None)`` when ``exc`` is worth retrying, else ``None``."""
    http = _http_error(exc)
    if http is not None:
        status = http.response.status_code
        return (f"HTTP {status}", _retry_after(http)) if status in RETRYABLE_STATUS else None
    transport = next((e for e in exception_chain(exc) if isinstance(e, httpx2.TransportError)), None)
    return (type(transport).__name__, None) if transport is not None else None


def _failed_request(exc: BaseException) -> tuple[str, str]:
    """``(method, url)`` of the request that failed, or ``("", "")``."""
    for e in exception_chain(exc):
        try:
            if isinstance(e, HfHubHTTPError) and e.response is not None:
                return e.response.request.method, str(e.response.request.url)
            if isinstance(e, httpx2.RequestError):
                return e.request.method, str(e.request.url)
        except RuntimeError:  # httpx raises when no request is attached
            continue
    return "", ""


def _at_commit_endpoint(exc: BaseException) -> bool:
    return "/commit/" in urlsplit(_failed_request(exc)[1]).path


def _retried_by_hf_hub(exc: BaseException) -> bool:
    """Whether huggingface_hub already retried the failed request with its own backoff (up to 23 s).

    It does for preupload, LFS batch and uploads, tree listings and file-metadata HEADs, and resumes a
    file download whose connection dropped; retrying those again would multiply the waits.
    """
    method, url = _failed_request(exc)
    path = urlsplit(url).path
    if "/preupload/" in path or "/info/lfs/" in path or "/tree/" in path or method in ("HEAD", "PUT"):
        return True
    return method == "GET" and "/api/" not in path and _http_error(exc) is None


def _not_retried_by_hf_hub(exc: Exception) -> bool:
    return not _retried_by_hf_hub(exc)


def _retrying(
    call: Callable[[], Any], what: str, policy: RetryPolicy, say: ProgressFn, may_retry: Callable[[Exception], bool]
) -> Any:
    """Run ``call``, retrying transient Hub errors (429, 5xx, lost connections) with backoff.

    ``may_retry`` vetoes retries that would not be safe or that huggingface_hub already made.
    The last error is re-raised unchanged, for the caller to translate.
    """
    attempt = 0
    while True:
        try:
            return call()
        except (HfHubHTTPError, httpx2.TransportError, OSError, HubUnreachableError) as exc:
            # HubUnreachableError: hubui's own translation (whoami, rebuilding); its cause says if it is transient.
            transient = _transient(exc)
            if transient is None or attempt >= policy.retries or not may_retry(exc):
                raise
            reason, retry_after = transient
            if retry_after is not None and retry_after > policy.max_retry_after:
                raise
            wait = retry_after if retry_after is not None else policy.delay(attempt)
            attempt += 1
            logger.warning("%s: %s from the Hub; retry %d/%d in %.1fs", what, reason, attempt, policy.retries, wait)
            say(f"{what}: {reason} from the Hub; retrying in {wait:.1f}s ({attempt}/{policy.retries})")
            time.sleep(wait)


def _translate(exc: Exception, request: PushRequest, endpoint: str) -> HubUIError:
    repo = request.repo_id
    http = _http_error(exc)
    if http is None and any(isinstance(e, httpx2.TransportError) for e in exception_chain(exc)):
        if _at_commit_endpoint(exc) and not any(isinstance(e, httpx2.ConnectError) for e in exception_chain(exc)):
            return HubUnreachableError(
                f"Lost the connection to the Hub at {endpoint} while committing to {repo}; "
                "the commit may or may not have landed.",
                "Check the repo's history, then push again: unchanged files make no new commit.",
            )
        during = f" ({exc})" if isinstance(exc, RuntimeError) else ""  # which file, when uploading one
        return HubUnreachableError(
            f"Lost the connection to the Hub at {endpoint} while pushing {repo}{during}; nothing was committed.",
            "Check that the Hub is up and your network, then push again: "
            "files that were already uploaded are not sent again.",
        )
    if http is not None and http.response is not None:
        status = http.response.status_code
        server = (http.server_message or "").strip()
        if status == 403:
            return NamespaceForbiddenError(f"The Hub refused to write to {repo!r}: {server or 'HTTP 403'}")
        if status == 412:
            return PushError(f"{repo} changed while pushing: {server}", "Push again; nothing was committed.")
        if status == 429:
            wait = _retry_after(http)
            after = f" and asks to wait {wait:.0f}s" if wait is not None else ""
            return PushError(
                f"The Hub is rate-limiting pushes to {repo!r} (HTTP 429){after}: {server or 'too many requests'}",
                "Nothing was committed. Wait a while, then push again.",
            )
        if status in RETRYABLE_STATUS:
            return PushError(
                f"The Hub kept failing while pushing to {repo!r} (HTTP {status}, also after retries): "
                f"{server or 'server error'}",
                "Nothing was committed. The Hub is having trouble: push again later; "
                "files that were already uploaded are not sent again.",
            )
        return PushError(f"The Hub refused the push to {repo!r} (HTTP {status}): {server or exc}")
    return PushError(f"Push to {repo!r} failed: {exc}")


__all__ = ["RETRYABLE_STATUS", "RetryPolicy"]
