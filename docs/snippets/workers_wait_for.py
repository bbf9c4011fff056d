"""``wait_for`` on several workers sharing Redis: the answer reaches whichever worker Telegram
(or the balancer) picks, and is handed to the worker that waits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Hashable
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.storage import RedisStateStorage
from aiostep.testing import BotSimulator


# --8<-- [start:worker]
def worker(redis_url: str, store: aiostep.MetaStore | None = None) -> Dispatcher:
    """What every worker process runs: the same code as on one process."""
    dp = Dispatcher()
    aiostep.setup(dp, store=store, storage=RedisStateStorage(redis_url, prefix="colours:"))

    @dp.message(Command("colour"))
    async def colour(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Your favourite colour?")
        answer = await aiostep.wait_for(message.from_user.id, timeout=300)
        await answer.answer(f"{answer.text}, noted.")  # a real Message, bound to this bot

    return dp


# --8<-- [end:worker]


class ProcessStore(aiostep.MetaStore):
    """Two simulators share one Python process; real workers each have their own in-process
    store, so each simulated worker gets one of its own."""

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


async def main(redis_url: str) -> tuple[list[str], list[str]]:
    """/colour reaches the first worker, the answer the second: the first one replies."""
    first = BotSimulator(worker(redis_url, ProcessStore()))
    second = BotSimulator(worker(redis_url, ProcessStore()))
    async with first, second:
        await first.chat().send("/colour")
        await second.chat().send("teal")  # handed over to the first worker's wait_for
        await first.settle()
        return (
            [record.text or "" for record in first.chat().messages],
            [record.text or "" for record in second.chat().messages],
        )
