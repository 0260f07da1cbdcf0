"""Reading the YAML metadata of a README someone else wrote, without letting it cost hubui unbounded memory.

A README on the Hub is input from whoever can write to the repo. YAML anchors and aliases let a few hundred
bytes stand for gigabytes (a 409-byte "alias bomb" expands 9**9-fold as soon as anything walks it). The README
is at most :data:`MAX_README_BYTES` (1 MiB), and its metadata is loaded by :func:`hubui.yaml_limits.load_bounded`,
the same bounded loader the local Hub uses: at most :data:`MAX_YAML_ALIASES` aliases, :data:`MAX_DEPTH` levels,
and :data:`MAX_EXPANDED_NODES` values / :data:`MAX_EXPANDED_CHARS` characters once expanded, measured without
expanding anything.

Each refusal is an :class:`~hubui.errors.InvalidCardError` that names the limit and the value found.
"""

from __future__ import annotations

from typing import Any

import yaml
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from hubui.errors import InvalidCardError
from hubui.yaml_limits import MAX_ALIASES as MAX_YAML_ALIASES
from hubui.yaml_limits import (
    MAX_DEPTH,
    MAX_EXPANDED_CHARS,
    MAX_EXPANDED_NODES,
    MAX_README_BYTES,
    YamlLimitError,
    load_bounded,
)


def check_readme_size(size: int, what: str = "The README") -> None:
    """Refuse a README larger than :data:`MAX_README_BYTES` before it is read.

    Args:
        size: Its size in bytes.
        what: How to name it in the message (e.g. ``"alice/x's README"``).

    Raises:
        InvalidCardError: Naming the size and the limit.
    """
    if size > MAX_README_BYTES:
        raise InvalidCardError(
            f"{what} is {size} bytes; hubui reads at most {MAX_README_BYTES} bytes of a README (1 MiB).",
            "Shorten the README on the Hub, or push with the 'replace' README mode to overwrite it.",
        )


def load_card_metadata(readme: str, what: str = "The README") -> dict[str, Any]:
    """The metadata block of ``readme``, parsed with the limits of :mod:`hubui.yaml_limits`.

    Args:
        readme: The README text.
        what: How to name it in messages.

    Returns:
        The metadata mapping; ``{}`` when the README has no metadata block or an empty one.

    Raises:
        InvalidCardError: The README is too large, its YAML passes a limit (aliases, depth, expanded size),
            is not valid YAML, or its metadata is not a mapping.
    """
    check_readme_size(len(readme.encode("utf-8", "surrogatepass")), what)
    match = REGEX_YAML_BLOCK.search(readme)
    if match is None:
        return {}
    hint = "Fix the README's metadata on the Hub, or push with the 'replace' README mode to overwrite it."
    try:
        data = load_bounded(match.group(2))
    except YamlLimitError as exc:
        raise InvalidCardError(
            f"{what} is refused: {exc}. Aliases and deep nesting can make a few bytes cost gigabytes of memory "
            "(a YAML alias bomb).",
            hint,
        ) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise InvalidCardError(f"{what}'s YAML metadata is not valid YAML: {exc}", hint) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidCardError(f"{what}'s YAML metadata must be a mapping, not {type(data).__name__}.", hint)
    return data


__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANDED_CHARS",
    "MAX_EXPANDED_NODES",
    "MAX_README_BYTES",
    "MAX_YAML_ALIASES",
    "check_readme_size",
    "load_card_metadata",
]
