"""``register_next_step(user_id, None)`` (a typo'd variable, a method's result instead of the
method) was accepted in-process and failed only when the user answered: their message was
lost to a ``TypeError: 'NoneType' object is not callable`` and the conversation was stuck.
Now the registration itself raises a ``TypeError`` naming the value; the same for
``on_timeout``."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


async def answered(message: Message) -> None:
    await message.answer(f"step got {message.text}")


@pytest.mark.parametrize(
    ("step", "on_timeout", "error"),
    [
        (None, None, "the next step must be a function or a step name, got None"),
        (42, None, "the next step must be a function or a step name, got 42"),
        (answered, b"oops", "on_timeout must be a function or a step name, got b'oops'"),
    ],
)
async def test_a_next_step_that_cannot_be_called_is_refused_when_registered(
    step: Any, on_timeout: Any, error: str
) -> None:
    outcomes: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("go"))
    async def go(message: Message) -> None:
        assert message.from_user is not None
        try:
            await aiostep.register_next_step(
                message.from_user.id,
                step,
                on_timeout=on_timeout,
                timeout=None if on_timeout is None else 60,
            )
        except TypeError as exc:
            outcomes.append(str(exc))

    @dp.message()
    async def normal(message: Message) -> None:
        outcomes.append(f"normal: {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/go")
        assert outcomes == [error]
        await talk.send("hello")  # nothing broken is pending: the message is handled
        assert outcomes == [error, "normal: hello"]
