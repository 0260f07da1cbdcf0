"""Reading the YAML metadata of a README someone else wrote, without letting it cost hubui unbounded memory.

A README on the Hub is input from whoever can write to the repo. YAML anchors and aliases let a few hundred
bytes stand for gigabytes: ``a1: &a1 [*a0, *a0, ...]`` nine levels deep is a 409-byte "alias bomb" that
expands 9**9-fold as soon as anything walks it (``str()``, JSON, a form). ``yaml.safe_load`` itself stays
small, because aliases become shared references; it is every use after it that explodes. So the metadata is
parsed here with limits, before anything else touches it:

- the README is at most :data:`MAX_README_BYTES` (1 MiB, the same cap the local Hub uses for card data);
- at most :data:`MAX_YAML_ALIASES` alias uses (real model cards use none), nested at most :data:`MAX_DEPTH`
  levels;
- the metadata, fully expanded, is at most :data:`MAX_EXPANDED_NODES` nodes and :data:`MAX_EXPANDED_CHARS`
  characters of scalars, counted on the composed node graph, so that nothing is ever expanded to count it.

Each refusal is an :class:`~hubui.errors.InvalidCardError` that names the limit and the value found.
"""

from __future__ import annotations

from typing import Any

import yaml
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from hubui.errors import InvalidCardError

MAX_README_BYTES = 1024 * 1024
MAX_YAML_ALIASES = 16
MAX_EXPANDED_NODES = 100_000
MAX_EXPANDED_CHARS = 2 * MAX_README_BYTES
MAX_DEPTH = 64  # a card's model-index is about 6 deep; deeper nesting only exhausts the parser's recursion


class _LimitedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that stops at the ``MAX_YAML_ALIASES + 1``-th alias, or deeper than ``MAX_DEPTH``."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _LimitError(f"uses more than {MAX_YAML_ALIASES} aliases ('*name')")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _LimitError(f"is nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _LimitError(Exception):
    pass


def _expanded(node: yaml.Node, memo: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """``(nodes, scalar characters)`` of ``node`` once every alias is expanded; shared nodes counted once each."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = (1, 0)  # a recursive structure (an alias to an enclosing node) counts once; SafeLoader allows it
    if isinstance(node, yaml.ScalarNode):
        size = (1, len(node.value))
    else:
        children = node.value if isinstance(node, yaml.SequenceNode) else [c for pair in node.value for c in pair]
        nodes, chars = 1, 0
        for child in children:
            n, c = _expanded(child, memo)
            nodes, chars = nodes + n, chars + c
            if nodes > MAX_EXPANDED_NODES or chars > MAX_EXPANDED_CHARS:
                break  # already over: stop adding, the caller refuses
        size = (nodes, chars)
    memo[key] = size
    return size


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
    """The metadata block of ``readme``, parsed with the limits of this module.

    Args:
        readme: The README text.
        what: How to name it in messages.

    Returns:
        The metadata mapping; ``{}`` when the README has no metadata block or an empty one.

    Raises:
        InvalidCardError: The README is too large, uses more than :data:`MAX_YAML_ALIASES` aliases, would
            expand beyond :data:`MAX_EXPANDED_NODES` nodes / :data:`MAX_EXPANDED_CHARS` characters, is not
            valid YAML, or its metadata is not a mapping.
    """
    check_readme_size(len(readme.encode("utf-8", "surrogatepass")), what)
    match = REGEX_YAML_BLOCK.search(readme)
    if match is None:
        return {}
    hint = "Fix the README's metadata on the Hub, or push with the 'replace' README mode to overwrite it."
    loader = _LimitedLoader(match.group(2))
    try:
        try:
            node = loader.get_single_node()
        except _LimitError as exc:
            raise InvalidCardError(
                f"{what}'s YAML metadata {exc}; refusing it: aliases and deep nesting can make a few bytes "
                "cost gigabytes of memory (a YAML alias bomb).",
                hint,
            ) from None
        if node is None:
            return {}
        nodes, chars = _expanded(node, {})
        if nodes > MAX_EXPANDED_NODES or chars > MAX_EXPANDED_CHARS:
            raise InvalidCardError(
                f"{what}'s YAML metadata would expand to more than {MAX_EXPANDED_NODES} values or "
                f"{MAX_EXPANDED_CHARS} characters through its aliases; refusing it (a YAML alias bomb).",
                hint,
            )
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InvalidCardError(f"{what}'s YAML metadata is not valid YAML: {exc}", hint) from exc
    finally:
        loader.dispose()
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
