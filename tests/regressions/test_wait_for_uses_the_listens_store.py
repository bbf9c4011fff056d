"""``aiostep.setup(dp, store=X)``: a ``wait_for`` inside a handler parks in X, where that
``Listen`` looks, so the answer reaches it (it used to park in the root store, and the answer
went to the normal handlers); ``clear()`` inside an update ends the waits of that store too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.pending import root_store
from aiostep.testing import BotSimulator


class DictStore(aiostep.MetaStore):
    def __init__(self) -> None:
        self.items: dict[Hashable, Any] = {}

    async def set_item(self, key: Hashable, value: Any) -> None:
        self.items[key] = value

    async def get_item(self, key: Hashable) -> Any:
        return self.items.get(key)

    async def pop_item(self, key: Hashable) -> Any:
        return self.items.pop(key)

    async def clear(self) -> AsyncIterator[Any]:
        while self.items:
            yield self.items.popitem()[1]


def build(store: DictStore, outcomes: list[str]) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, store=store)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=5)
        except aiostep.WaitCancelled:
            outcomes.append("cancelled")
        else:
            outcomes.append(f"answer: {answer.text}")

    @dp.message(Command("clear"))
    async def clear(message: Message) -> None:
        await aiostep.clear()

    @dp.message()
    async def normal(message: Message) -> None:
        outcomes.append(f"normal: {message.text}")

    return dp


async def test_wait_for_with_a_custom_listen_store_gets_the_answer() -> None:
    store, outcomes = DictStore(), []
    async with BotSimulator(build(store, outcomes)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        assert len(store.items) == 1  # parked where the Listen looks
        assert await root_store().get_item(next(iter(store.items))) is None
        await talk.send("blue")
    assert outcomes == ["answer: blue"]
    assert store.items == {}


async def test_clear_inside_an_update_ends_the_waits_of_the_listens_store() -> None:
    store, outcomes = DictStore(), []
    async with BotSimulator(build(store, outcomes)) as sim:
        other, talk = sim.chat(sim.user()), sim.chat(sim.user())
        await other.send("/ask")
        await talk.send("/clear")
        await other.send("blue")
    assert outcomes == ["cancelled", "normal: blue"]
