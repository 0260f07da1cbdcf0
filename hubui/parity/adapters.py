"""Kept for one release: what differs per library now lives in each library's format (:mod:`hubui.libraries`),
found by name through :func:`hubui.libraries.get_format` (``transform``, ``pair``, ``versions``, ``files``).

The zero-shot prompt names that lived here are aliases to their library module.
"""

from __future__ import annotations

from typing import Any

from hubui.parity.pairs import Pair, Probe, SideFn

_MOVED = frozenset(
    {
        "PROMPT_TEMPLATE",
        "DEFAULT_LABELS",
        "MAX_PROMPTS",
        "parity_prompts",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from hubui.libraries import find_attribute

    return find_attribute(name)


__all__ = ["Pair", "Probe", "SideFn"]
