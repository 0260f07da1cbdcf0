"""The local Hub's content-addressed objects: every file's bytes, stored once under ``<root>/objects`` by sha256.

:class:`ObjectStore` writes and finds objects (shared by all repos; which repo may use an LFS object is the
:class:`~hubui.localhub.storage.Store`'s business). :class:`ObjectReceiver` takes an LFS upload in chunks and keeps it
only if its size and sha256 match. Bytes in flight wait in ``<root>/tmp`` (same filesystem, so a finished one is
renamed in).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from hubui.localhub.diskio import fsync_dir
from hubui.localhub.records import FileEntry, git_blob_sha1
from hubui.localhub.storage_errors import StorageError


class ObjectStore:
    """Objects under ``<root>/objects/ab/<sha256>``; the base of :class:`~hubui.localhub.storage.Store`, which sets
    ``root`` and creates ``objects/`` and ``tmp/``."""

    root: Path

    def _clean_tmp(self) -> None:
        # Anything here is an upload that was in flight when the server stopped: never valid.
        for leftover in (self.root / "tmp").iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def has_object(self, sha256: str, size: int | None = None) -> bool:
        path = self.object_path(sha256)
        if not path.is_file():
            return False
        return size is None or path.stat().st_size == size

    def put_bytes(self, data: bytes) -> FileEntry:
        """Store a small regular file and return its entry."""
        sha = hashlib.sha256(data).hexdigest()
        if not self.has_object(sha, len(data)):
            self._install_object(sha, lambda fh: fh.write(data))
        return FileEntry(size=len(data), sha256=sha, blob_id=git_blob_sha1(data), lfs=False)

    def _install_object(self, sha256: str, write: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="obj-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            dest = self.object_path(sha256)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def object_receiver(self, sha256: str, size: int) -> ObjectReceiver:
        """Start receiving an LFS object; see :class:`ObjectReceiver`."""
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix="lfs-")
        return ObjectReceiver(os.fdopen(fd, "wb"), Path(tmp), self.object_path(sha256), sha256, size)


class ObjectReceiver:
    """Receives an LFS object in chunks and keeps it only if its size and sha256 match.

    Call :meth:`write` per chunk, then :meth:`finish`; always call :meth:`abort` afterwards (it is a
    no-op after a successful finish). Nothing reaches ``objects/`` unless it was checked.
    """

    def __init__(self, fh: BinaryIO, tmp: Path, dest: Path, sha256: str, size: int) -> None:
        self._fh, self._tmp, self._dest = fh, tmp, dest
        self._sha256, self._expected = sha256, size
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append a chunk.

        Raises:
            StorageError: 400 as soon as more bytes arrive than were declared.
        """
        self.size += len(chunk)
        if self.size > self._expected:
            raise StorageError(400, f"Received more bytes than the declared size {self._expected}")
        self._hash.update(chunk)
        self._fh.write(chunk)

    def finish(self) -> None:
        """Check size and sha256, then move the object into place.

        Raises:
            StorageError: 400 when the bytes don't match what was declared.
        """
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        if self.size != self._expected:
            raise StorageError(400, f"Object {self._sha256} should be {self._expected} bytes, received {self.size}")
        if self._hash.hexdigest() != self._sha256:
            raise StorageError(400, f"Object content does not match its sha256 {self._sha256}")
        self._dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, self._dest)
        fsync_dir(self._dest.parent)

    def abort(self) -> None:
        """Drop whatever was received and not finished."""
        if not self._fh.closed:
            self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)
