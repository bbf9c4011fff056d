"""Three workers on one Redis with ``order_updates``: every update of a conversation, in order."""

from __future__ import annotations

import asyncio

from aiogram import Dispatcher
from aiogram.types import Message

import aiostep
from aiostep.storage import RedisStateStorage
from aiostep.testing import BotSimulator


# --8<-- [start:order]
def worker(redis_url: str, seen: list[str]) -> Dispatcher:
    storage = RedisStateStorage(redis_url, order_updates=True)  # every worker the same
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    @dp.message()  # an ordinary handler: no step waits for these messages
    async def note(message: Message) -> None:
        await asyncio.sleep(0.01 * (5 - len(seen)))  # earlier ones take longer
        seen.append(message.text or "")

    return dp


# --8<-- [end:order]


async def main(redis_url: str) -> list[str]:
    seen: list[str] = []
    sims = [BotSimulator(worker(redis_url, seen)) for _ in range(3)]
    for sim in sims:
        await sim.start()
    try:
        talks = [sim.chat(sim.user(1001)) for sim in sims]
        # five messages at once, dealt round-robin to the three workers
        await asyncio.gather(*(talks[i % 3].send(f"m{i}") for i in range(5)))
    finally:
        for sim in sims:
            await sim.aclose()
    return seen
