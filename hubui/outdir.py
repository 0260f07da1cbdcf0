"""Which output folders an export may replace: only the ones hubui wrote itself.

``overwrite`` used to replace whatever the output folder held, so ``hubui convert --out . --overwrite`` deleted a
user's project. Now an existing, non-empty folder is replaced only when it is an export:

* it holds the marker :data:`MARKER_NAME` that every export leaves (a JSON list of the files it wrote), and
  nothing but those files and the ones hubui adds later (``parity.json``, ``README.md``, the original's kept
  outputs :data:`REFERENCE_NAME`); or
* it has no marker (an export made before the marker existed) but holds a config and a weights file and
  nothing but files an export writes (:data:`EXPORT_FILE_NAMES`).

Anything else is refused with an :class:`~hubui.errors.ExportError` that names what is in the way. The current
directory, any folder above it, the home folder and ``/`` are never replaced, marked or not: the export is
staged beside the folder and renamed into its place, which would pull the working directory away from under
the user's shell.

The marker starts with a dot, so it is never pushed (:mod:`hubui.publishing` leaves hidden files out) and never
listed among an export's files (:func:`export_files`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hubui.errors import ExportError

MARKER_NAME = ".hubui-export"
REFERENCE_NAME = ".hubui-reference.safetensors"  # the original's kept outputs (hubui.parity.kept.KEPT_NAME)

# Every name an exporter writes (every format in hubui.libraries, open_clip's Hugging Face tokenizers),
# plus what hubui adds to a finished export (parity.json by convert, README.md by a card).
_CONFIGS = frozenset({"config.json", "open_clip_config.json"})
_WEIGHTS = frozenset(
    {"model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors", "open_clip_pytorch_model.bin"}
)
_TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "tokenizer.model",
        "chat_template.jinja",
    }
)
EXPORT_FILE_NAMES: frozenset[str] = (
    _CONFIGS
    | _WEIGHTS
    | _TOKENIZER_FILES
    | frozenset({"preprocessor_config.json", "parity.json", "README.md", MARKER_NAME, REFERENCE_NAME})
)
_ADDED_LATER = frozenset({"parity.json", "README.md", REFERENCE_NAME})
_SHOWN = 5  # entries named in a refusal


def _protected(folder: Path) -> str | None:
    """Why ``folder`` (resolved) may never be replaced, or ``None``."""
    cwd = Path.cwd().resolve()
    if folder == cwd:
        return "it is the current directory"
    if folder in cwd.parents:
        return "the current directory is inside it"
    home = Path(os.path.expanduser("~")).resolve()
    if folder == home:
        return "it is the home folder"
    if folder == Path(folder.anchor):
        return "it is the root of the file system"
    return None


def _marked_files(folder: Path) -> set[str] | None:
    """The files the marker says the export wrote; ``None`` when there is no readable marker."""
    try:
        data = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def _foreign_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that hubui did not write (folders shown with a trailing ``/``), sorted."""
    marked = _marked_files(folder)
    allowed = (marked | _ADDED_LATER | {MARKER_NAME}) if marked is not None else EXPORT_FILE_NAMES
    foreign = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        is_plain_file = entry.is_file(follow_symlinks=False)
        if not is_plain_file or entry.name not in allowed:
            foreign.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    if marked is None and not foreign:
        names = {e.name for e in os.scandir(folder)}
        if not (names & _CONFIGS and names & _WEIGHTS):
            foreign = sorted(names)  # export-like names only, but no config + weights: not an export
    return foreign


def _listing(entries: list[str]) -> str:
    shown = ", ".join(entries[:_SHOWN])
    more = f" and {len(entries) - _SHOWN} more" if len(entries) > _SHOWN else ""
    return f"{shown}{more} ({len(entries)} {'entry' if len(entries) == 1 else 'entries'} in all)"


def is_hubui_export(folder: str | Path) -> bool:
    """Whether ``folder`` is an export that ``overwrite`` may replace (see the module docstring).

    Args:
        folder: Any path.

    Returns:
        True for an existing folder that holds only what an export wrote.
    """
    path = Path(folder).expanduser()
    if not path.is_dir() or path.is_symlink():
        return False
    return not _foreign_entries(path)


def check_out_dir(out_dir: str | Path, overwrite: bool) -> Path:
    """Check that an export may be written to ``out_dir``, before anything is loaded or written.

    Args:
        out_dir: The output folder asked for (``~`` is expanded).
        overwrite: Replace an earlier export in ``out_dir``.

    Returns:
        ``out_dir``, absolute and resolved.

    Raises:
        ExportError: ``out_dir`` is a file; is non-empty without ``overwrite``; holds anything hubui did not
            write (the first entries are named, with their count); or is the current directory, a folder above
            it, the home folder or ``/``.
    """
    folder = Path(out_dir).expanduser().resolve()
    if not folder.exists():
        return folder
    if not folder.is_dir():
        raise ExportError(
            f"Output folder {str(folder)!r} is a file, not a folder; nothing was changed.",
            hint="Choose a new folder for the export.",
        )
    why = _protected(folder)
    if why is not None:
        raise ExportError(
            f"Cannot write the export as {str(folder)!r}: {why}, and an export replaces its output folder "
            "as a whole; nothing was changed.",
            hint="Write the export to a subfolder instead, e.g. --out ./export (out_dir='export').",
        )
    if not any(folder.iterdir()):
        return folder
    foreign = _foreign_entries(folder)
    if not overwrite:
        what = "an earlier hubui export" if not foreign else "files"
        raise ExportError(
            f"Output folder {str(folder)!r} already exists and is not empty (it holds {what}).",
            hint="Choose a new folder, or pass --overwrite (overwrite=True) to replace an earlier export."
            if not foreign
            else "Choose a new or empty folder.",
        )
    if foreign:
        raise ExportError(
            f"Refusing to overwrite {str(folder)!r}: it is not a folder hubui exported. In the way: "
            f"{_listing(foreign)}; nothing was changed.",
            hint="Choose a new or empty folder for the export; overwrite only replaces a folder hubui wrote.",
        )
    return folder


def mark_export(folder: Path) -> None:
    """Leave the marker in a staged export folder: the list of the files in it, so it can be replaced later.

    Args:
        folder: The staging folder, with every file written.

    Raises:
        OSError: The marker could not be written.
    """
    files = sorted(p.name for p in folder.iterdir() if p.name != MARKER_NAME)
    from hubui import __version__

    payload = {"written_by": "hubui", "version": __version__, "files": files}
    (folder / MARKER_NAME).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def export_files(folder: Path) -> tuple[tuple[str, int], ...]:
    """``(name, size_bytes)`` of the files of an export, sorted by name, without the marker or hidden files.

    Args:
        folder: An export folder.

    Returns:
        What the export holds for people and for the Hub.
    """
    return tuple(
        sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    )


__all__ = ["EXPORT_FILE_NAMES", "MARKER_NAME", "check_out_dir", "export_files", "is_hubui_export", "mark_export"]
