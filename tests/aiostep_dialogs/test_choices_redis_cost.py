"""What a toggle and a page turn cost on Redis: a claim and one small write, counted as the
commands clients sent (``MONITOR``, script internals excluded), and the write carries the
step's kwargs only, never the collected data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from enum import Enum, auto
from typing import Any

import pytest
import pytest_asyncio
import redis
from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step

SECRET = "Zanzibar-data-marker"


class Bakery(Wizard, name="t_cost_bakery"):
    class State(Enum):
        NAME = auto()
        CAKES = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.CAKES,
        prompt="Cakes?",
        choices=lambda wizard: [f"cake{i}" for i in range(12)],
        multi=True,
        per_page=5,
    )
    async def cakes(self, value: list[str]) -> None:
        self.data["cakes"] = value


@contextmanager
def client_commands(url: str) -> Iterator[list[str]]:
    """The full commands clients sent to Redis while the block ran (script internals excluded)."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    seen: list[str] = []
    marker = f"aiostep-test-{uuid.uuid4().hex}"
    try:
        with client.monitor() as monitor:
            client.echo(f"{marker}-start")
            while f"{marker}-start" not in monitor.next_command()["command"]:
                pass
            yield seen
            client.echo(f"{marker}-end")
            while True:
                entry = monitor.next_command()
                if f"{marker}-end" in entry["command"]:
                    break
                if entry["client_type"] != "lua":
                    seen.append(entry["command"])
    finally:
        client.close()


@pytest_asyncio.fixture
async def bakery(redis_url: str) -> AsyncIterator[BotSimulator]:
    storage = RedisStateStorage(redis_url)

    def build() -> Dispatcher:
        dp = Dispatcher()
        Bakery.setup(dp, entry=Command("cakes"), storage=storage)
        return dp

    sim = BotSimulator(build)
    yield sim
    await sim.aclose()
    await storage.close()


async def _watch(url: str, action: Callable[[], Awaitable[Any]]) -> list[str]:
    with client_commands(url) as seen:
        await action()
    return seen


@pytest.mark.parametrize("label", ["cake1", "Next »"], ids=["toggle", "page-turn"])
async def test_a_toggle_or_page_turn_is_a_claim_and_a_write_without_the_data(
    bakery: BotSimulator, redis_url: str, label: str
) -> None:
    talk = bakery.chat()
    await talk.send("/cakes")
    await talk.send(SECRET)
    talk.assert_last("Cakes?")

    seen = await _watch(redis_url, lambda: talk.click(label))

    assert [command.split(" ", 1)[0].upper() for command in seen] == ["EVALSHA", "EVALSHA"]
    assert not any(SECRET in command for command in seen)  # the data is not rewritten
