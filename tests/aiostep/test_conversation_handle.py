"""The conversation handle: ``steps`` in every handler's data, ``listen.conversation(...)``
outside an update, and the public surface of ``aiostep``."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import FileStateStorage, Listen, Steps, WaitCancelled
from aiostep.pending import root_store
from aiostep.testing import BotSimulator


async def test_a_handler_asks_for_steps_and_waits_for_the_answer() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("name"))
    async def ask(message: Message, steps: Steps) -> None:
        await message.answer("Your name?")
        answer = await steps.wait_for(timeout=5)
        await message.answer(f"Hello, {answer.text}!")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/name")
        await talk.send("Ada")
        talk.assert_last("Hello, Ada!")


async def test_wait_for_through_steps_uses_the_listens_own_store() -> None:
    # aiostep.setup(dp, store=X): the answer must come to X's waiter, not the root store's
    store = type(root_store())()  # a second in-process store, not the root one
    dp = Dispatcher()
    listen = aiostep.setup(dp, store=store)
    assert listen.store is store

    @dp.message(Command("name"))
    async def ask(message: Message, steps: Steps) -> None:
        assert steps.listen is listen
        answer = await steps.wait_for(timeout=5)
        await message.answer(f"Got {answer.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/name")
        await talk.send("x")
        talk.assert_last("Got x")


@aiostep.persisted_step("test-handle.age")
async def save_age(message: Message, name: str) -> None:
    await message.answer(f"{name} is {message.text}")


async def test_a_persisted_next_step_through_steps_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"

    def build() -> Dispatcher:
        dp = Dispatcher()
        aiostep.setup(dp, storage=FileStateStorage(path))

        @dp.message(Command("start"))
        async def start(message: Message, steps: Steps) -> None:
            await message.answer("Age?")
            await steps.next_step(save_age, kwargs={"name": "Ada"})

        return dp

    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await sim.restart()
        await talk.send("36")
        talk.assert_last("Ada is 36")


async def test_code_outside_an_update_gets_a_handle_from_listen(tmp_path: Path) -> None:
    dp = Dispatcher()
    listen = aiostep.setup(dp, storage=FileStateStorage(tmp_path / "s.jsonl"))

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        # a job, say: asks a user and routes their answer to a registered step
        steps = listen.conversation(sim.bot, talk.chat.id, talk.user.id)
        assert steps.key.bot_id == sim.bot.id
        await sim.bot.send_message(talk.chat.id, "Age?")
        await steps.next_step("test-handle.age", kwargs={"name": "Bob"})
        await talk.send("41")
        talk.assert_last("Bob is 41")


async def test_cancel_from_outside_ends_a_parked_wait() -> None:
    dp = Dispatcher()
    listen = aiostep.setup(dp)
    outcome: list[str] = []

    @dp.message(Command("wait"))
    async def wait(message: Message, steps: Steps) -> None:
        try:
            await steps.wait_for(timeout=5)
        except WaitCancelled:
            outcome.append("cancelled")
            await message.answer("Stopped waiting.")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/wait")
        await listen.conversation(sim.bot.id, talk.chat.id, talk.user.id).cancel()
        await sim.settle()
        assert outcome == ["cancelled"]
        talk.assert_last("Stopped waiting.")


async def test_steps_is_only_given_for_an_update_with_a_conversation() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)
    seen: list[Any] = []

    @dp.message(Command("x"))
    async def handler(message: Message, steps: Steps) -> None:
        seen.append(steps)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/x")
    assert len(seen) == 1
    assert seen[0].key.user_id == talk.user.id and seen[0].key.chat_id == talk.chat.id


def test_the_old_step_decorator_still_works_and_says_its_new_name() -> None:
    with pytest.warns(DeprecationWarning, match="aiostep.persisted_step"):

        @aiostep.step("test-handle.old-name")
        async def old(message: Message) -> None: ...

    assert "test-handle.old-name" in aiostep.registry
    aiostep.registry.unregister("test-handle.old-name")


def test_the_public_surface_lists_what_users_call() -> None:
    internals = {"MetaStore", "SeenRecords", "UpdateContext", "current_update", "step"}
    assert internals.isdisjoint(aiostep.__all__)
    for name in internals:  # still importable: code written against 0.4 keeps working
        assert hasattr(aiostep, name)
    for name in aiostep.__all__:
        obj = getattr(aiostep, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"aiostep.{name} has no docstring"
    assert isinstance(Listen.conversation.__doc__, str)
    assert asyncio.iscoroutinefunction(Steps.wait_for)
