"""Start the local Hub: blocking for ``hubui localhub``, or in a background thread for embedding."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from hubui.localhub.faults import FaultInjector
from hubui.localhub.limits import KEEP_ALIVE_TIMEOUT
from hubui.localhub.protocol import GuardedHttpProtocol
from hubui.localhub.server import LocalHubApp
from hubui.localhub.signing import install_log_redaction
from hubui.localhub.storage import Store
from hubui.localhub.users import Directory


def default_root() -> Path:
    """Where ``hubui localhub`` keeps its data unless ``--root`` says otherwise."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "hubui" / "localhub"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP (accepted ones
    # inherit it). With proto 0 every response after the first on a kept-alive connection waited ~40 ms
    # (Nagle against the client's delayed ACK), which made each Hub call of a push cost 43 ms instead of 1-2.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """A uvicorn server that reports its URL once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


def _make_server(
    store: Store,
    directory: Directory,
    sock: socket.socket,
    log_level: str,
    on_ready: Callable[[], None],
    faults: bool = False,
) -> _Server:
    app: Any = LocalHubApp(store, directory)
    if faults:
        app = FaultInjector(app)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="off",
        access_log=log_level in ("debug", "info"),
        # uvicorn's protocol plus a deadline and a size cap for request heads (slowloris; see protocol.py)
        http=GuardedHttpProtocol,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
    )
    server = _Server(config, on_ready)
    # After uvicorn.Config set up its loggers: the access log prints query strings, where LFS links carry their
    # signature.
    install_log_redaction()
    return server


def serve(
    root: str | Path,
    directory: Directory,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    on_ready: Callable[[str], None] | None = None,
    faults: bool = False,
) -> None:
    """Run the local Hub until interrupted.

    Args:
        root: Storage folder.
        directory: Users, orgs and tokens.
        host: Interface to bind; loopback by default.
        port: TCP port; 0 picks a free one.
        log_level: uvicorn's log level.
        on_ready: Called with the base URL once the server accepts connections.
        faults: Serve the fault-injection endpoint ``/_hubui/faults`` (tests only; see
            :mod:`hubui.localhub.faults`). Off by default.

    Raises:
        OSError: If the address cannot be bound.
        LocalHubRootInUseError: If another local Hub serves ``root``.
    """
    with Store(root) as store:  # first: a root in use is refused before the port is taken
        sock = _bind(host, port)
        url = _url(sock)
        server = _make_server(store, directory, sock, log_level, lambda: on_ready(url) if on_ready else None, faults)
        server.run(sockets=[sock])


class LocalHub:
    """A local Hub running in a background thread of this process.

    Example:
        >>> hub = LocalHub(tmp_path, build_directory(["alice:secret-token:write"])).start()
        >>> hub.url  # 'http://127.0.0.1:54321'
        >>> hub.stop()

    Args:
        root: Storage folder.
        directory: Users, orgs and tokens.
        host: Interface to bind.
        port: 0 picks a free port.
        faults: Serve the fault-injection endpoint (tests only; see :mod:`hubui.localhub.faults`).

    Raises:
        LocalHubRootInUseError: If another local Hub (a server, or a LocalHub in this process) holds ``root``;
            :meth:`stop` gives it back.
    """

    def __init__(
        self, root: str | Path, directory: Directory, host: str = "127.0.0.1", port: int = 0, faults: bool = False
    ) -> None:
        self.root = Path(root)
        self.directory = directory
        self._store = Store(root)  # raises LocalHubRootInUseError while another local Hub serves root
        try:
            self._sock = _bind(host, port)
        except OSError:
            self._store.close()
            raise
        self.url = _url(self._sock)
        self._ready = threading.Event()
        self._server = _make_server(self._store, directory, self._sock, "warning", self._ready.set, faults)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self, timeout: float = 30.0) -> LocalHub:
        """Start serving and wait until connections are accepted.

        Raises:
            RuntimeError: If the server did not start within ``timeout`` seconds.
        """
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"The local Hub did not start within {timeout:.0f}s")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if not self._thread.is_alive():  # only then: a second server beside a live one loses commits
            self._store.close()

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
