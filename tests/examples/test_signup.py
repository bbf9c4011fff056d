"""examples/signup.py: name, age, confirm (the "Start over" branch), on every storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from examples.signup import build

if TYPE_CHECKING:
    from conftest import Backend


async def test_signs_a_user_up(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    talk.assert_last("What is your name?")
    await talk.send("Alice")
    talk.assert_last("How old are you?")
    await talk.send("30")
    talk.assert_last("Alice, 30. Correct?", buttons=[["Yes", "Start over"]])
    await talk.click("Yes")
    talk.assert_last("Welcome, Alice!")
    assert await backend.record(talk) is None


async def test_signup_command_starts_it_too(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/signup")
    talk.assert_last("What is your name?")


async def test_start_over_goes_back_to_the_name(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.send("Alice")
    await talk.send("30")
    await talk.click("Start over")
    talk.assert_last("What is your name?")
    await talk.send("Alicia")
    await talk.send("31")
    talk.assert_last("Alicia, 31. Correct?")
    await talk.send("yes")  # the label typed instead of pressed
    talk.assert_last("Welcome, Alicia!")


async def test_bad_answers_are_explained_and_asked_again(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.send_sticker()
    talk.assert_last("Please send a text message.\n\nWhat is your name?")
    await talk.send("x" * 5000)
    talk.assert_last("Please keep it to 50 characters or fewer.\n\nWhat is your name?")
    await talk.send("Alice")
    await talk.send("thirty")
    talk.assert_last("Please send a whole number from 1 to 120.\n\nHow old are you?")
    await talk.send("130")
    talk.assert_last("Please send a whole number from 1 to 120.\n\nHow old are you?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"name": "Alice"}


async def test_back_and_cancel(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.send("Alice")
    await talk.send("/back")
    talk.assert_last("What is your name?")
    await talk.send("/cancel")
    talk.assert_last("Cancelled.")
    assert await backend.record(talk) is None


async def test_restart_mid_conversation_continues(persistent_backend: Backend) -> None:
    sim = persistent_backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.send("Alice")
    await sim.restart()
    await talk.send("30")
    talk.assert_last("Alice, 30. Correct?")
    await sim.restart()
    await talk.click("Yes")  # a button sent before the restart still works
    talk.assert_last("Welcome, Alice!")
    assert await persistent_backend.record(talk) is None


async def test_start_mid_way_resumes_with_one_prompt(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.send("Alice")
    sent = len(talk.messages)
    await talk.send("/start")
    assert [m.text for m in talk.messages][sent:] == ["How old are you?"]
    await talk.send("/help")  # not a command of this bot: the prompt again, once
    assert [m.text for m in talk.messages][sent:] == ["How old are you?", "How old are you?"]
    await talk.send("30")
    talk.assert_last("Alice, 30. Correct?")
