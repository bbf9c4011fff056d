"""A chat id read as text (``"-100123"`` from a config file or an env variable) passed to
``wait_for``/``register_next_step``/``listen.conversation`` used to make a conversation key no
update ever has: in-process, the wait or step was silently never answered (only a persisted
step's storage key refused it). Now each raises a ``TypeError`` naming the id."""

from __future__ import annotations

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


def build(outcomes: list[str]) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def noted(message: Message) -> None:
        outcomes.append(f"step: {message.text}")

    @dp.message(Command("wait"))
    async def wait(message: Message) -> None:
        assert message.from_user is not None
        try:
            answer = await aiostep.wait_for(message.from_user.id, chat_id=str(message.chat.id))
        except TypeError as exc:
            outcomes.append(str(exc))
        else:
            outcomes.append(f"answer: {answer.text}")

    @dp.message(Command("step"))
    async def step(message: Message) -> None:
        assert message.from_user is not None
        try:
            await aiostep.register_next_step(
                message.from_user.id, noted, chat_id=message.chat.id, thread_id="7"
            )
        except TypeError as exc:
            outcomes.append(str(exc))

    @dp.message()
    async def normal(message: Message) -> None:
        outcomes.append(f"normal: {message.text}")

    return dp


@pytest.mark.parametrize(
    ("command", "error"),
    [("/wait", "chat_id must be an int, got str: '1001'"), ("/step", "thread_id must be an int")],
)
async def test_a_str_id_given_to_wait_for_or_register_next_step_is_refused(
    command: str, error: str
) -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes)) as sim:
        talk = sim.chat()
        await talk.send(command)
        assert len(outcomes) == 1 and outcomes[0].startswith(error), outcomes
        await talk.send("hello")  # nothing was left waiting for a key no update has
        assert outcomes[1:] == ["normal: hello"]


async def test_a_str_chat_id_given_to_listen_conversation_is_refused() -> None:
    dp = Dispatcher()
    listen = aiostep.setup(dp)
    async with BotSimulator(dp) as sim:
        with pytest.raises(TypeError, match="must be ints"):
            listen.conversation(sim.bot, "-100123", 42)
        with pytest.raises(TypeError, match="must be ints"):
            listen.conversation(sim.bot.id, -100123, 42, thread_id="7")  # type: ignore[arg-type]
