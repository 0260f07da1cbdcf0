"""The registry of model libraries: one module per library, found by name.

Each library is one module here (``timm``, ``open_clip``, ``transformers``) that defines ``SOURCE`` (a
:class:`~hubui.libraries.base.Source`: the zoo and its loader) and/or ``FORMAT`` (a
:class:`~hubui.libraries.base.Format`: the Hub folder it writes and rebuilds). The registry imports a module the
first time one of its names is asked for, so ``hubui localhub`` never imports torch, and it also finds third-party
libraries through the ``hubui.libraries`` entry-point group (each entry point names such a module), the way fsspec
finds filesystems by protocol name.

Nothing outside this package names a library: the core asks :func:`get_source` / :func:`get_format` /
:func:`target_format` / :func:`folder_format` and calls the protocol's methods.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubui.errors import InvalidInputError

if TYPE_CHECKING:
    from hubui.libraries.base import Format, Source

# The registry's list of names: registry name -> the module that defines it.
LIBRARY_MODULES: dict[str, str] = {
    "timm": "hubui.libraries.timm",
    "open_clip": "hubui.libraries.open_clip",
    "transformers": "hubui.libraries.transformers",
}
DEFAULT_SOURCE = "timm"
"""The library a name means when none is given (the CLI's ``--library``, ``CardFields.library_name``)."""

NATIVE = "native"
"""``ConvertOptions.target`` for the source library's own format."""

ENTRY_POINT_GROUP = "hubui.libraries"


@functools.cache
def _modules() -> dict[str, str]:
    found = dict(LIBRARY_MODULES)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


@functools.cache
def _module(name: str) -> Any:
    return importlib.import_module(_modules()[name])


def _names(attr: str) -> tuple[str, ...]:
    return tuple(n for n in _modules() if getattr(_module(n), attr, None) is not None)


def source_names() -> tuple[str, ...]:
    """Every registered source library, in registration order (``("timm", "open_clip")``)."""
    return _names("SOURCE")


def format_names() -> tuple[str, ...]:
    """Every registered folder format (``("timm", "open_clip", "transformers")``)."""
    return _names("FORMAT")


def _unknown(kind: str, name: object, known: tuple[str, ...]) -> InvalidInputError:
    return InvalidInputError(f"Unknown {kind} {name!r}.", hint=f"Use one of: {', '.join(map(repr, known))}.")


def get_source(name: str) -> Source:
    """The source library registered as ``name``.

    Raises:
        InvalidInputError: No library of that name (the hint lists them).
    """
    if not isinstance(name, str) or name not in _modules() or getattr(_module(name), "SOURCE", None) is None:
        raise _unknown("library", name, source_names())
    return _module(name).SOURCE  # type: ignore[no-any-return]


def get_format(name: str) -> Format:
    """The folder format registered as ``name``.

    Raises:
        InvalidInputError: No format of that name (the hint lists them).
    """
    if not isinstance(name, str) or name not in _modules() or getattr(_module(name), "FORMAT", None) is None:
        raise _unknown("format", name, format_names())
    return _module(name).FORMAT  # type: ignore[no-any-return]


def target_names(library: str | None = None) -> tuple[str, ...]:
    """``"native"`` and every other format some source (or ``library``) converts to."""
    sources = [get_source(library)] if library is not None else [get_source(n) for n in source_names()]
    extra = [t for s in sources for t in s.targets]
    return (NATIVE, *dict.fromkeys(extra))


def target_format(library: str, target: str = NATIVE) -> Format:
    """The format ``ConvertOptions.target`` names for a model of ``library``.

    Whether that format takes this particular model (a family it can express...) is its ``check_source``'s
    answer, asked by the caller before anything is loaded.

    Raises:
        InvalidInputError: Unknown library or target, or a target whose library is not installed.
    """
    source = get_source(library)
    if target == NATIVE:
        return get_format(source.native_format)
    return get_format(check_target(target))


def available_targets(library: str | None = None) -> tuple[str, ...]:
    """The conversion targets this installation offers: ``native``, plus each target whose format is available."""
    return tuple(t for t in target_names(library) if t == NATIVE or get_format(t).available())


def check_target(target: str) -> str:
    """Validate a conversion target name.

    Args:
        target: ``"native"`` or a target of :func:`target_names`.

    Returns:
        ``target``.

    Raises:
        InvalidInputError: An unknown target, or one whose library is not installed (the hint says how to get it).
    """
    targets = target_names()
    if not isinstance(target, str) or target not in targets:
        raise InvalidInputError(f"Unknown conversion target {target!r}", hint=f"Use one of: {', '.join(targets)}.")
    if target != NATIVE and not get_format(target).available():
        fmt = get_format(target)
        raise InvalidInputError(
            f"The {target} target needs the {target} package, which is not installed", hint=fmt.install_hint
        )
    return target


def target_info(target: str) -> str:
    """One line on a conversion target: what it is, or how to get it when it is not installed."""
    fmt = get_format(target)
    if fmt.available():
        return f"{target}: {fmt.description}"
    return f"The {target} target is not installed. {fmt.install_hint}"


def find_attribute(name: str) -> Any:
    """A module-level name of the first registered library module that defines it.

    This is how the names that moved into the library modules stay importable from their old modules
    (``hubui.export.TOKENIZER_ATTR``...) for one release, without those modules naming a library.

    Raises:
        AttributeError: No library module defines ``name``.
    """
    for library in _modules():
        module = _module(library)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"no library module in hubui.libraries defines {name!r}")


def moved_names(module: str, names: frozenset[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds ``names`` (moved into a library module) with :func:`find_attribute`.

    Args:
        module: The old module's ``__name__``, for the AttributeError of any other name.
        names: The names that moved.
    """

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return find_attribute(name)

    return __getattr__


def read_json_object(path: Path) -> dict[str, Any] | None:
    """``path`` parsed as a JSON object, or None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def folder_format(folder: str | Path) -> Format:
    """The format of an export folder, asked of every registered format in turn.

    Raises:
        InvalidInputError: No format recognises the folder (no config file of any of them).
    """
    folder = Path(folder)
    formats = [get_format(n) for n in format_names()]
    shared = {f.files.config for f in formats if sum(g.files.config == f.files.config for g in formats) > 1}
    # A config file only one format writes (open_clip_config.json) decides before a shared one (config.json), so
    # a folder holding both is the former's, whatever the registration order.
    for fmt in sorted(formats, key=lambda f: f.files.config in shared):
        if fmt.owns(folder, read_json_object(folder / fmt.files.config)):
            return fmt
    names = " or ".join(dict.fromkeys(f.files.config for f in formats))
    raise InvalidInputError(f"No {names} in {str(folder)!r}", hint="Pass the folder that export_model wrote.")


__all__ = [
    "DEFAULT_SOURCE",
    "ENTRY_POINT_GROUP",
    "LIBRARY_MODULES",
    "NATIVE",
    "available_targets",
    "check_target",
    "find_attribute",
    "folder_format",
    "format_names",
    "get_format",
    "get_source",
    "moved_names",
    "read_json_object",
    "source_names",
    "target_format",
    "target_info",
    "target_names",
]
