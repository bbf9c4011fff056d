"""A step (or ``on_timeout``, ``on_return``) that returns a member of another wizard's
``State`` (``return Booking.State.CONFIRM`` from a called wizard, meaning the caller's step)
went to the step of the same name in its own wizard, if it had one, and the user was asked
the wrong question. It is refused as any other outcome that is not this wizard's, naming it;
``self.goto(...)`` refuses it at once."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import ErrorEvent

from aiostep_dialogs import Wizard, step


class Other(Enum):
    CONFIRM = auto()


class Order(Wizard, name="t_another_state_order"):
    class State(Enum):
        ITEM = auto()
        NOTE = auto()
        CONFIRM = auto()

    @step(State.ITEM, prompt="Which item?")
    async def item(self, value: str) -> Any:
        if value == "goto":
            return self.goto(Other.CONFIRM)
        return Other.CONFIRM  # meant to skip the note: not this wizard's State

    @step(State.NOTE, prompt="A note?")
    async def note(self, value: str) -> None: ...

    @step(State.CONFIRM, prompt="Confirm?")
    async def confirm(self, value: str) -> None: ...


@pytest.mark.parametrize("answer", ["tea", "goto"])
async def test_a_member_of_another_state_enum_is_refused_not_followed_by_name(
    bot_simulator: Any, answer: str
) -> None:
    errors: list[BaseException] = []
    dp = Dispatcher()
    Order.setup(dp, entry=Command("order"))

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(event.exception)
        return True

    talk = bot_simulator(dp).chat()
    await talk.send("/order")
    await talk.send(answer)
    talk.assert_last("Which item?")  # not "Confirm?"
    assert len(errors) == 1
    assert isinstance(errors[0], (TypeError, ValueError))
    assert "Other.CONFIRM" in str(errors[0])
    await talk.send("x")  # the step is still there to answer
