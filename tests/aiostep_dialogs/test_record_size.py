"""A paused wizard's record stores nothing the class can work out again, and its kwargs lie
one field per item, so on Redis it keeps the compact hash encoding (every value at most 64
bytes, ``hash-max-listpack-value``):
a few hundred bytes instead of the ~800 a hashtable takes. History entries of answers that
only added data are stored as ``"STATE+name"`` text, and read back as the entries they were."""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import Enum, auto
from typing import Any

import pytest
import pytest_asyncio
import redis
from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step, v
from aiostep_dialogs.record import _unpacked, packed_history


class Profile(Wizard, name="t_size_profile"):
    class State(Enum):
        NAME = auto()
        AGE = auto()
        CITY = auto()
        PET = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="Age?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    @step(State.CITY, prompt="City?")
    async def city(self, value: str) -> None:
        self.data["city"] = value

    @step(State.PET, prompt="Pet?")
    async def pet(self, value: str) -> None:
        self.data["pet"] = value

    @step(State.CONFIRM, prompt="{name}, {age}, {city}, {pet}. Right?")
    async def confirm(self, value: str) -> Any:
        return self.finish()

    async def on_finish(self) -> None:
        await self.answer("Saved.")


@pytest_asyncio.fixture
async def profile(redis_url: str) -> AsyncIterator[BotSimulator]:
    storage = RedisStateStorage(redis_url)

    def build() -> Dispatcher:
        dp = Dispatcher()
        Profile.setup(dp, entry=Command("profile"), storage=storage)
        return dp

    sim = BotSimulator(build)
    yield sim
    await sim.aclose()
    await storage.close()


async def test_a_wizard_paused_at_its_last_step_keeps_redis_compact_hash_encoding(
    profile: BotSimulator, redis_url: str
) -> None:
    talk = profile.chat()
    await talk.send("/profile")
    for answer in ("Ann", "33", "Paris", "cat"):
        await talk.send(answer)
    talk.assert_last("Ann, 33, Paris, cat. Right?")
    client = redis.Redis.from_url(redis_url)
    try:
        [key] = [
            k for k in client.scan_iter("*") if client.type(k) == b"hash" and b"workers" not in k
        ]
        record = client.hgetall(key)
        step = {f: v for f, v in record.items() if f.startswith(b"k:")}
        assert step == {
            b"k:v": b"4",
            b"k:fp": b'"' + Profile._fingerprint.encode() + b'"',
            b"k:h": b'["NAME+name","AGE+age","CITY+city","PET+pet"]',
        }
        assert max(len(value) for value in record.values()) <= 64
        assert client.object("encoding", key) in (b"ziplist", b"listpack")
    finally:
        client.close()
    # and /back reads the packed history back: each answer is undone in turn
    await talk.send("/back")
    talk.assert_last("Pet?")
    await talk.send("/back")
    await talk.send("/back")
    talk.assert_last("Age?")
    await talk.send("34")
    await talk.send("Oslo")
    await talk.send("dog")
    talk.assert_last("Ann, 34, Oslo, dog. Right?")


@pytest.mark.parametrize(
    "entry",
    [
        {"s": "NAME"},
        {"s": "NAME", "x": ["name"]},
        {"s": "NAME", "x": ["first", "last"]},
        {"s": "NAME", "x": ["a,b"]},  # a name holding the separator: kept as a dict
        {"s": "NAME", "x": ["plus+sign"]},
        {"s": "NAME", "r": {"name": "Old"}},
        {"s": "NAME", "r": {"name": "Old"}, "x": ["age"]},
        {"s": "NAME", "d": {"name": "Old"}},  # version 2's whole data before the answer
    ],
)
def test_a_packed_history_entry_reads_back_as_the_entry_it_was(entry: dict[str, Any]) -> None:
    [stored] = packed_history([entry])
    assert _unpacked(stored) == entry
