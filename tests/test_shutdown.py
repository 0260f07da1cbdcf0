"""hubui.shutdown: SIGTERM unwinds like Ctrl+C inside the block, and only there."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from hubui import Terminated, interrupt_on_sigterm


def test_sigterm_inside_the_block_raises_terminated_and_runs_finally():
    cleaned = []
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated, match="SIGTERM"), interrupt_on_sigterm():
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
            cleaned.append("not reached")
        finally:
            cleaned.append(True)
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back


def test_terminated_is_a_keyboard_interrupt():
    # Gradio's server loop and the CLI already stop cleanly on KeyboardInterrupt.
    assert issubclass(Terminated, KeyboardInterrupt)


def test_outside_the_main_thread_it_changes_nothing():
    seen = []

    def run() -> None:
        with interrupt_on_sigterm():
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    assert seen == [before]
