"""Redis under load: a storage made from a URL waits for a free connection instead of dropping
the update (redis-py's default pool raises MaxConnectionsError past 100 at once)."""

from __future__ import annotations

import asyncio
from enum import Enum, auto
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import ErrorEvent

import aiostep
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step, v

done: list[int] = []
errors: list[BaseException] = []


class Order(Wizard, name="load.order"):
    class State(Enum):
        PIZZA = auto()
        SIZE = auto()
        COUNT = auto()
        ADDRESS = auto()

    @step(State.PIZZA, prompt="Which pizza?")
    async def pizza(self, value: str) -> None:
        self.data["pizza"] = value

    @step(State.SIZE, prompt="Which size?")
    async def size(self, value: str) -> None:
        await asyncio.sleep(0.01)  # a slow step holds its connection-free await, as real I/O
        self.data["size"] = value

    @step(State.COUNT, prompt="How many?", validate=v.integer(min=1))
    async def count(self, value: int) -> None:
        self.data["count"] = value

    @step(State.ADDRESS, prompt="Where to?")
    async def address(self, value: str) -> None:
        self.data["address"] = value

    async def on_finish(self) -> None:
        done.append(self.data["count"])


def build(url: str, **storage: Any) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=RedisStateStorage(url, **storage))
    Order.setup(dp, entry=Command("order"))

    @dp.errors()
    async def on_error(event: ErrorEvent) -> None:
        errors.append(event.exception)

    return dp


@pytest.mark.slow
async def test_a_thousand_concurrent_users_all_finish_a_four_step_wizard(redis_url: str) -> None:
    done.clear()
    errors.clear()
    users = 1000
    # the documented form, RedisStateStorage(url): the burst is far larger than its pool
    async with BotSimulator(build(redis_url), settle_timeout=120) as sim:
        talks = [sim.chat(sim.user(20_000 + u)) for u in range(users)]

        async def user(u: int) -> None:
            for text in ("/order", "Margherita", "Large", str(u + 1), "Main St"):
                await talks[u].send(text)

        await asyncio.gather(*(user(u) for u in range(users)))
    assert errors == []
    assert sorted(done) == list(range(1, users + 1))
