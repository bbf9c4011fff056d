"""``wait_for`` in a task that a handler spawned must not take or give its conversation's turn.

Bug: ``asyncio.create_task`` copies the context, so a background task started by a handler sees
that handler's ``current_update`` (aiostep/context.py). ``wait_for`` (aiostep/waiters.py) takes
it as the ``owner`` whose turn it gives up and takes back (``ctx.holds`` is still ``True`` even
after ``Listen`` released the turn when the handler returned): it releases a turn it does not
hold, and after the answer it re-acquires the conversation's turn, or is handed it, in a task
that never releases it. The user's next message then waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator

ADMIN_ID = 4242


def build(background: list[asyncio.Task[None]]) -> tuple[Dispatcher, aiostep.Listen]:
    dp = Dispatcher()
    listen = aiostep.setup(dp)

    async def ask_admin(message: Message) -> None:
        answer = await aiostep.wait_for(ADMIN_ID, timeout=1)
        await message.answer(f"the admin said {answer.text}")

    async def follow_up(message: Message) -> None:
        assert message.from_user is not None
        answer = await aiostep.wait_for(message.from_user.id, timeout=1)
        await message.answer(f"follow-up got {answer.text}")

    @dp.message(Command("approve"))
    async def approve(message: Message) -> None:
        background.append(asyncio.create_task(ask_admin(message)))
        await message.answer("asked the admin")

    @dp.message(Command("later"))
    async def later(message: Message) -> None:
        background.append(asyncio.create_task(follow_up(message)))
        await message.answer("tell me more")

    @dp.message()
    async def normal(message: Message) -> None:
        await message.answer(f"normal: {message.text}")

    return dp, listen


async def test_a_background_wait_for_another_user_leaves_the_users_chat_free() -> None:
    background: list[asyncio.Task[None]] = []
    dp, listen = build(background)
    async with BotSimulator(dp, settle_timeout=1) as sim:
        alice = sim.chat(sim.user(first_name="Alice"))
        admin = sim.chat(sim.user(id=ADMIN_ID, first_name="Admin"))
        await alice.send("/approve")
        await asyncio.sleep(0)  # the background task starts waiting
        await admin.send("ok")
        await asyncio.wait_for(background[0], 1)
        alice.assert_last("the admin said ok")
        assert len(listen.gates) == 0
        await alice.send("hello")
        alice.assert_last("normal: hello")


async def test_a_background_wait_for_the_same_user_leaves_the_chat_free() -> None:
    background: list[asyncio.Task[None]] = []
    dp, listen = build(background)
    async with BotSimulator(dp, settle_timeout=1) as sim:
        alice = sim.chat(sim.user(first_name="Alice"))
        await alice.send("/later")
        await asyncio.sleep(0)  # the background task starts waiting
        await alice.send("more")
        await asyncio.wait_for(background[0], 1)
        alice.assert_last("follow-up got more")
        assert len(listen.gates) == 0
        await alice.send("hello")
        alice.assert_last("normal: hello")


async def test_a_background_wait_does_not_let_the_next_update_overtake_the_handler() -> None:
    log: list[str] = []
    background: list[asyncio.Task[None]] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def ask_admin() -> None:
        with contextlib.suppress(TimeoutError):
            await aiostep.wait_for(ADMIN_ID, timeout=0.5)

    @dp.message(Command("work"))
    async def work(message: Message) -> None:
        log.append("work starts")
        background.append(asyncio.create_task(ask_admin()))
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.sleep(0.02)
        log.append("work ends")

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp, settle_timeout=1) as sim:
        talk = sim.chat()
        await asyncio.gather(talk.send("/work"), talk.send("next"))
        await asyncio.gather(*background)
        assert log == ["work starts", "work ends", "normal next"]
