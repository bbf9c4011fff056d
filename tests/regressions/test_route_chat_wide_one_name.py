"""``listen.route_chat_wide("quiz.vote")`` (one name, not a list of them) routed the letters
of the name, so the chat-wide step was silently never reached. A str is one name now, and
anything that is not a step name is a ``TypeError``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import FileStateStorage
from aiostep.testing import BotSimulator


async def test_route_chat_wide_takes_one_name_as_a_str(tmp_path: Path) -> None:
    name = f"test.one-name.vote.{uuid.uuid4().hex[:8]}"

    async def vote(message: Message) -> None:
        assert message.from_user is not None
        await message.answer(f"vote from {message.from_user.first_name}: {message.text}")

    aiostep.registry.register(vote, name)
    dp = Dispatcher()
    storage = FileStateStorage(tmp_path / "j.jsonl")
    listen = aiostep.setup(dp, storage=storage)
    listen.route_chat_wide(name)
    assert listen.chat_wide_steps == {name}

    @dp.message(Command("vote"))
    async def start_vote(message: Message) -> None:
        await aiostep.register_next_step(aiostep.ANYONE, name, chat_id=message.chat.id)

    try:
        async with BotSimulator(dp) as sim:
            alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
            group = sim.group()
            await sim.chat(alice, group).send("/vote")
            await sim.chat(bob, group).send("pasta")
            assert sim.chat(bob, group).last == "vote from Bob: pasta"
    finally:
        aiostep.registry.unregister(name)


def test_route_chat_wide_refuses_what_is_not_a_step_name(tmp_path: Path) -> None:
    listen = aiostep.Listen(storage=FileStateStorage(tmp_path / "j.jsonl"))

    async def vote(message: Message) -> None: ...

    with pytest.raises(TypeError, match=r"route_chat_wide takes step names .* got <function"):
        listen.route_chat_wide([vote])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="got ''"):
        listen.route_chat_wide([""])
    assert listen.chat_wide_steps == frozenset()
