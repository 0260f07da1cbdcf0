"""Kept for one release: what differs per library now lives in each library's format (:mod:`hubui.libraries`),
found by name through :func:`hubui.libraries.get_format` (``transform``, ``pair``, ``versions``, ``files``).

The zero-shot prompt names that lived here are aliases to their library module.
"""

from __future__ import annotations

import importlib
from typing import Any

from hubui.parity.pairs import Pair, Probe, SideFn

_MOVED: dict[str, str] = {
    "PROMPT_TEMPLATE": "hubui.libraries.open_clip",
    "DEFAULT_LABELS": "hubui.libraries.open_clip",
    "MAX_PROMPTS": "hubui.libraries.open_clip",
    "parity_prompts": "hubui.libraries.open_clip",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["Pair", "Probe", "SideFn"]
