"""One local Hub per storage root: an exclusive ``flock`` on ``<root>/localhub.lock``, held while the Store lives.

Two servers on one root each serialise commits with their own in-memory lock, so each overwrites the refs the
other just moved: under concurrent pushes a third of the commits answered 200 vanished. The lock makes the second
server (or a second :class:`~hubui.localhub.storage.Store` in the same process: ``flock`` locks belong to an open
file, not a process) refuse to start instead. The kernel drops the lock when the holder exits, however it exits
(SIGKILL included), so a stale lock file never blocks a restart; the PID written into it only serves the message.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import weakref
from pathlib import Path

from hubui.errors import LocalHubConfigError, LocalHubRootInUseError

LOCK_NAME = "localhub.lock"


class RootLock:
    """The held lock on a root. Create it with :meth:`acquire`; :meth:`release` gives the root back.

    Args:
        path: The lock file.
        fd: Its open descriptor, which holds the ``flock``.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        # A Store dropped without close() still gives the root back (closing the fd drops the flock).
        self._finalizer = weakref.finalize(self, os.close, fd)

    @classmethod
    def acquire(cls, root: Path) -> RootLock:
        """Take the root's lock and write this process's PID into the lock file.

        Args:
            root: The storage root (it must exist).

        Returns:
            The held lock.

        Raises:
            LocalHubRootInUseError: If another local Hub holds the root; the message names the root and its PID.
            LocalHubConfigError: If the lock file cannot be opened or locked at all (permissions, a filesystem
                without locks).
        """
        path = root / LOCK_NAME
        try:
            # No O_TRUNC: the file may hold the PID of the server that has the lock, which the message names.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LocalHubConfigError(
                f"Cannot open the lock file {str(path)!r} of the local Hub root: {exc.strerror}",
                "Use a --root folder this user can write to.",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"PID {holder}" if holder else "another process"
                raise LocalHubRootInUseError(
                    f"The local Hub root {str(root)!r} is in use by another local Hub ({who}); two servers on one "
                    "root would lose each other's commits.",
                    f"Stop that server first{f' (kill {holder})' if holder else ''}, or start this one with another "
                    "--root.",
                ) from exc
            raise LocalHubConfigError(
                f"Cannot lock the local Hub root {str(root)!r}: {exc.strerror}",
                "Put --root on a local filesystem that supports file locks.",
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the root back (idempotent). The lock file stays; only the lock on it matters."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._finalizer()


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    return None
