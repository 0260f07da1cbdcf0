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
import secrets
import shutil
import tempfile
import threading
import time
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
        form: The last values of the inputs a reload puts back, by elem_id (see :mod:`hubui.ui.resume`).
        pending: Model-tab values a reload is putting back; the search and model events re-apply them until
            the visitor changes one of those inputs.
        made_from: For the dry-run plan and the push result on show (``"plan"``, ``"result"``), a digest of the
            inputs they were made from: a change event that leaves the inputs as they were does not mark them
            out of date (:func:`hubui.ui.derived.stale_unless_same`).
        tabs: How many browser tabs' ``gr.State`` hold this session (a reloaded tab resumes it): it is closed
            when the last one lets go.
        tab_hash: The gradio session hash of the tab that holds it now.
        detached_at: When that tab was closed or reloaded (``time.monotonic()``), else ``None``.
        closed: :meth:`close` ran.
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
    form: dict[str, Any] = field(default_factory=dict, repr=False)
    pending: dict[str, Any] = field(default_factory=dict, repr=False)
    made_from: dict[str, str] = field(default_factory=dict, repr=False)
    tabs: int = 1
    tab_hash: str | None = None
    detached_at: float | None = None
    closed: bool = False

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
        self.token, self.identity, self.result, self.closed = None, None, None, True
        self.form, self.pending = {}, {}
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            logger.debug("removed the session folder %s", self.workdir)
            self.workdir = None


def close_session(session: Session | None) -> None:
    """``gr.State``'s delete callback: runs when gradio drops a tab's state; the last tab closes the session."""
    if isinstance(session, Session):
        session.tabs -= 1
        if session.tabs <= 0:
            session.close()


RESUME_KEEP_S = 600.0  # a closed or reloaded tab's session waits this long to be resumed, then it is closed


class SessionStore:
    """Sessions that a reloaded browser tab can take up again, by a random key the tab keeps.

    The key (``secrets.token_urlsafe(32)``) lives in the tab's ``sessionStorage``: it survives a reload of that
    tab, and is not shared with other tabs or kept after the tab is closed. It is not the token: the token stays
    in the server's memory, in the :class:`Session`, as always. A session whose tab went away is kept
    :data:`RESUME_KEEP_S` seconds for a reload to resume, then closed (its folder removed).

    Args:
        keep_s: How long a detached session waits to be resumed.
    """

    def __init__(self, keep_s: float = RESUME_KEEP_S) -> None:
        self.keep_s = keep_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def register(self, session: Session, tab_hash: str | None) -> str:
        """Make ``session`` resumable; returns its new key."""
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._sweep()
            self._sessions[key] = session
            session.tab_hash, session.detached_at = tab_hash, None
        return key

    def resume(self, key: str | None, tab_hash: str | None) -> Session | None:
        """The session stored under ``key``, now held by the tab ``tab_hash`` as well; ``None`` if there is none."""
        with self._lock:
            self._sweep()
            session = self._sessions.get(key or "")
            if session is None or session.closed:
                return None
            session.tabs += 1
            session.tab_hash, session.detached_at = tab_hash, None
            return session

    def detach(self, tab_hash: str | None) -> bool:
        """The tab ``tab_hash`` went away (closed or reloading).

        Returns:
            Whether the tab's folder must stay: it held a resumable session, or a reload already took its session
            up (the session keeps the folder its first tab made; that tab's unload can come after the reload).
        """
        with self._lock:
            found = False
            for session in self._sessions.values():
                if not tab_hash or session.closed:
                    continue
                if session.tab_hash == tab_hash:
                    session.detached_at, found = time.monotonic(), True
                elif session.workdir is not None and session.workdir.name == tab_hash:
                    found = True  # held by the tab that reloaded: not detached, and its folder is not the old tab's
            self._sweep()
            return found

    def _sweep(self) -> None:
        """Forget closed sessions; close those detached longer than :attr:`keep_s`."""
        now = time.monotonic()
        for key, session in list(self._sessions.items()):
            expired = session.detached_at is not None and now - session.detached_at > self.keep_s
            if expired:
                session.close()
            if session.closed:
                del self._sessions[key]


def session_factory(oauth: bool, scratch_root: Path) -> Callable[[], Session]:
    """The ``gr.State`` value: a callable, so that each browser session gets its own :class:`Session`."""
    return partial(Session, oauth=oauth, scratch_root=scratch_root)


def remove_session_dir(scratch_root: Path, session_hash: str | None) -> None:
    """Remove a closed browser session's folder at once (gradio keeps closed sessions' state an hour)."""
    if session_hash and session_hash.isalnum():
        shutil.rmtree(scratch_root / session_hash, ignore_errors=True)
