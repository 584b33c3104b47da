"""Bounded YAML: refuse, before building anything, documents that would cost minutes or gigabytes to load.

Only config.py reads atbb.yaml; it hands the text here first. PyYAML's SafeLoader has no limits of its
own: nine anchors of nine aliases each (a "billion laughs" alias bomb) make a 1 KB file that expands to
a billion nodes once anything walks it, and a few thousand nested brackets overflow the composer's
recursion. One pass over the parser's events (which neither recurses nor builds anything) measures the
document as it would be once every alias is replaced by what it names, and stops at the first bound
crossed, naming the line.

The bounds are far above what atbb.yaml needs (a few hundred nodes, no aliases, nesting of five).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from atbb_kit.core.errors import ConfigError

MAX_BYTES = 128 * 1024
MAX_ALIASES = 100
MAX_NODES = 20_000
MAX_DEPTH = 32
FIX = "atbb.yaml needs no anchors (&) or aliases (*): write the values out"
SHAPE_FIX = "write atbb.yaml the way the kit's own is written: plain keys, nested a few levels"


@dataclass
class _Frame:
    mapping: bool
    anchor: str | None
    start: int  # the expanded count when the collection began
    items: int = 0


def check(text: str, name: str) -> None:
    """Raise ConfigError when `text` crosses a bound; yaml.YAMLError for a syntax error."""
    anchors: dict[str, int] = {}  # anchor -> expanded size of the node it names
    stack: list[_Frame] = []
    aliases = 0
    expanded = 0  # nodes so far, each alias counted as the whole node it names

    def where(event: yaml.Event) -> str:
        mark = event.start_mark  # PyYAML's parser always sets it; the stubs allow None
        return f"{name}:{mark.line + 1}" if mark is not None else name

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if not isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
            continue
        in_mapping = bool(stack) and stack[-1].mapping
        is_key = in_mapping and stack[-1].items % 2 == 0 and isinstance(event, yaml.NodeEvent)
        if is_key and not isinstance(event, yaml.ScalarEvent):
            raise ConfigError(
                f"{where(event)}: a key must be a plain word, not a list, a mapping or an alias", SHAPE_FIX
            )
        if isinstance(event, yaml.CollectionEndEvent):
            frame = stack.pop()
            if frame.anchor:
                anchors[frame.anchor] = expanded - frame.start
            if stack:
                stack[-1].items += 1
            continue
        if stack:
            stack[-1].items += isinstance(event, yaml.ScalarEvent | yaml.AliasEvent)
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ConfigError(f"{where(event)}: more than {MAX_ALIASES} aliases (*name) in one file", FIX)
            if event.anchor not in anchors:
                if any(frame.anchor == event.anchor for frame in stack):
                    raise ConfigError(f"{where(event)}: the alias *{event.anchor} is inside what it names", FIX)
                continue  # an unknown alias: PyYAML reports it with its line
            expanded += anchors[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            expanded += 1
            if event.anchor:
                anchors[event.anchor] = 1
        else:  # a list or a mapping begins
            if len(stack) >= MAX_DEPTH:
                raise ConfigError(f"{where(event)}: nested more than {MAX_DEPTH} levels deep", SHAPE_FIX)
            stack.append(_Frame(isinstance(event, yaml.MappingStartEvent), event.anchor, expanded))
            expanded += 1
        if expanded > MAX_NODES:
            raise ConfigError(
                f"{where(event)}: the document holds more than {MAX_NODES} values once its aliases are expanded",
                FIX,
            )
