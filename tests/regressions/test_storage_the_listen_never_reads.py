"""``register_next_step(..., storage=X)`` inside an update of a ``Listen`` with no storage
stored the step in X, where that Listen never looks: the user's answer went to the normal
handlers and the step stayed stored forever. It is now a ``ValueError`` that names the fix
(give the storage to ``aiostep.setup``)."""

from __future__ import annotations

import uuid
from pathlib import Path

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import FileStateStorage
from aiostep.testing import BotSimulator


async def test_a_step_stored_where_the_listen_never_looks_is_refused(tmp_path: Path) -> None:
    log: list[str] = []
    name = f"test.unread-storage.{uuid.uuid4().hex[:8]}"

    async def answer(message: Message) -> None:
        log.append(f"step {message.text}")

    aiostep.registry.register(answer, name)
    storage = FileStateStorage(tmp_path / "steps.jsonl")
    dp = Dispatcher()
    aiostep.setup(dp)  # no storage: this Listen routes in-process steps only

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        assert message.from_user is not None
        try:
            await aiostep.register_next_step(message.from_user.id, name, storage=storage)
        except ValueError as exc:
            log.append(str(exc))

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    try:
        async with BotSimulator(dp) as sim:
            talk = sim.chat()
            await talk.send("/start")
            assert len(log) == 1 and "give the storage to aiostep.setup" in log[0]
            await talk.send("hi")
            assert log[1:] == ["normal hi"]
        assert await storage.read(f"{talk.chat.id}:{talk.user.id}@{sim.bot.id}") is None
    finally:
        aiostep.registry.unregister(name)
        await storage.close()
