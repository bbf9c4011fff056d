"""Two worker processes on one Redis: a conversation moves freely between them."""

from __future__ import annotations

from aiogram import Dispatcher

from aiostep.storage import RedisStateStorage
from aiostep.testing import BotSimulator
from examples.signup import build


# --8<-- [start:workers]
async def main(redis_url: str) -> list[str]:
    def worker() -> Dispatcher:  # what each process runs, behind one webhook
        return build(RedisStateStorage(redis_url, prefix="signup:"))

    async with BotSimulator(worker) as first, BotSimulator(worker) as second:
        await first.chat().send("/signup")  # user 1001's updates land on either worker
        await second.chat().send("Alice")
        await first.chat().send("30")
        await second.chat().send("yes")  # (each simulator shows only its own messages)
        replies = [record.text or "" for record in first.chat().messages]
        replies += [record.text or "" for record in second.chat().messages]
    return replies


# --8<-- [end:workers]
