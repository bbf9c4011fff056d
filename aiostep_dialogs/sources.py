"""What a step method's source says: the states it returns or goes to, and the ``then=``
states of the wizards it calls. Read once, at class definition (to refuse a target without a
step) and when a flowchart is drawn."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

__all__ = ["call_then_names", "returned_names"]


def returned_names(method: Any) -> list[str]:
    """What ``method``'s source returns or passes to ``goto``: the name ``X`` of each
    ``State.X`` (whether or not it has a step), and ``"finish"`` for ``self.finish(...)``.
    Empty when the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        candidates: list[Any] = []
        if isinstance(node, ast.Return) and node.value is not None:
            candidates.append(node.value)
            if isinstance(node.value, ast.IfExp):
                candidates.extend((node.value.body, node.value.orelse))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "goto"
        ):
            candidates.extend(node.args)
        for value in candidates:
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr == "finish"
                and "finish" not in found
            ):
                found.append("finish")
            if (
                isinstance(value, ast.Attribute)
                and isinstance(value.value, (ast.Attribute, ast.Name))
                and (getattr(value.value, "attr", None) or getattr(value.value, "id", None))
                == "State"
                and value.attr not in found
            ):
                found.append(value.attr)
    return found


def call_then_names(method: Any) -> list[str]:
    """The name ``X`` of each ``then=State.X`` given to a ``.call(...)`` in ``method``'s
    source (whether or not it has a step). Empty when the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return []
    return [
        keyword.value.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "call"
        for keyword in node.keywords
        if keyword.arg == "then" and isinstance(keyword.value, ast.Attribute)
    ]
