"""YAML for schemas: a readable dump, and a load that remembers the line of every field."""

from __future__ import annotations

from typing import Any

import yaml

from loopml.errors import InvalidSchema

__all__ = ["dump", "load_with_lines"]

Path_ = tuple[str | int, ...]
Lines = dict[tuple[Path_, bool], int]


class _Dumper(yaml.SafeDumper):
    """Block style for mappings and columns; short lists of scalars inline (``[a, b, c]``)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write them.
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


# Line breaks YAML knows beyond \n and \r: unescaped inside a quoted scalar, a loader folds
# them into spaces, so a string with one is written double-quoted, where they are escaped.
_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if any(c in data for c in _BREAKS):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(str, _represent_str)


def dump(data: dict[str, Any]) -> str:
    """YAML text for a schema dict: keys in the dict's order, one block per column."""
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=99,
        default_flow_style=False,
    )
    # A blank line between columns makes a long schema easy to scan and edit.
    text = text.replace("\n  - name:", "\n\n  - name:")
    return text.replace("columns:\n\n", "columns:\n", 1)


def load_with_lines(text: str, source: str) -> tuple[Any, Lines]:
    """Parse YAML; return the data and the 1-based line of each field.

    The lines map ``(path, on_key)`` to a line: ``on_key`` True is the line of a mapping key,
    False the line of the value at ``path``.

    Raises:
        InvalidSchema: the text is not YAML, or a mapping repeats a key.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidSchema(f"{source}: the file is empty; a schema needs 'columns:'")
        lines: Lines = {}
        _walk(node, (), lines, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source} line {mark.line + 1}" if mark is not None else source
        problem = exc.problem or exc.context or "malformed YAML"
        raise InvalidSchema(
            f"{where}: not valid YAML ({problem}); check the indentation and quoting there"
        ) from exc
    except yaml.YAMLError as exc:
        raise InvalidSchema(f"{source}: not valid YAML ({exc})") from exc
    finally:
        loader.dispose()
    return data, lines


def _walk(node: yaml.Node, path: Path_, lines: Lines, source: str) -> None:
    lines[(path, False)] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.tag)
            if key in seen:
                raise InvalidSchema(
                    f"{source} line {key_node.start_mark.line + 1}: field {key!r} is given twice; "
                    "keep one"
                )
            seen.add(key)
            lines[((*path, key), True)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, source)
