"""Which files of a folder a push sends, and how hubui opens them: regular files inside the folder, nothing else.

A folder holding ``notes.txt -> ~/.cache/huggingface/token`` once published the token, because the file
list followed links. The rule now is the simplest one that cannot leak: every entry that would travel must
be a regular file, reached without following a link. Any symlink is refused, even one pointing inside the
folder: the Hub stores no symlinks (a link would be uploaded as a copy of its target, which is rarely what
was meant), and "inside" is a check that a later swap can undo. Devices, FIFOs and sockets are refused (a
FIFO would block the push, a device would stream forever), and so are files with more than one hard link,
whose other names may be anywhere on the disk. Hidden entries (``.cache``, ``.DS_Store``, ``.git``) never
travel, so they are not looked into.

The folder named by the user may itself be a link (``--from ~/latest``): it is resolved once, and everything
under it is checked with ``os.lstat`` while walking.

Between the check and the upload, a file could be swapped for a link (time of check to time of use). So the
push opens every file itself, component by component with ``O_NOFOLLOW`` relative to the folder's descriptor
(``openat``), checks the open file (a regular file of the planned size) and hands huggingface_hub that open
file, never the name: on Linux as ``/proc/self/fd/N``, which reopens the same inode (huggingface_hub and
hf_xet then read it as a path, so Xet uploads keep working), elsewhere as the file object itself.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from huggingface_hub import CommitOperationAdd

from hubui.errors import InvalidInputError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not block the open
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_PROC_FD = Path("/proc/self/fd")
_REFUSED_HINT = (
    "Push only regular files: replace links with copies of the files (cp -L), remove pipes, sockets and devices, "
    "or move them out of the folder."
)


@dataclass(frozen=True)
class PlannedFile:
    """A file that a push commits."""

    path: str
    size: int


def _kind(mode: int, nlink: int) -> str | None:
    """Why an entry may not travel (``None`` for a plain regular file)."""
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISREG(mode) and nlink > 1:
        return f"a file with {nlink} hard links (its other names may be outside the folder)"
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return "not a regular file"
    return None


def _refuse(folder: Path, rel: str, why: str, extra: str = "") -> InvalidInputError:
    return InvalidInputError(
        f"Refusing to push {str(folder)!r}: {rel!r} is {why}{extra}; nothing was uploaded. "
        "hubui pushes only regular files inside the folder (the Hub stores no symlinks, and a link can point "
        "anywhere, such as a token file).",
        _REFUSED_HINT,
    )


def folder_files(folder: str | Path) -> list[PlannedFile]:
    """The files a push of ``folder`` would send, checked with ``os.lstat`` (no link is followed).

    Args:
        folder: The folder to push.

    Returns:
        Its non-hidden regular files, sorted by path (``/``-separated, relative to ``folder``).

    Raises:
        InvalidInputError: ``folder`` is not a folder, or an entry that would travel is a symlink, a FIFO, a
            socket, a device or a hard-linked file; the message names it.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InvalidInputError(f"Not a folder: {str(folder)!r}", "Pass the folder that `hubui convert` wrote.")
    root = root.resolve()
    files: list[PlannedFile] = []

    def walk(path: Path, prefix: str) -> None:
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith("."):
                    continue  # hidden files (.cache, .DS_Store) never travel
                rel = prefix + entry.name
                info = entry.stat(follow_symlinks=False)
                why = _kind(info.st_mode, info.st_nlink)
                if why is not None:
                    target = ""
                    if stat.S_ISLNK(info.st_mode):
                        with contextlib.suppress(OSError):
                            target = f" (-> {os.readlink(entry.path)})"
                    raise _refuse(Path(folder), rel, why, target)
                if stat.S_ISDIR(info.st_mode):
                    walk(Path(entry.path), rel + "/")
                else:
                    files.append(PlannedFile(rel, info.st_size))

    walk(root, "")
    return files


def _open_fd(root: Path, rel: str) -> int:
    """A read descriptor of ``root/rel``, opened without following a link in any component."""
    parts = rel.split("/")
    if not _NOFOLLOW or os.open not in os.supports_dir_fd:
        # No openat/O_NOFOLLOW (Windows): check the name, then compare what was opened with what was checked.
        path = root.joinpath(*parts)
        before = os.lstat(path)
        if _kind(before.st_mode, before.st_nlink) is not None:
            raise OSError(f"{rel} is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        after = os.fstat(fd)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            os.close(fd)
            raise OSError(f"{rel} was replaced while it was opened")
        return fd
    dir_fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        return os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def open_checked(folder: str | Path, file: PlannedFile) -> Iterator[BinaryIO]:
    """Open a planned file for reading, refusing it if it is no longer the regular file that was checked.

    Args:
        folder: The pushed folder.
        file: A file from :func:`folder_files`.

    Yields:
        The open file (binary, positioned at 0); closed on exit.

    Raises:
        InvalidInputError: The name now leads through a link, is no regular file, or has another size.
    """
    root = Path(folder).expanduser().resolve()
    try:
        fd = _open_fd(root, file.path)
    except OSError as exc:
        why = "changed since it was checked: it is no longer a regular file reached without links"
        raise _refuse(Path(folder), file.path, why, f" ({exc.strerror or exc})") from exc
    handle = os.fdopen(fd, "rb")
    with handle:
        info = os.fstat(fd)
        kind = _kind(info.st_mode, info.st_nlink)
        if kind is not None or info.st_size != file.size:
            now = kind or f"a file of {info.st_size} bytes instead of {file.size}"
            raise _refuse(Path(folder), file.path, f"changed since it was checked: it is now {now}")
        os.set_blocking(fd, True)
        yield handle


def upload_source(handle: BinaryIO) -> str | BinaryIO:
    """What to give ``CommitOperationAdd`` for an open file: a path to the same inode where the OS has one.

    ``/proc/self/fd/N`` reopens the open file's inode, whatever its name points at now, and lets
    huggingface_hub (and hf_xet, which does not take file objects) read it as a path. Elsewhere the file
    object itself is given, and huggingface_hub uploads it over HTTP (LFS) instead of Xet.
    """
    proc_path = _PROC_FD / str(handle.fileno())
    return str(proc_path) if _PROC_FD.is_dir() and proc_path.exists() else handle


def commit_operations(
    folder: str | Path,
    files: Sequence[PlannedFile],
    overrides: Mapping[str, bytes],
    readme: str | None,
    stack: contextlib.ExitStack,
) -> list[CommitOperationAdd]:
    """The commit's additions, each planned file opened through :func:`open_checked` and kept open on ``stack``.

    Args:
        folder: The pushed folder.
        files: From :func:`folder_files` (a ``README.md`` among them is skipped: ``readme`` says what to upload).
        overrides: Files uploaded with other content than the folder's (open_clip's ``hf_tokenizer_self``).
        readme: The README text to upload, or ``None``.
        stack: Closes the files once the commit is done.

    Returns:
        One ``CommitOperationAdd`` per file (huggingface_hub hashes each file here, from the open file).

    Raises:
        InvalidInputError: A file is no longer the regular file that was checked.
    """
    operations = []
    for f in files:
        if f.path == "README.md":
            continue
        source: str | bytes | BinaryIO
        if f.path in overrides:
            source = overrides[f.path]
        else:
            source = upload_source(stack.enter_context(open_checked(folder, f)))
        operations.append(CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=source))
    if readme is not None:
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=readme.encode("utf-8")))
    return operations


def read_text_checked(folder: str | Path, file: PlannedFile) -> str:
    """The text of a planned file, read through :func:`open_checked`."""
    with open_checked(folder, file) as handle:
        return handle.read().decode("utf-8")


__all__ = ["PlannedFile", "commit_operations", "folder_files", "open_checked", "read_text_checked", "upload_source"]
