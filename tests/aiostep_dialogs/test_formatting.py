"""aiostep_dialogs.formatting: escaping one value per parse mode, filling a template, and which
parse mode a bot's message goes out with. Escaped values parse back to themselves (checked with
the test kit's copy of Telegram's parser)."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import Default, DefaultBotProperties

from aiostep.testing.entities import parse_entities
from aiostep_dialogs import formatting
from aiostep_dialogs.formatting import Markup, effective_parse_mode, escape, fill

HOSTILE = [
    "Ada <i",
    "Tom & Jerry &amp; </b>",
    "a_b*c",
    "[x](tg://user?id=1) ~s~ ||p|| `c` ```pre``` > # + - = | { } . ! \\",
    "😀 é _*`[",
]


@pytest.mark.parametrize(
    ("value", "parse_mode", "escaped"),
    [
        ("Ada <i & >", "HTML", "Ada &lt;i &amp; &gt;"),
        ('say "hi"', "html", 'say "hi"'),  # quotes only matter inside attributes
        ("a_b*c.", "MarkdownV2", r"a\_b\*c\."),
        ("a\\b", "MarkdownV2", "a\\\\b"),
        ("a_b*c`[x].", "Markdown", r"a\_b\*c\`\[x]."),
        ("<b>*_", None, "<b>*_"),
        (42, "HTML", "42"),
        (Markup("<b>x</b>"), "HTML", "<b>x</b>"),
        (Markup("*x*"), "MarkdownV2", "*x*"),
    ],
)
def test_escape_per_parse_mode(value: object, parse_mode: str | None, escaped: str) -> None:
    assert escape(value, parse_mode) == escaped


@pytest.mark.parametrize("parse_mode", ["HTML", "MarkdownV2", "Markdown"])
@pytest.mark.parametrize("value", HOSTILE)
def test_an_escaped_value_shows_as_typed(value: str, parse_mode: str) -> None:
    assert parse_entities(escape(value, parse_mode), parse_mode) == (value, [])


def test_an_unknown_parse_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parse_mode 'BBCode'"):
        escape("x", "BBCode")


def test_fill_escapes_values_but_not_the_template() -> None:
    template = "<b>{name}</b> is {age:>3} ({name!r}), {missing} stays"
    filled = fill(template, {"name": "<i>", "age": 7}, "HTML")
    assert filled == "<b>&lt;i&gt;</b> is   7 ('&lt;i&gt;'), {missing} stays"
    assert parse_entities(filled, "HTML")[0] == "<i> is   7 ('<i>'), {missing} stays"


def test_fill_passes_markup_and_fields_marked_markup() -> None:
    values = {"badge": Markup("<u>VIP</u>"), "stored": "<i>x</i>", "name": "<b"}
    assert fill("{badge} {stored!m} {name}", values, "HTML") == "<u>VIP</u> <i>x</i> &lt;b"


def test_fill_keeps_a_missing_placeholder_visible_in_markdown_v2() -> None:
    filled = fill(r"*{name}* {missing}\.", {"name": "a_b"}, "MarkdownV2")
    assert parse_entities(filled, "MarkdownV2")[0] == "a_b {missing}."


async def test_effective_parse_mode_is_the_explicit_one_or_the_bots_default() -> None:
    plain = Bot("42:TEST")
    html = Bot("42:TEST", default=DefaultBotProperties(parse_mode="HTML"))
    try:
        assert effective_parse_mode(plain) is None
        assert effective_parse_mode(html) == "HTML"
        assert effective_parse_mode(html, Default("parse_mode")) == "HTML"
        assert effective_parse_mode(html, "MarkdownV2") == "MarkdownV2"
        assert effective_parse_mode(html, None) is None
    finally:
        await plain.session.close()
        await html.session.close()


@pytest.mark.parametrize("mode", [None, "HTML", "MarkdownV2", "Markdown"])
@pytest.mark.parametrize(
    "template",
    [
        "plain",
        "",
        "{name}, {age}. Correct?",
        "{price:.2f}",
        "{name!r} and {bold!m}",
        "{{literal}} {name}",
        "{missing} stays",
        "{name!s:>8}|",
        "{price:{width}}",  # a nested field: string.Formatter's path
        "<b>{name}</b>",
        "{name[1]}",  # an index: string.Formatter's path
    ],
)
def test_fill_parses_a_template_once_and_fills_it_as_string_formatter_does(
    template: str, mode: str | None
) -> None:
    values = {"name": "<Al_*>", "age": 33, "price": 1.5, "bold": "<i>x</i>", "width": 6}
    expected = formatting._Escaping(mode).vformat(template, (), formatting._MissingKeys(values))
    assert fill(template, values, mode) == expected
    assert fill(template, values, mode) == expected  # the parsed form, reused


@pytest.mark.parametrize("template", ["{a.b}", "{0}", "{}", "{unclosed"])
def test_fill_raises_what_string_formatter_raises(template: str) -> None:
    def error(run: Any) -> type[BaseException] | None:
        try:
            run()
        except Exception as exc:
            return type(exc)
        return None

    values = {"a": 1, "x": "yz"}
    expected = error(
        lambda: formatting._Escaping("HTML").vformat(template, (), formatting._MissingKeys(values))
    )
    assert expected is not None
    assert error(lambda: fill(template, values, "HTML")) is expected
