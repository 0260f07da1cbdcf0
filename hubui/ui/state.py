"""What one browser session holds: its token, who that is, its scratch folder and its last conversion.

One :class:`Session` lives in a ``gr.State`` per browser tab (gradio creates it through the factory
that :func:`session_factory` returns), never in a module global, so two visitors never share a token,
a folder or a result. The token is kept only here, in memory: it is never rendered into the page,
logged, or put into a message (``repr`` leaves it out).

Token rule: in **OAuth mode** (a Space with ``hf_oauth: true``, or ``build_app(oauth=True)``) a session
only ever uses the token its own visitor gave (the OAuth sign-in or a typed token); the server's
``HF_TOKEN`` and login cache are never used, since they belong to whoever runs the Space. In
**single-user mode** (``hubui app`` / ``hubui demo`` on your machine) the server's token *is* the
visitor's, so a new session starts logged in with it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubui import ConvertResult, Identity

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Session:
    """The per-browser-session state of the app.

    Args:
        oauth: The app runs in OAuth mode (see the module docstring for the token rule).
        scratch_root: Where this session's temporary folder is made (``None``: the system temp dir).
        token: The session's token; never shown, logged or copied.
        token_source: Where the token came from, for people (``"typed token"``, ``"HF_TOKEN"``...).
        identity: Who the token belongs to (holds no token).
        signed_out: The visitor logged out: an OAuth token is not picked up again until they log in.
        workdir: This session's scratch folder (made on first use, removed by :meth:`close`).
        cancel: The running conversion's cancel event, or ``None``.
        result: The last finished conversion (its folder is what a push uploads). It holds no model: the
            conversion released the original before the rebuild, and the push verifies against the original's
            outputs kept in the folder, so nothing stays in memory between steps.
        runs: How many conversions this session started (names the run folders).
    """

    oauth: bool = False
    scratch_root: Path | None = None
    token: str | None = field(default=None, repr=False)
    token_source: str = ""
    identity: Identity | None = None
    signed_out: bool = False
    workdir: Path | None = None
    cancel: threading.Event | None = field(default=None, repr=False)
    result: ConvertResult | None = field(default=None, repr=False)
    runs: int = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> Session:
        # gradio deep-copies a state's initial value; ours is made fresh per session by the factory,
        # and a lock or a token must not be duplicated.
        return self

    def log_in(self, token: str, identity: Identity, source: str) -> None:
        """Remember a checked token and its identity."""
        self.token, self.identity, self.token_source, self.signed_out = token, identity, source, False

    def log_out(self) -> None:
        """Forget the token and the identity."""
        self.token, self.identity, self.token_source, self.signed_out = None, None, "", True

    def new_run_dir(self, session_hash: str | None = None) -> Path:
        """A fresh, not yet existing output folder for a conversion; the previous run's folder is removed.

        Args:
            session_hash: gradio's id of the browser session; names the session folder so that the
                app's unload hook can find it.
        """
        if self.workdir is None:
            root = self.scratch_root
            if root is not None:
                root.mkdir(parents=True, exist_ok=True)
            if session_hash and root is not None and session_hash.isalnum():
                self.workdir = root / session_hash
                self.workdir.mkdir(exist_ok=True)
            else:
                self.workdir = Path(tempfile.mkdtemp(prefix="hubui-session-", dir=root))
        for old in self.workdir.glob("run-*"):
            shutil.rmtree(old, ignore_errors=True)
        self.result = None
        self.runs += 1
        return self.workdir / f"run-{self.runs}"

    def close(self) -> None:
        """End the session: stop its conversion, drop its token and result, remove its folder."""
        if self.cancel is not None:
            self.cancel.set()
        self.token, self.identity, self.result = None, None, None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            logger.debug("removed the session folder %s", self.workdir)
            self.workdir = None


def close_session(session: Session | None) -> None:
    """``gr.State``'s delete callback: runs when gradio drops a session's state."""
    if isinstance(session, Session):
        session.close()


def session_factory(oauth: bool, scratch_root: Path) -> Callable[[], Session]:
    """The ``gr.State`` value: a callable, so that each browser session gets its own :class:`Session`."""
    return partial(Session, oauth=oauth, scratch_root=scratch_root)


def remove_session_dir(scratch_root: Path, session_hash: str | None) -> None:
    """Remove a closed browser session's folder at once (gradio keeps closed sessions' state an hour)."""
    if session_hash and session_hash.isalnum():
        shutil.rmtree(scratch_root / session_hash, ignore_errors=True)
