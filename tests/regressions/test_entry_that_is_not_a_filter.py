"""``Wizard.setup(dp, entry="signup")`` (a command's name instead of ``Command("signup")``),
or a filter class instead of an instance, was accepted; aiogram then raised ``TypeError:
the first argument must be callable`` on every message the bot got, whatever it was, so the
whole bot stopped answering. It is refused by ``setup``, naming the value and the filter to
write."""

from __future__ import annotations

import re
from enum import Enum, auto
from typing import Any

import pytest
from aiogram import Dispatcher, F
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step


class Signup(Wizard, name="t_entry_not_a_filter"):
    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> None: ...


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("signup", "entry='signup'.*Command('signup')"),
        ("/signup", "entry='/signup'.*Command('signup')"),
        (Command, "entry=<class 'aiogram.filters.command.Command'>.*Command('signup')"),
        ([Command("signup"), 5], "entry=5"),
    ],
)
def test_an_entry_that_is_not_a_filter_is_refused_by_setup(entry: Any, says: str) -> None:
    dp = Dispatcher()
    pattern = ".*".join(re.escape(part) for part in says.split(".*"))
    with pytest.raises(TypeError, match=pattern):
        Signup.setup(dp, entry=entry)
    assert dp.sub_routers == []  # nothing was installed that would break the bot


async def test_filters_and_lists_of_them_are_accepted(bot_simulator: Any) -> None:
    dp = Dispatcher()
    Signup.setup(dp, entry=[Command("signup"), F.chat.type == "private"])
    talk = bot_simulator(dp).chat()
    await talk.send("/signup")
    talk.assert_last("Your name?")
