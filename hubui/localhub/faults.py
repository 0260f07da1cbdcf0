"""Fault injection for the local Hub, so tests can show what hubui does when the Hub misbehaves.

Off unless the server is started with ``hubui localhub --faults`` (or ``LocalHub(..., faults=True)``);
then an ASGI middleware in front of the Hub answers a control endpoint and applies rules to the
requests that follow. Never start a Hub with faults where anyone else can reach it: the control
endpoint has no authentication.

Control endpoint (JSON):

- ``POST /_hubui/faults`` with ``{"rules": [RULE, ...]}`` adds rules; answers the current state.
- ``GET /_hubui/faults`` answers ``{"rules": [...], "requests": [...]}``: each rule with how often it
  ``fired``, and a log of the requests seen since the last reset (``method``, ``path``, ``status``,
  ``received`` request-body bytes, ``sent`` response-body bytes, ``complete``, ``fault``).
- ``DELETE /_hubui/faults`` removes every rule and clears the log.

A RULE matches requests by ``path`` (a regular expression searched in the raw URL path, without the
query) and optionally ``method``; it lets the first ``skip`` matches through, then acts on the next
``times`` matches (``null``: on all of them). The first rule that acts on a request wins. Actions:

- ``{"action": "status", "status": 503, "retry_after": 2}``: answer that status (400-599) with a JSON
  error and, when given, a ``Retry-After`` header; the request never reaches the Hub.
- ``{"action": "drop", "after_bytes": 0}``: pass the request on, send the response's status line,
  headers and first ``after_bytes`` body bytes, then close the connection (a network drop mid-response).
- ``{"action": "throttle", "rate": 1000000}``: pass the request on, reading its body and writing the
  response body at about ``rate`` bytes per second (so a test can kill the server mid-upload).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PATH = "/_hubui/faults"
ACTIONS = ("status", "drop", "throttle")
MAX_LOG = 2000  # requests kept in the log; a test reads it right after the requests it cares about

Action = Literal["status", "drop", "throttle"]


class FaultRuleError(ValueError):
    """A fault rule sent to the control endpoint is malformed; the message names the field."""


@dataclass
class FaultRule:
    """One injected fault; see the module docstring for the JSON form.

    Args:
        path: Regular expression searched in the raw request path.
        action: ``"status"``, ``"drop"`` or ``"throttle"``.
        method: Only requests with this HTTP method; ``None`` for any.
        status: The status a ``status`` rule answers.
        retry_after: ``Retry-After`` seconds sent with a ``status`` answer; ``None`` for no header.
        after_bytes: Response-body bytes a ``drop`` rule lets through before closing the connection.
        rate: Bytes per second of a ``throttle`` rule.
        times: How many matching requests the rule acts on; ``None`` for all.
        skip: Matching requests let through untouched before the rule starts acting.
    """

    path: str
    action: Action
    method: str | None = None
    status: int = 503
    retry_after: int | None = None
    after_bytes: int = 0
    rate: int = 1_000_000
    times: int | None = 1
    skip: int = 0
    matched: int = 0
    fired: int = 0
    _regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self._regex = re.compile(self.path)
        except re.error as exc:
            raise FaultRuleError(f"Invalid path regex {self.path!r}: {exc}") from exc
        if self.action not in ACTIONS:
            raise FaultRuleError(f"Unknown action {self.action!r}; use one of {', '.join(ACTIONS)}")
        if self.action == "status" and not 400 <= self.status <= 599:
            raise FaultRuleError(f"A status fault needs a status from 400 to 599, not {self.status}")
        if self.rate <= 0 or self.after_bytes < 0 or self.skip < 0 or (self.times is not None and self.times < 0):
            raise FaultRuleError("rate must be positive; after_bytes, skip and times must not be negative")
        if self.method is not None:
            self.method = self.method.upper()

    @classmethod
    def from_json(cls, data: Any) -> FaultRule:
        """Build a rule from its JSON object.

        Raises:
            FaultRuleError: Naming the missing or bad field.
        """
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise FaultRuleError(f"A rule is an object with at least 'path' and 'action': {data!r}")
        known = {"path", "action", "method", "status", "retry_after", "after_bytes", "rate", "times", "skip"}
        unknown = set(data) - known
        if unknown:
            raise FaultRuleError(f"Unknown rule field(s) {sorted(unknown)}; known: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise FaultRuleError(f"Bad rule {data!r}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON, with how often it matched and fired."""
        keys = ("path", "action", "method", "status", "retry_after", "after_bytes", "rate", "times", "skip")
        return {**{k: getattr(self, k) for k in keys}, "matched": self.matched, "fired": self.fired}

    def take(self, method: str, path: str) -> bool:
        """Whether this rule acts on the request; counts the match."""
        if (self.method is not None and self.method != method) or not self._regex.search(path):
            return False
        self.matched += 1
        if self.matched <= self.skip or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class _Dropped(Exception):
    """Raised inside the wrapped ``send`` to abandon a response mid-way."""


class FaultInjector:
    """ASGI middleware that applies :class:`FaultRule` s in front of the local Hub and logs requests.

    Args:
        app: The local Hub's ASGI app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.rules: list[FaultRule] = []
        self.log: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        method = scope["method"]
        if path == CONTROL_PATH:
            await self._control(method, receive, send)
            return
        rule = next((r for r in self.rules if r.take(method, path)), None)
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": None,
            "received": 0,
            "sent": 0,
            "complete": False,
            "fault": rule.action if rule else None,
        }
        self.log.append(entry)
        del self.log[:-MAX_LOG]
        rate = rule.rate if rule is not None and rule.action == "throttle" else None

        async def counting_receive() -> Message:
            message = await receive()
            body = message.get("body", b"") if message["type"] == "http.request" else b""
            entry["received"] += len(body)
            if rate is not None and body:
                await anyio.sleep(len(body) / rate)
            return message

        if rule is not None and rule.action == "status":
            await self._answer_status(rule, counting_receive, send, entry)
            return

        limit = rule.after_bytes if rule is not None and rule.action == "drop" else None

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if limit is not None and entry["sent"] + len(body) > limit:
                    keep = limit - entry["sent"]
                    if keep > 0:
                        await send({"type": "http.response.body", "body": body[:keep], "more_body": True})
                        entry["sent"] += keep
                    raise _Dropped
                if rate is not None and body:
                    await anyio.sleep(len(body) / rate)
                entry["sent"] += len(body)
                if not message.get("more_body", False):
                    entry["complete"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except _Dropped:
            # Returning with the response unfinished makes the server close the connection.
            return

    async def _answer_status(self, rule: FaultRule, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
        # Read the whole body first, as a real server does, so the client is not cut off mid-upload.
        while (await receive()).get("more_body", False):
            pass
        message = f"Injected fault: HTTP {rule.status}"
        headers = [(b"content-type", b"application/json"), (b"x-error-message", message.encode())]
        if rule.retry_after is not None:
            headers.append((b"retry-after", str(rule.retry_after).encode()))
        body = json.dumps({"error": message}).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": rule.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        entry.update(status=rule.status, sent=len(body), complete=True)

    async def _control(self, method: str, receive: Receive, send: Send) -> None:
        status = 200
        if method == "POST":
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            try:
                data = json.loads(raw or b"{}")
                rules = data.get("rules") if isinstance(data, dict) else None
                if not isinstance(rules, list):
                    raise FaultRuleError('Send {"rules": [...]}')
                self.rules.extend(FaultRule.from_json(r) for r in rules)
                payload: Any = self.state()
            except (ValueError, FaultRuleError) as exc:
                status, payload = 400, {"error": str(exc)}
        elif method == "DELETE":
            self.rules.clear()
            self.log.clear()
            payload = self.state()
        elif method == "GET":
            payload = self.state()
        else:
            status, payload = 405, {"error": f"Method {method} not allowed on {CONTROL_PATH}"}
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def state(self) -> dict[str, Any]:
        """The rules with their counters, and the request log."""
        return {"rules": [r.to_json() for r in self.rules], "requests": list(self.log)}


__all__ = ["CONTROL_PATH", "FaultInjector", "FaultRule", "FaultRuleError"]
