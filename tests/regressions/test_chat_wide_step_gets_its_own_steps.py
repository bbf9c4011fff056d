"""A chat-wide step (registered for ``aiostep.ANYONE``) that asked for ``steps`` got the
handle of the member whose message it took, while its ``conversation`` was the chat's: its
``steps.next_step(...)`` moved the chat's conversation to that one member (the others' answers
went to the normal handlers). A step's ``steps`` is now the handle of its own conversation."""

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
async def test_a_chat_wide_step_asking_for_steps_keeps_the_chat_conversation(
    backend: Backend, persisted: bool
) -> None:
    log: list[str] = []
    name = f"test.chat-wide-steps.{uuid.uuid4().hex[:8]}"

    async def vote(message: Message, steps: aiostep.Steps) -> None:
        assert message.from_user is not None
        log.append(f"{message.from_user.first_name} votes {message.text}")
        assert steps.key.user_id == aiostep.ANYONE
        await steps.next_step(name)  # the next vote: the chat's conversation again

    aiostep.registry.register(vote, name)

    def setup(dp: Dispatcher, storage: Any) -> None:
        aiostep.setup(dp, storage=storage if persisted else None, chat_wide=True)

        @dp.message(Command("poll"))
        async def poll(message: Message) -> None:
            await aiostep.register_next_step(aiostep.ANYONE, name)

        @dp.message()
        async def normal(message: Message) -> None:
            assert message.from_user is not None
            log.append(f"normal {message.from_user.first_name} {message.text}")

    try:
        sim = backend.simulator(setup)
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        await sim.chat(alice, group).send("/poll")
        await sim.chat(bob, group).send("yes")
        await sim.chat(alice, group).send("no")
        await sim.chat(bob, group).send("maybe")
    finally:
        aiostep.registry.unregister(name)
    assert log == ["Bob votes yes", "Alice votes no", "Bob votes maybe"]
