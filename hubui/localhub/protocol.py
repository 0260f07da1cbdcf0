"""uvicorn's HTTP protocol with a header deadline and a header size cap (slowloris guards).

uvicorn (0.54) only times out *idle* kept-alive connections: a client that sends half a request line and then
nothing keeps its connection, and with httptools an endless header is buffered without limit. Here every connection
must deliver a complete request head within :data:`~hubui.localhub.limits.HEADER_TIMEOUT` seconds of opening (or of
its previous response), in at most :data:`~hubui.localhub.limits.MAX_HEADER_BYTES`; otherwise it is closed (a head
over the size cap first gets a 431). Requests whose head has arrived are never cut: uploads may take long.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hubui.localhub.limits import HEADER_TIMEOUT, MAX_HEADER_BYTES

_Base: type[Any]
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    _Base = HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools missing: uvicorn's h11 protocol caps header size itself
    from uvicorn.protocols.http.h11_impl import H11Protocol

    _Base = H11Protocol

# h11 limits the head's size itself (h11_max_incomplete_event_size); httptools does not.
_COUNTS_HEAD = _Base.__name__ == "HttpToolsProtocol"
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 47\r\n\r\nThe request line and headers are over 64 KiB.\r\n"
)


class GuardedHttpProtocol(_Base):  # type: ignore[misc, valid-type]
    """The HTTP protocol uvicorn would pick, plus the header deadline and size cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = True
        self._armed_for: Any = None  # the request cycle current when the deadline was armed

    def _reading_head(self) -> bool:
        # No request, or the last one is answered: whatever arrives now belongs to the next request's head.
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._armed_for = self.cycle
        self._head_timer = self.loop.call_later(HEADER_TIMEOUT, self._head_deadline)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self._reading_head() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._in_head and _COUNTS_HEAD:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.cycle is not self._armed_for:
            self._disarm()  # a head arrived: its request may take as long as it needs
            self._armed_for = self.cycle
        elif self._head_bytes > MAX_HEADER_BYTES and self._in_head and not self.transport.is_closing():
            self.transport.write(_TOO_LARGE)
            self.transport.close()

    # httptools parser callbacks: the head runs from the end of one message (or the connection's start) to the end
    # of the next message's headers. The rest of a body the app did not read is not head.
    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


__all__ = ["GuardedHttpProtocol"]
