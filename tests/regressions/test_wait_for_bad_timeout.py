"""``wait_for`` with a timeout of the wrong type (``"25"`` from a config file, a ``timedelta``
as ``register_next_step`` takes) used to park its waiter first and fail at the timer after:
the handler got an unclear ``TypeError`` ("'>' not supported between 'float' and 'str'") and
the dead waiter stayed, silently taking the user's next message. The timeout is now checked
before anything waits, and a ``timedelta`` is taken, as ``register_next_step`` takes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


def build(outcomes: list[str], timeout: Any) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=timeout)
        except (TypeError, ValueError) as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
        except TimeoutError:
            outcomes.append("timed out")
        else:
            outcomes.append(f"answer: {answer.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        outcomes.append(f"normal: {message.text}")

    return dp


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        ("25", "TypeError: timeout must be seconds (a number) or a timedelta, got str: '25'"),
        (float("nan"), "ValueError: timeout must be a positive, finite number of seconds"),
        (-1, "ValueError: timeout must be a positive, finite number of seconds, got -1"),
    ],
)
async def test_a_bad_wait_for_timeout_is_refused_before_it_waits_and_takes_no_message(
    timeout: Any, error: str
) -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes, timeout)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        assert len(outcomes) == 1 and outcomes[0].startswith(error)
        # nothing is left waiting: the next message reaches the handlers
        await talk.send("hello")
        assert outcomes[1:] == ["normal: hello"]


async def test_wait_for_takes_a_timedelta_timeout() -> None:
    outcomes: list[str] = []
    async with BotSimulator(build(outcomes, timedelta(seconds=30))) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("blue")
        await talk.send("/ask")
        await clock.advance(29)
        assert outcomes == ["answer: blue"]
        await clock.advance(1)
        assert outcomes == ["answer: blue", "timed out"]
