"""Card data on the local Hub: README metadata loaded with :mod:`hubui.yaml_limits`, once per README content.

A 409-byte alias bomb made a repo-info answer 473 MB; with the bounded loader its card data is ``{}``, and the
cache parses each README once, in whatever worker thread asks first, never per request on the event loop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import yaml

from hubui.localhub.storage import Commit, Store
from hubui.yaml_limits import MAX_README_BYTES, YamlLimitError, load_bounded, split_front_matter


def card_data_of(text: str) -> dict[str, Any]:
    """The metadata of README ``text`` as a dict; ``{}`` when there is none, it does not parse or passes a limit."""
    front = split_front_matter(text)
    if not front:
        return {}
    try:
        data = load_bounded(front)
    except (yaml.YAMLError, YamlLimitError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def limit_problem(text: str) -> str | None:
    """The message of the limit that README ``text``'s metadata passes, or ``None`` (also for invalid YAML, which
    the card rules report)."""
    front = split_front_matter(text)
    if not front:
        return None
    try:
        load_bounded(front)
    except YamlLimitError as exc:
        return str(exc)
    except (yaml.YAMLError, RecursionError):
        return None
    return None


class CardDataCache:
    """Card data per README content, parsed once (in whatever thread asks first) and kept for the next requests.

    Keyed by the README's sha256, so every commit that shares a README shares the entry.

    Args:
        store: Where the README bytes live.
        size: Entries kept (least recently used go first).
    """

    def __init__(self, store: Store, size: int = 128) -> None:
        self._store = store
        self._size = size
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, commit: Commit) -> dict[str, Any]:
        """The card data of ``commit``'s README (``{}`` without one). Callers must not modify the result."""
        entry = commit.files.get("README.md")
        if entry is None or entry.size > MAX_README_BYTES:
            return {}
        with self._lock:
            if entry.sha256 in self._entries:
                self._entries.move_to_end(entry.sha256)
                return self._entries[entry.sha256]
        try:
            text = self._store.object_path(entry.sha256).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return {}
        data = card_data_of(text)
        with self._lock:
            self._entries[entry.sha256] = data
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return data


__all__ = ["CardDataCache", "card_data_of", "limit_problem"]
