"""A prompt template's placeholder with no value in ``self.data`` stays in the text as written
(`fill`'s promise), format spec and all: ``"Tip: {tip:.2f}"`` with no ``tip`` (a branch that
did not ask for it, an answer ``/back`` undid). Before, a format spec was applied to the
placeholder's text (``ValueError: Unknown format code 'f'``), so the prompt could not be sent
and the user got no reply; a conversion (``{name!r}``) or an attribute (``{order.total}``) was
not written back as it was either."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step, v
from aiostep_dialogs.formatting import fill


@pytest.mark.parametrize(
    "template",
    ["Tip: {tip:.2f}", "Hi {name!r}", "{name:>10}|", "{order.total} {items[0]:.1f}", "{a!s:^5}"],
)
def test_a_placeholder_with_no_value_stays_as_written(template: str) -> None:
    assert fill(template, {}, None) == template


def test_a_placeholder_written_back_is_escaped_as_text() -> None:
    assert fill("{name:>10} <i>|</i>", {}, "HTML") == "{name:&gt;10} <i>|</i>"
    assert fill("*{tip:.2f}*", {}, "MarkdownV2") == "*\\{tip:\\.2f\\}*"


def test_placeholders_with_values_are_still_formatted_and_escaped() -> None:
    class Order:
        total = "<5>"

    values: dict[str, Any] = {"tip": 1.5, "name": "<b>", "order": Order(), "items": [2.25]}
    assert fill("Tip: {tip:.2f}, {name!r}", values, "HTML") == "Tip: 1.50, '&lt;b&gt;'"
    assert fill("{order.total} {items[0]:.1f} {gone:.1f}", values, "HTML") == (
        "&lt;5&gt; 2.2 {gone:.1f}"
    )


class Bill(Wizard, name="t_missing_placeholder_bill"):
    class State(Enum):
        SERVICE = auto()
        TIP = auto()
        PAY = auto()

    @step(State.SERVICE, prompt="Was the service good?", validate=v.yes_no())
    async def service(self, value: bool) -> Bill.State | None:
        return None if value else self.State.PAY  # no tip after bad service

    @step(State.TIP, prompt="Tip?", validate=v.number(min=0))
    async def tip(self, value: float) -> None:
        self.data["tip"] = value

    @step(State.PAY, prompt="Pay 20.00 with a tip of {tip:.2f}?", validate=v.yes_no())
    async def pay(self, value: bool) -> None:
        pass


async def test_a_prompt_with_a_placeholder_no_branch_filled_is_still_sent(
    bot_simulator: Any,
) -> None:
    dp = Dispatcher()
    Bill.setup(dp, entry=Command("bill"))
    talk = bot_simulator(dp).chat()
    await talk.send("/bill")
    await talk.send("no")
    talk.assert_last("Pay 20.00 with a tip of {tip:.2f}?")
    await talk.send("/back")
    await talk.send("yes")
    await talk.send("2.5")
    talk.assert_last("Pay 20.00 with a tip of 2.50?")
