"""SIGTERM ends hubui the way Ctrl+C does, so that its clean-up runs.

Python's default action for SIGTERM ends the process at once: no ``finally`` block and no ``atexit``
handler runs. SIGTERM is how a Space restart, ``docker stop``, systemd, a CI timeout or a plain ``kill``
ask a process to stop, so by default each of them left behind what hubui removes on the way out: the
app's session scratch folders (whole exported models), ``hubui push``'s temporary export, a convert's
half-written staging folder next to ``--out``. Inside :func:`interrupt_on_sigterm` the signal raises
:class:`Terminated` in the main thread instead, which unwinds like Ctrl+C: Gradio closes its server
(it already handles ``KeyboardInterrupt``), ``with`` blocks remove their folders, ``atexit`` runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

# The shell's convention for "ended by signal 15".
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM inside :func:`interrupt_on_sigterm`.

    A ``KeyboardInterrupt`` so that code which already stops cleanly on Ctrl+C (Gradio's server loop,
    ``hubui``'s command line) does the same here without knowing about it.
    """


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread while the block runs.

    The previous handler is put back afterwards. Outside the main thread (where Python cannot set signal
    handlers) this does nothing.

    Yields:
        Nothing; the block runs with the handler in place.

    Example:
        >>> with interrupt_on_sigterm():
        ...     app.launch()  # doctest: +SKIP
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        # None: the previous handler was not set from Python; the default is the closest we can restore.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


__all__ = ["EXIT_TERMINATED", "Terminated", "interrupt_on_sigterm"]
