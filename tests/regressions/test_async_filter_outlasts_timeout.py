"""An update whose async filter is still running when the waiter times out goes to the normal
handlers, without an error.

Bug: ``Listen._try_local`` (aiostep/middleware.py) reads the pending waiter, awaits its filter,
then ``await store.pop_item(key)`` unconditionally. If the wait timed out while the filter was
suspended, the parked handler has already removed its waiter, so ``pop_item`` raises
``KeyError`` (or, had it not been removed yet, ``set_result`` would hit a finished future): the
update fails instead of reaching the normal handlers.
"""

from __future__ import annotations

import asyncio

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


async def test_a_late_filter_result_does_not_break_the_update() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def slow_check(message: Message) -> bool:
        await asyncio.sleep(0.2)  # e.g. a database lookup, slower than the wait's timeout
        return True

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=0.05, filter=slow_check)
        except TimeoutError:
            await message.answer("too late")
        else:
            await message.answer(f"got {answer.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        await message.answer(f"normal: {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("hello")
        texts = [record.text for record in talk.messages]
        # "hello" holds the conversation's turn while its filter runs, so the timed-out
        # handler answers after it: what matters is that both answers come, and no error
        assert sorted(texts) == ["normal: hello", "too late"]


async def test_a_late_filter_result_does_not_break_the_update_for_a_step() -> None:
    log: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def slow_check(message: Message) -> bool:
        await asyncio.sleep(0.2)
        return True

    async def answered(message: Message) -> None:
        log.append(f"step {message.text}")

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(
            message.from_user.id, answered, timeout=0.05, filter=slow_check
        )

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("hello")
        assert log == ["normal hello"]
