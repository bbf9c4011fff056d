"""``wait_for``: what ends a wait (an answer, a newer wait, unregister/clear, a timeout)."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.pending import root_store
from aiostep.testing import BotSimulator


def build(outcomes: list[str], timeout: float | None = None) -> Dispatcher:
    """/ask and /ask2 wait for an answer and report how the wait ended."""
    dp = Dispatcher()
    aiostep.setup(dp)

    async def ask(message: Message, label: str) -> None:
        assert message.from_user is not None
        await message.answer(f"{label}?")
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=timeout)
        except aiostep.WaitSuperseded:
            outcomes.append(f"{label}: superseded")
        except aiostep.WaitCancelled:
            outcomes.append(f"{label}: cancelled")
        except TimeoutError as exc:
            outcomes.append(f"{label}: {type(exc).__name__}")
        else:
            outcomes.append(f"{label}: {answer.text}")
            await message.answer(f"{label} got {answer.text}")

    @dp.message(Command("ask"))
    async def first(message: Message) -> None:
        await ask(message, "ask")

    @dp.message(Command("ask2"))
    async def second(message: Message) -> None:
        await ask(message, "ask2")

    @dp.message(Command("cancel"))
    async def cancel(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.unregister_steps(message.from_user.id)
        await message.answer("cancelled")

    async def stepped(message: Message) -> None:
        outcomes.append(f"step: {message.text}")

    @dp.message(Command("step"))
    async def step(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, stepped)

    @dp.message()
    async def normal(message: Message) -> None:
        outcomes.append(f"normal: {message.text}")

    return dp


async def test_wait_for_returns_the_users_next_message() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("blue")
        assert outcomes == ["ask: blue"]
        talk.assert_last("ask got blue")


async def test_a_second_wait_on_the_same_conversation_supersedes_the_first() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes), settle_timeout=2) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("/ask2")  # returns: neither handler hangs
        assert outcomes == ["ask: superseded"]
        await talk.send("green")
        assert outcomes == ["ask: superseded", "ask2: green"]
        assert sim.pending_tasks == []


async def test_a_superseded_wait_raises_wait_superseded_which_is_a_wait_cancelled() -> None:
    caught: list[BaseException] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        try:
            await aiostep.wait_for(message.from_user.id)
        except aiostep.WaitCancelled as exc:
            caught.append(exc)

    @dp.message(Command("again"))
    async def again(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.wait_for(message.from_user.id, timeout=0.5)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("/again")
        assert len(caught) == 1 and type(caught[0]) is aiostep.WaitSuperseded
        await talk.send("done")


async def test_registering_a_next_step_ends_a_pending_wait() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("/step")
        assert outcomes == ["ask: superseded"]
        await talk.send("to the step")
        assert outcomes == ["ask: superseded", "step: to the step"]


async def test_unregister_steps_ends_a_wait_with_wait_cancelled() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("/cancel")
        assert outcomes == ["ask: cancelled"]
        talk.assert_last("cancelled")
        await talk.send("after")
        assert outcomes == ["ask: cancelled", "normal: after"]


async def test_clear_ends_every_wait_with_wait_cancelled() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes)) as sim:
        group = sim.group()
        alice, bob = sim.user(), sim.user()
        await sim.chat(alice).send("/ask")
        await sim.chat(bob, group).send("/ask2")
        assert len(sim.pending_tasks) == 2
        await aiostep.clear()
        await sim.settle()
        assert sorted(outcomes) == ["ask2: cancelled", "ask: cancelled"]
        assert sim.pending_tasks == []
        await sim.chat(alice).send("after")
        assert outcomes[-1] == "normal: after"


async def test_wait_for_timeout_raises_the_builtin_timeout_error() -> None:
    caught: list[BaseException] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        try:
            await aiostep.wait_for(message.from_user.id, timeout=30)
        except BaseException as exc:
            caught.append(exc)
            raise

    @dp.message()
    async def normal(message: Message) -> None:
        await message.answer(f"normal: {message.text}")

    async with BotSimulator(dp) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        with_error = None
        await talk.send("/ask")
        await clock.advance(29)
        assert caught == []
        try:
            await clock.advance(1)
        except TimeoutError as exc:  # re-raised by the handler, surfaced by the simulator
            with_error = exc
        assert len(caught) == 1 and type(caught[0]) is TimeoutError
        assert with_error is caught[0]
        assert not isinstance(caught[0], aiostep.WaitCancelled)
        # the wait is gone: the next message goes to the normal handlers
        await talk.send("late")
        talk.assert_last("normal: late")


async def test_an_answer_before_the_timeout_cancels_the_timer() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes, timeout=10)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/ask")
        await clock.advance(5)
        await talk.send("in time")
        await clock.advance(60)
        assert outcomes == ["ask: in time"]
        assert clock.timers == []


async def test_the_timeout_leaves_the_conversation_free() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes, timeout=10)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/ask")
        await clock.advance(10)
        assert outcomes == ["ask: TimeoutError"]
        await talk.send("after")
        assert outcomes == ["ask: TimeoutError", "normal: after"]
        assert len(root_store().cache) == 0  # type: ignore[attr-defined]


@pytest.mark.usefixtures("only_this_bot_seen")
async def test_wait_for_outside_a_handler_is_answered_from_the_private_chat() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes)) as sim:
        alice = sim.user()
        waiting = asyncio.create_task(aiostep.wait_for(alice.id, timeout=1))
        await asyncio.sleep(0)
        await sim.chat(alice, sim.group()).send("in a group")
        assert not waiting.done()
        await sim.chat(alice).send("in private")
        answer = await waiting
        assert answer.text == "in private"
        assert outcomes == ["normal: in a group"]
