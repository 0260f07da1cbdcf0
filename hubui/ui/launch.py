"""Serve the app until SIGTERM or Ctrl+C, on a port chosen beforehand, and stop it the same way every time.

Gradio's own ``launch()`` blocks in a loop that turns ``KeyboardInterrupt`` into a clean close. A signal that
arrives *before* that loop (while ``launch()`` is still starting the server, checking it answers, and so on:
seconds on a busy machine, after the page already answers) used to raise inside Gradio's start-up instead, and
the process ended with 143 rather than closing the server: which of the two happened depended on timing.

Here SIGTERM and SIGINT only set a flag while the app starts and while it serves. The main thread waits for that
flag in a loop of its own and then closes the app, whenever the signal came. A second signal still interrupts at
once (a start-up that hangs can be stopped), as SIGTERM does elsewhere in hubui (:mod:`hubui.shutdown`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import gradio as gr

from hubui.ports import busy_port_error, choose_port, url_host
from hubui.shutdown import Terminated
from hubui.ui.app import launch_options

logger = logging.getLogger(__name__)

_IDLE_S = 0.2  # how often the serving loop looks at the flag: how long a stop takes to begin


class _StopRequest:
    """What the signal handler records: the first signal's name. It never raises for the first one."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is not None:  # the second signal: stop now, like hubui's plain SIGTERM handling
            raise Terminated(f"stopped by signal {name}") if signum == signal.SIGTERM else KeyboardInterrupt
        self.signal_name = name


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_StopRequest]:
    """SIGTERM and SIGINT set the request's flag inside the block (main thread only); the old handlers come back."""
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request.handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def serve(app: gr.Blocks, host: str, port: int | None, on_ready: Callable[[str], None] | None = None) -> str | None:
    """Serve ``app`` until SIGTERM or Ctrl+C, then close it.

    Args:
        app: The Blocks to serve (built, not launched).
        host: The interface to bind.
        port: ``None`` (the next free from 7860), ``0`` (any free) or a port (see :mod:`hubui.ports`).
        on_ready: Called with the app's URL once its server answers.

    Returns:
        The name of the signal that stopped it (``"SIGTERM"``, ``"SIGINT"``).

    Raises:
        InvalidInputError: The port is busy or invalid (checked before the server starts, and again if another
            program takes it in between).
    """
    chosen = choose_port(host, port)
    with _stop_on_signals() as stop:
        try:
            try:
                app.launch(
                    server_name=host,
                    server_port=chosen,
                    show_error=True,
                    prevent_thread_lock=True,
                    quiet=True,
                    **launch_options(),
                )
            except OSError as exc:  # gradio's "Cannot find empty port": another program took it since we looked
                raise busy_port_error(host, chosen) from exc
            url = f"http://{url_host(host)}:{app.server_port}"
            if on_ready is not None and stop.signal_name is None:
                on_ready(url)
            while stop.signal_name is None:
                time.sleep(_IDLE_S)
            logger.debug("stopping the app: %s", stop.signal_name)
            print(f"hubui: {stop.signal_name} received, closing the app", file=sys.stderr, flush=True)
            return stop.signal_name
        finally:
            app.close()


__all__ = ["serve"]
