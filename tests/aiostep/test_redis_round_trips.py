"""What an update costs on Redis in round trips: the commands clients send to the server.

Counted server-side with ``MONITOR``, between two ``ECHO`` markers sent by the counter itself.
``INFO stats``' ``total_commands_processed`` cannot count round trips here: Redis adds to it
every command a Lua script runs (``redis.call``), so one claim script shows up as 3 to 8.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest_asyncio
from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message
from redis.asyncio import Redis

import aiostep
from aiostep.storage.base import Patch
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator

if TYPE_CHECKING:
    from conftest import Backend


class RoundTrips:
    """Counts the commands clients send to a Redis server while an action runs."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.last: list[str] = []

    async def count(self, action: Callable[[], Awaitable[Any]]) -> int:
        """Commands sent by clients (not run by scripts) during ``await action()``."""
        marker = uuid.uuid4().hex
        async with self.client.monitor() as monitor:
            await self.client.echo(f"start {marker}")
            await action()
            await self.client.echo(f"end {marker}")
            seen: list[str] = []
            started = False
            while True:
                entry = await monitor.next_command()
                command = str(entry["command"])
                if command == f"ECHO start {marker}":
                    started = True
                elif command == f"ECHO end {marker}":
                    break
                elif started and entry["client_type"] != "lua":
                    seen.append(command)
        self.last = seen
        return len(seen)


@pytest_asyncio.fixture
async def round_trips(redis_url: str) -> AsyncIterator[RoundTrips]:
    client = Redis.from_url(redis_url)
    yield RoundTrips(client)
    await client.aclose()


def build(backend: Backend, step_name: Callable[[str], str], log: list[str]) -> Dispatcher:
    @aiostep.persisted_step(step_name("trips.name"))
    async def ask_name(message: Message) -> None:
        assert message.from_user is not None
        log.append(f"name {message.text}")
        await aiostep.register_next_step(
            message.from_user.id, ask_age, kwargs={"name": message.text}
        )

    @aiostep.persisted_step(step_name("trips.age"))
    async def ask_age(message: Message, name: str) -> None:
        assert message.from_user is not None
        log.append(f"{name} is {message.text}")
        await aiostep.register_next_step(message.from_user.id, ask_name)

    dp = Dispatcher()
    aiostep.setup(dp, storage=backend.new())

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, ask_name)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


async def test_a_persisted_step_transition_costs_two_round_trips(
    redis_backend: Backend, step_name: Callable[[str], str], round_trips: RoundTrips
) -> None:
    log: list[str] = []
    async with BotSimulator(build(redis_backend, step_name, log)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("Ann")  # warm up: scripts loaded, connection open
        await talk.send("30")
        assert log == ["name Ann", "Ann is 30"]

        # claim (one script) + register the next step (one script)
        assert await round_trips.count(lambda: talk.send("Bob")) == 2, round_trips.last
        assert [command.split()[0] for command in round_trips.last] == ["EVALSHA", "EVALSHA"]
        assert await round_trips.count(lambda: talk.send("41")) == 2
        assert log[-2:] == ["name Bob", "Bob is 41"]


async def test_an_update_with_nothing_pending_costs_one_round_trip(
    redis_backend: Backend, step_name: Callable[[str], str], round_trips: RoundTrips
) -> None:
    log: list[str] = []
    async with BotSimulator(build(redis_backend, step_name, log)) as sim:
        talk = sim.chat()
        await talk.send("warm up")  # scripts loaded, connection open
        assert await round_trips.count(lambda: talk.send("hello")) == 1, round_trips.last
        assert round_trips.last[0].startswith("EVALSHA")
        other = sim.chat(sim.user(), sim.group())
        assert await round_trips.count(lambda: other.send("hi")) == 1
        assert log == ["normal warm up", "normal hello", "normal hi"]


async def test_an_idle_worker_looks_at_the_deadlines_in_one_round_trip(
    redis_url: str, round_trips: RoundTrips
) -> None:
    """The scheduler of each worker looks at the shared deadline index once a second: with
    nothing due, taking the due ones and reading the earliest left is one script call."""
    storage = RedisStateStorage(redis_url, prefix=f"idle-{uuid.uuid4().hex}:")
    listen = aiostep.Listen(storage=storage)
    bot = Bot("42:TEST")
    try:
        await storage.write("1:1@42", Patch(callback="x", token="t", deadline=4e9, chat_id=1))
        await storage.due_deadlines(0.0, 0.0)  # the script loaded, as after a worker's first look
        assert await round_trips.count(lambda: listen.scheduler.start([bot])) == 1, round_trips.last
        assert round_trips.last[0].startswith("EVALSHA")
        assert listen.scheduler.next_wake == 4e9
    finally:
        await listen.scheduler.stop()
        await storage.close()
        await bot.session.close()
