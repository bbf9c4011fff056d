"""docs/convert_roles.py, the rewrite of reST markup in docstrings that is re-run after merges:
what it turns roles and ``::`` blocks into, how it keeps lines in 100 columns, and that a second
run changes nothing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("convert_roles", ROOT / "docs/convert_roles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


class Documented:
    """A resolver stand-in: names it documents, as the site's inventory would."""

    def __init__(self, **names: str) -> None:
        self.names = names

    def resolve(self, scope: Any, name: str) -> str | None:
        return self.names.get(name)


def test_roles_become_links_or_code_spans(script: ModuleType) -> None:
    resolver = Documented(**{"aiostep.Listen": "aiostep.Listen", "settle": "aiostep.S.settle"})
    line = (
        "Give it to :class:`~aiostep.Listen`, then :meth:`settle`; "
        ":func:`decide_claim` and :attr:`Title <aiostep.Listen>`."
    )
    assert script.convert_roles(line, None, resolver) == (
        "Give it to [`Listen`][aiostep.Listen], then [`settle`][aiostep.S.settle]; "
        "`decide_claim` and [`Title`][aiostep.Listen]."
    )


def test_example_blocks_become_google_sections_with_fenced_code(script: ModuleType) -> None:
    lines = [
        '    """Pass when.',
        "",
        "    Example::",
        "",
        "        @dp.message(IsState(Form.NAME))",
        "        async def got_name(message): ...",
        "",
        "    Use it as a context manager::",
        "",
        "        with FakeClock() as clock:",
        "            ...",
        '    """',
    ]
    docstring = {number: (4, len(lines)) for number in range(1, len(lines) + 1)}
    converted = script.convert_literal_blocks(lines, docstring)
    assert converted == [
        '    """Pass when.',
        "",
        "    Example:",
        "        ```python",
        "        @dp.message(IsState(Form.NAME))",
        "        async def got_name(message): ...",
        "        ```",
        "",
        "    Use it as a context manager:",
        "",
        "    ```python",
        "    with FakeClock() as clock:",
        "        ...",
        "    ```",
        '    """',
    ]
    again = {number: (4, len(converted)) for number in range(1, len(converted) + 1)}
    assert script.convert_literal_blocks(converted, again) == converted


def test_a_long_line_passes_its_overflow_to_the_rest_of_its_paragraph(script: ModuleType) -> None:
    first = (
        "    " + "word " * 19 + "[`BotSimulator.settle`][aiostep.testing.BotSimulator.settle] end"
    )
    lines = [first, "    of the sentence.", '    """']
    script.fit(lines, 0, (4, 3))
    assert all(len(line) <= 100 for line in lines)
    assert lines[0].endswith("word")
    assert lines[1] == (
        "    [`BotSimulator.settle`][aiostep.testing.BotSimulator.settle] end of the sentence."
    )


def test_a_long_last_line_breaks_in_two_inside_its_docstring(script: ModuleType) -> None:
    lines = ['    """' + "word " * 16 + '[`Listen`][aiostep.Listen] and more."""', "    code()"]
    script.fit(lines, 0, (4, 1))
    head, tail = lines[0].split("\n")
    assert len(head) <= 100
    assert tail == '    [`Listen`][aiostep.Listen] and more."""'
    assert lines[1] == "    code()"  # not a continuation: left alone


def test_section_items_and_comments_continue_at_their_own_indent(script: ModuleType) -> None:
    item = "        bot: the ``Bot`` to use; its session must be a " + "x" * 40 + " [`R`][a.b.R]."
    lines = [item, "    Returns:"]
    script.fit(lines, 0, (4, 10))
    assert lines[0].split("\n")[1].startswith("            ")  # one level under the item
    comment = "#: Builds the bot's Dispatcher; " + "y " * 30 + "[`restart`][a.B.restart]."
    lines = [comment, "#: and more.", "Factory = int"]
    script.fit(lines, 0, None)
    assert lines[1].startswith("#: ") and lines[1].endswith("and more.")
    assert lines[2] == "Factory = int"


def test_the_packages_have_nothing_left_to_convert(script: ModuleType) -> None:
    """The same check as the built reference's, without a build: no role in a docstring."""
    left = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in script.python_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if script.ROLE.search(line) or line.rstrip().endswith("::")
    ]
    assert left == [], "run `python docs/convert_roles.py` (see its docstring)"
