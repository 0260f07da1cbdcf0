"""YAML with limits: a README's metadata is input from whoever can write to a repo, so it is loaded bounded.

YAML aliases let 409 bytes stand for 9**9 strings: ``yaml.safe_load`` keeps them as shared references, and the
first thing that walks the result (JSON of a repo-info answer, a form, ``str()``) expands them. :func:`load_bounded`
refuses such input before anything walks it:

1. the event stream (flat, no recursion) is counted: at most :data:`MAX_ALIASES` aliases and nesting depth
   :data:`MAX_DEPTH`;
2. the composed node graph is measured without expanding it (each node's expanded size is computed once, shared
   nodes reuse it): at most :data:`MAX_EXPANDED_NODES` nodes and :data:`MAX_EXPANDED_CHARS` characters of scalars;
   an alias that contains itself is refused;
3. only then is it constructed into Python objects.

One loader for both sides: the local Hub (``hubui.localhub.yamlsafe``) and hubui's own reading of an existing card
(``hubui.card_yaml``). libyaml's C parser is used when installed.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_ALIASES = 16
"""Alias uses (``*name``) in one metadata block; real model cards use none."""
MAX_DEPTH = 64
"""Nesting of sequences and mappings; a card's ``model-index`` is about 6 deep."""
MAX_EXPANDED_NODES = 100_000
"""Nodes of the metadata once every alias is expanded."""
MAX_EXPANDED_CHARS = 2 * 1024 * 1024
"""Characters of scalars once every alias is expanded: the most a repo-info answer's ``cardData`` can hold."""
MAX_README_BYTES = 1024 * 1024
"""A README larger than this has no card data on the local Hub (the README itself is still served)."""

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(ValueError):
    """The YAML is refused by a limit; the message names the limit and what was found."""


def split_front_matter(text: str) -> str | None:
    """The YAML metadata block of a README (between the first two ``---`` lines), or ``None``."""
    if not text.startswith("---"):
        return None
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n") == "---":
            return "".join(lines[1:i])
    return None


def _check_events(text: str) -> int:
    aliases = depth = 0
    for nodes, event in enumerate(yaml.parse(text, Loader=_Loader), start=1):
        if nodes > 2 * MAX_EXPANDED_NODES:  # start and end events: stop parsing as soon as the count is certain
            raise YamlLimitError(f"The YAML metadata holds more than {MAX_EXPANDED_NODES} values")
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlLimitError(
                    f"The YAML metadata uses more than {MAX_ALIASES} aliases (*{event.anchor} and others); "
                    f"at most {MAX_ALIASES} are allowed. Write the values out instead of using anchors"
                )
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlLimitError(f"The YAML metadata is nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
    return aliases


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expanded(root: yaml.Node, aliases: int) -> None:
    """Compute the expanded node and character counts of ``root`` in time linear in the graph, not the expansion."""
    sizes: dict[int, tuple[int, int]] = {}
    on_stack: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_stack.discard(key)
            nodes, chars = 1, len(node.value) if isinstance(node, yaml.ScalarNode) else 0
            for child in _children(node):
                n, c = sizes[id(child)]
                nodes, chars = nodes + n, chars + c
            sizes[key] = (nodes, chars)
            how = " once its aliases are written out" if aliases else ""
            if nodes > MAX_EXPANDED_NODES:
                raise YamlLimitError(f"The YAML metadata holds more than {MAX_EXPANDED_NODES} values{how}")
            if chars > MAX_EXPANDED_CHARS:
                raise YamlLimitError(f"The YAML metadata holds more than {MAX_EXPANDED_CHARS} characters{how}")
            continue
        if key in sizes:
            continue
        if key in on_stack:
            raise YamlLimitError("The YAML metadata has an alias that contains itself")
        on_stack.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_stack:
                raise YamlLimitError("The YAML metadata has an alias that contains itself")
            if id(child) not in sizes:
                stack.append((child, False))


def load_bounded(text: str) -> Any:
    """``yaml.safe_load`` of ``text`` within the limits above.

    Args:
        text: A YAML document (a README's metadata block).

    Returns:
        The loaded value (``None`` for an empty document).

    Raises:
        YamlLimitError: When a limit is passed; the message names it.
        yaml.YAMLError: When ``text`` is not valid YAML.
    """
    aliases = _check_events(text)
    root = yaml.compose(text, Loader=_Loader)
    if root is None:
        return None
    _check_expanded(root, aliases)
    return yaml.load(text, Loader=_Loader)  # a safe loader: CSafeLoader or SafeLoader


__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_EXPANDED_CHARS",
    "MAX_EXPANDED_NODES",
    "MAX_README_BYTES",
    "YamlLimitError",
    "load_bounded",
    "split_front_matter",
]
