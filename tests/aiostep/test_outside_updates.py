"""A next step registered outside any update (a scheduler, a startup hook) finds its bot."""

from __future__ import annotations

import pytest
from aiogram import Dispatcher
from aiogram.types import Message

import aiostep
from aiostep import keys
from aiostep.testing import BotSimulator


@pytest.fixture(autouse=True)
def no_bots_seen_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    # the process-wide record of bots seen: other tests in this process use other bots
    monkeypatch.setattr(keys, "seen_bots", set())


def build(log: list[str]) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


async def test_a_step_registered_outside_an_update_belongs_to_the_only_bot_seen() -> None:
    log: list[str] = []

    async def reminder_answer(message: Message) -> None:
        log.append(f"step {message.text}")

    async with BotSimulator(build(log)) as sim:
        talk = sim.chat()
        await talk.send("hello")  # the process has now seen this bot
        await aiostep.register_next_step(talk.user.id, reminder_answer)  # no update here
        await talk.send("yes")
        assert log == ["normal hello", "step yes"]


async def test_bot_id_names_the_bot_explicitly() -> None:
    log: list[str] = []

    async def reminder_answer(message: Message) -> None:
        log.append(f"step {message.text}")

    async with BotSimulator(build(log)) as sim:
        talk = sim.chat()
        await aiostep.register_next_step(
            talk.user.id,
            reminder_answer,
            bot_id=sim.bot.id + 1,  # another bot's conversation
        )
        await talk.send("yes")
        await aiostep.register_next_step(talk.user.id, reminder_answer, bot_id=sim.bot.id)
        await talk.send("again")
        assert log == ["normal yes", "step again"]
