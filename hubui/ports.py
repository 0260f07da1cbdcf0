"""Which TCP port the app serves on, decided before the server starts.

Gradio is given one concrete, free port, never ``0`` (it would print and check ``http://host:0``) and never a port
it has to discover is busy (it raises a bare ``OSError``). The rule, for ``hubui app`` and ``hubui demo``:

* no ``--port``: the first free port from 7860 (or ``GRADIO_SERVER_PORT``) among the next 100, as Gradio does;
* ``--port 0``: a free port the system picks;
* ``--port N``: N, or an :class:`~hubui.errors.InvalidInputError` naming it when another program holds it.
"""

from __future__ import annotations

import os
import socket

from hubui.errors import InvalidInputError

DEFAULT_PORT = 7860
PORT_ENV = "GRADIO_SERVER_PORT"
PORTS_TRIED = 100


def _bind_host(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (the same test uvicorn's bind makes)."""
    bind = _bind_host(host)
    with socket.socket(_family(bind), socket.SOCK_STREAM) as s:
        # As uvicorn binds: SO_REUSEADDR, so a port left in TIME_WAIT by a server that just ended counts as free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind, port))
        except OSError:
            return False
    return True


def busy_port_error(host: str, port: int) -> InvalidInputError:
    """The one-line error for a port another program holds."""
    return InvalidInputError(
        f"Port {port} on {host} is already in use (another app or server is listening there).",
        hint="Stop that program, choose another port with --port N, pass --port 0 to let the system pick a free "
        f"one, or leave --port out to take the next free port from {DEFAULT_PORT}.",
    )


def _start_port() -> int:
    text = os.environ.get(PORT_ENV, "").strip()
    if not text:
        return DEFAULT_PORT
    try:
        return check_port(int(text))
    except ValueError:
        raise InvalidInputError(f"{PORT_ENV}={text!r} is not a port number.", hint="Unset it or set 1-65535.") from None


def check_port(port: int) -> int:
    """``port`` when it is 0-65535.

    Raises:
        InvalidInputError: Out of range.
    """
    if not 0 <= port <= 65535:
        raise InvalidInputError(f"Port {port} is not a TCP port.", hint="Use 1-65535, or 0 to pick a free one.")
    return port


def choose_port(host: str, port: int | None) -> int:
    """The concrete port to serve on (see the module docstring).

    Args:
        host: The interface the server binds (``127.0.0.1``, ``0.0.0.0``...).
        port: ``None`` (the next free from 7860), ``0`` (any free) or a port number.

    Returns:
        A port that was free a moment ago.

    Raises:
        InvalidInputError: ``port`` is busy or out of range, or no port of the default range is free.
    """
    if port is None:
        start = _start_port()
        for candidate in range(start, min(start + PORTS_TRIED, 65536)):
            if port_is_free(host, candidate):
                return candidate
        raise InvalidInputError(
            f"No free port on {host} from {start} to {start + PORTS_TRIED - 1}.",
            hint="Pass --port 0 to let the system pick a free one.",
        )
    if check_port(port) == 0:
        bind = _bind_host(host)
        with socket.socket(_family(bind), socket.SOCK_STREAM) as s:
            s.bind((bind, 0))
            return int(s.getsockname()[1])
    if not port_is_free(host, port):
        raise busy_port_error(host, port)
    return port


def url_host(host: str) -> str:
    """The host to put in a URL a person opens: ``0.0.0.0`` (every interface) is reached as ``localhost``."""
    return "localhost" if host in ("0.0.0.0", "::", "[::]") else host


__all__ = ["DEFAULT_PORT", "busy_port_error", "check_port", "choose_port", "port_is_free", "url_host"]
