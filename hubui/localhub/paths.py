"""Which paths a repo of the local Hub may hold, checked one by one and against the commit's whole tree.

Refused, as git and the real Hub refuse them: ``.git`` as any part of a path, in any spelling a checkout would
treat as ``.git`` (any case; with trailing dots or spaces, and ``git~1``, on Windows; with zero-width characters on
macOS), since a cloned ``weights/.git/config`` can run a command on ``git status``; control characters; a file and a
folder of one name (``a`` and ``a/b``), which no checkout can hold; and two names equal after NFC normalisation
(``café`` spelt NFC and NFD), which macOS folds into one file.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from hubui.localhub.storage_errors import StorageError

MAX_PATH = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Code points HFS+ ignores in names (git's is_hfs_dotgit skips the same ones).
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF], None
)


def _is_dotgit(part: str) -> bool:
    folded = part.translate(_HFS_IGNORED).lower().rstrip(". ")
    return folded in (".git", "git~1")


def check_path(path: str) -> str:
    """Validate one path inside a repo.

    Args:
        path: A ``/``-separated path relative to the repo root.

    Returns:
        ``path``, unchanged.

    Raises:
        StorageError: 400 naming the path, for an empty, absolute or too long path, ``.``/``..``/empty parts,
            control characters, or a ``.git`` part.
    """
    shown = repr(path[:200])
    if not path or len(path) > MAX_PATH:
        raise StorageError(400, f"Invalid path in repo: {shown}: empty or longer than {MAX_PATH} characters")
    if _CONTROL.search(path):
        raise StorageError(400, f"Invalid path in repo: {shown}: control characters are not allowed in paths")
    # A backslash is an ordinary character here, as on the Hub (which stores 'folder/..\\file'): the server keys
    # files by path and never joins them onto a folder, and huggingface_hub refuses such names on download. Like
    # the Hub, refuse only a path that starts outside the repo when read with Windows separators ('..\\x', '\\x').
    if path.startswith("\\") or re.split(r"[\\/]", path, maxsplit=1)[0] in (".", ".."):
        raise StorageError(400, f"Invalid path in repo: {shown}: it must be relative, without '.', '..' or '//'")
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(400, f"Invalid path in repo: {shown}: it must be relative, without '.', '..' or '//'")
    # Only a part holding "git" or a non-ASCII character can spell .git: most paths skip the per-part look.
    # Split at backslashes too: a Windows checkout reads 'weights\\.git\\config' as weights/.git/config.
    if ("git" in path.lower() or not path.isascii()) and any(_is_dotgit(p) for p in re.split(r"[\\/]", path)):
        raise StorageError(400, f"Invalid path in repo: {shown}: '.git' is not allowed as a file or folder name")
    return path


def _folders(path: str) -> Iterable[str]:
    """``a``, ``a/b`` for ``a/b/c``."""
    end = path.find("/")
    while end != -1:
        yield path[:end]
        end = path.find("/", end + 1)


def _nfc(name: str) -> str:
    return name if name.isascii() else unicodedata.normalize("NFC", name)


def check_tree(files: Mapping[str, object], added: Iterable[str]) -> None:
    """Check the paths a commit adds against the commit's whole resulting file table.

    Only ``added`` paths are checked, so a tree stored before these rules keeps working for other changes. Linear
    in the number of path parts of ``files``.

    Args:
        files: Every path of the commit (after all its operations).
        added: The paths the commit adds or replaces.

    Raises:
        StorageError: 400 naming both paths, for a file that is also a folder, or two names equal after NFC.
    """
    added = [p for p in dict.fromkeys(added) if p in files]
    if not added:
        return
    folders: set[str] = set()
    by_nfc: dict[str, str] = {}  # NFC form -> a raw file or folder name of that form
    twins: dict[str, set[str]] = {}
    for path in files:
        for name in (*_folders(path), path):
            if name in folders:
                continue
            if name != path:
                folders.add(name)
            key = _nfc(name)
            seen = by_nfc.setdefault(key, name)
            if seen != name:
                twins.setdefault(key, {seen}).add(name)
    for path in added:
        if path in folders:
            raise StorageError(
                400, f"Invalid path in repo: {path!r} is a file, but {path!r} is also a folder in this commit"
            )
        for folder in _folders(path):
            if folder in files:
                raise StorageError(
                    400, f"Invalid path in repo: {path!r} needs a folder {folder!r}, but {folder!r} is a file"
                )
        for name in (*_folders(path), path):
            others = twins.get(_nfc(name), set()) - {name}
            if others:
                raise StorageError(
                    400,
                    f"Invalid path in repo: {path!r}: {name!r} and {sorted(others)[0]!r} differ only in their Unicode "
                    "normalisation (NFC/NFD) and would be one file on macOS; use one spelling",
                )
