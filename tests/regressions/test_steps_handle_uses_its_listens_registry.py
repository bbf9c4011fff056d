"""``listen.conversation(...).next_step(name)`` from code outside an update looked the name
up in the process-wide registry instead of the registry of the ``Listen`` that made the handle
(there is no update whose Listen it could use): a step registered only on that Listen's
registry raised ``StepNotRegisteredError``. The handle now passes its Listen's registry."""

from __future__ import annotations

from pathlib import Path

from aiogram import Dispatcher
from aiogram.types import Message

import aiostep
from aiostep import FileStateStorage, StepRegistry
from aiostep.testing import BotSimulator


async def test_a_handle_from_listen_conversation_finds_steps_in_that_listens_registry(
    tmp_path: Path,
) -> None:
    log: list[str] = []
    own = StepRegistry()

    async def city(message: Message) -> None:
        log.append(f"city {message.text}")

    own.register(city, "own-registry.city")
    dp = Dispatcher()
    listen = aiostep.setup(dp, storage=FileStateStorage(tmp_path / "j.jsonl"), registry=own)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        steps = listen.conversation(sim.bot, talk.chat.id, talk.user.id)
        await steps.next_step("own-registry.city")
        await steps.next_step(city)  # by function, too
        await talk.send("Paris")
    assert log == ["city Paris"]
    assert "own-registry.city" not in aiostep.registry
