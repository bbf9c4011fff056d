"""Tests of a bot with aiostep.testing: the shape of tests/test_signup.py in your project."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.storage import FileStateStorage
from aiostep.testing import BotSimulator, FakeClock
from aiostep.testing.pytest_plugin import SimulatorFactory
from examples.signup import build


# --8<-- [start:basic]
async def test_signup(aiostep_simulator: SimulatorFactory) -> None:
    sim = aiostep_simulator(build)  # a factory (or a Dispatcher); closed after the test
    talk = sim.chat()  # Alice (user 1001) in her private chat
    await talk.send("/signup")
    talk.assert_last("What is your name?")
    await talk.send("A")
    talk.assert_last("Please send at least 2 characters.\n\nWhat is your name?")
    await talk.send("Alice")
    await talk.send("30")
    talk.assert_last("Alice, 30. Correct?", buttons=[["Yes", "Start over"]])
    await talk.click("Yes")
    assert talk.last == "Welcome, Alice!"


# --8<-- [end:basic]


# --8<-- [start:restart]
async def test_signup_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    async with BotSimulator(lambda: build(FileStateStorage(path))) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        await talk.send("Alice")
        await sim.restart()  # a new Dispatcher and storage over the same file
        await talk.send("30")
        talk.assert_last("Alice, 30. Correct?")


# --8<-- [end:restart]


# --8<-- [start:group]
async def test_answers_stay_in_their_conversation(aiostep_simulator: SimulatorFactory) -> None:
    sim = aiostep_simulator(build)
    alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
    group = sim.group()
    talk = sim.chat(alice, group)
    await talk.send("/signup")
    await sim.chat(bob, group).send("Bob")  # not Bob's wizard: nothing answers him
    await talk.send("Alice")
    assert [record.text for record in talk.messages] == ["What is your name?", "How old are you?"]


# --8<-- [end:group]


# --8<-- [start:clock]
def slow_bot() -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("quiz"))
    async def quiz(message: Message) -> None:
        await message.answer("2 + 2?")
        try:
            await aiostep.wait_for(message.from_user.id, timeout=30)
        except TimeoutError:
            await message.answer("Time is up.")

    return dp


async def test_quiz_times_out(
    aiostep_simulator: SimulatorFactory, aiostep_clock: FakeClock
) -> None:
    talk = aiostep_simulator(slow_bot).chat()
    await talk.send("/quiz")
    await aiostep_clock.advance(29)
    talk.assert_last("2 + 2?")
    await aiostep_clock.advance(1)  # fires the timeout and waits for the bot to settle
    talk.assert_last("Time is up.")


# --8<-- [end:clock]


# --8<-- [start:aliases]
@pytest.fixture
def redis_url(aiostep_redis_url: str) -> str:  # in your conftest.py: a shorter name
    return aiostep_redis_url


# --8<-- [end:aliases]
