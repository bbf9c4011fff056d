"""What a wizard costs on Redis, counted on the server: the commands clients sent it.

``INFO stats`` ``total_commands_processed`` also counts every ``redis.call`` made inside a Lua
script (one claim script is about a dozen of them), so it says little about round trips. The
count here is what ``MONITOR`` shows from clients (``client_type`` other than ``lua``) between
two marker commands, minus the markers: each is one command a client sent, one round trip.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import pytest_asyncio
import redis
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from examples.signup import Signup


class CommandLog:
    """The commands clients sent to Redis while a block ran (script internals excluded)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=5)  # never hang on MONITOR
        self.client.ping()

    @contextmanager
    def watch(self) -> Iterator[list[str]]:
        seen: list[str] = []
        marker = f"aiostep-test-{uuid.uuid4().hex}"
        with self.client.monitor() as monitor:
            self.client.echo(f"{marker}-start")
            while f"{marker}-start" not in monitor.next_command()["command"]:
                pass
            yield seen
            self.client.echo(f"{marker}-end")
            while True:
                entry = monitor.next_command()
                if f"{marker}-end" in entry["command"]:
                    break
                if entry["client_type"] != "lua":
                    seen.append(entry["command"].split(" ", 1)[0].upper())

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def commands(redis_url: str) -> Iterator[CommandLog]:
    log = CommandLog(redis_url)
    yield log
    log.close()


@pytest_asyncio.fixture
async def signup_bot(redis_url: str) -> AsyncIterator[tuple[BotSimulator, RedisStateStorage]]:
    storage = RedisStateStorage(redis_url)

    def build() -> Dispatcher:
        dp = Dispatcher()
        Signup.setup(dp, entry=Command("signup"), storage=storage)

        @dp.message(Command("help"))
        async def help_handler(message: Message) -> None:
            await message.answer("Help!")

        return dp

    sim = BotSimulator(build)
    yield sim, storage
    await sim.aclose()
    await storage.close()


async def _count(log: CommandLog, action: Callable[[], Awaitable[Any]]) -> list[str]:
    with log.watch() as seen:
        await action()
    return seen


async def test_a_step_transition_costs_a_claim_and_a_write(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/signup")  # connects and loads the scripts
    seen = await _count(commands, lambda: talk.send("Alice"))
    talk.assert_last("How old are you?")
    assert seen == ["EVALSHA", "EVALSHA"]  # claim the step, write the next one (+state, data)


async def test_a_rejected_answer_costs_a_claim_and_a_write(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/signup")
    seen = await _count(commands, lambda: talk.send("A"))
    assert talk.last is not None and talk.last.endswith("What is your name?")
    assert seen == ["EVALSHA", "EVALSHA"]


async def test_a_button_press_costs_a_claim_and_a_write(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/signup")
    await talk.send("Alice")
    await talk.send("30")
    seen = await _count(commands, lambda: talk.click("Start over"))
    talk.assert_last("What is your name?")
    assert seen == ["EVALSHA", "EVALSHA"]


async def test_a_message_outside_any_wizard_costs_one_read(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/signup")
    await talk.send("/cancel")
    seen = await _count(commands, lambda: talk.send("hello"))
    assert len(seen) == 1, seen  # one claim finds nothing pending


async def test_a_command_outside_any_wizard_costs_one_read(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/help")
    seen = await _count(commands, lambda: talk.send("/help"))
    talk.assert_last("Help!")
    assert len(seen) == 1, seen


async def test_a_command_mid_wizard_reads_the_step_once(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/signup")
    seen = await _count(commands, lambda: talk.send("/help"))
    assert [m.text for m in talk.messages][-2:] == ["Help!", "What is your name?"]
    assert len(seen) == 1, seen  # the claim that skipped the command already read the record


async def test_back_costs_a_read_and_a_write(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/signup")
    await talk.send("Alice")
    seen = await _count(commands, lambda: talk.send("/back"))
    talk.assert_last("What is your name?")
    assert len(seen) == 2, seen


async def test_starting_a_wizard_reuses_the_record_the_routing_read(
    signup_bot: tuple[BotSimulator, RedisStateStorage], commands: CommandLog
) -> None:
    sim, _ = signup_bot
    talk = sim.chat()
    await talk.send("/help")  # connects and loads the scripts
    seen = await _count(commands, lambda: talk.send("/signup"))
    talk.assert_last("What is your name?")
    assert seen == ["EVALSHA", "EVALSHA"]  # the routing's claim (no step), the first step
