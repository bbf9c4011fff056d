"""A next step is called as ``fn(update, **kwargs)`` (the raw-layer guide), plus what else it
asks for by name. A kwarg that shares a name with one of those extras (``conversation``, and for
a persisted step ``step_context``/``aiostep_storage``) used to be replaced by the extra without
a word: ``kwargs={"conversation": "support"}`` reached the step as a ``ConversationKey``. The
step's own kwargs now win, as they already did for ``on_timeout``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep

if TYPE_CHECKING:
    from conftest import Backend


@pytest.mark.parametrize(
    ("backend", "persisted"),
    [("memory", False), ("memory", True), ("file", True), ("redis", True)],
    ids=["in-process", "memory", "file", "redis"],
    indirect=["backend"],
)
async def test_a_kwarg_named_like_an_extra_reaches_the_step_as_given(
    backend: Backend, persisted: bool
) -> None:
    got: list[Any] = []
    name = f"test.kwargs-as-given.{uuid.uuid4().hex[:8]}"

    async def topic(message: Message, conversation: Any, step_context: Any = None) -> None:
        got.append((conversation, step_context))

    aiostep.registry.register(topic, name)

    def setup(dp: Dispatcher, storage: Any) -> None:
        aiostep.setup(dp, storage=storage if persisted else None)

        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(
                message.from_user.id,
                name,
                kwargs={"conversation": "support", "step_context": "billing"},
            )

    try:
        sim = backend.simulator(setup)
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("my invoice")
    finally:
        aiostep.registry.unregister(name)
    assert got == [("support", "billing")]
