"""Kept for one release: what differs per library now lives in each library's format (:mod:`hubui.libraries`),
found by name through :func:`hubui.libraries.get_format` (``transform``, ``pair``, ``versions``, ``files``).

The zero-shot prompt names that lived here are aliases to their library module.
"""

from __future__ import annotations

from hubui.libraries import moved_names
from hubui.parity.pairs import Pair, Probe, SideFn

_MOVED = frozenset(
    {
        "PROMPT_TEMPLATE",
        "DEFAULT_LABELS",
        "MAX_PROMPTS",
        "parity_prompts",
    }
)

__getattr__ = moved_names(__name__, _MOVED)


__all__ = ["Pair", "Probe", "SideFn"]
