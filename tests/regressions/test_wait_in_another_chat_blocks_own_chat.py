"""A handler parked in ``wait_for(..., chat_id=<another chat>)`` must not freeze its own chat.

Bug: ``wait_for`` gives up the ordering gate of the update being handled only when it waits on
that same conversation (aiostep/waiters.py: ``owner`` is ``None`` otherwise). A handler in a DM
that waits for the user's answer in a group keeps the DM's gate while parked, so every later DM
message of that user (even ``/cancel``) queues behind it until the group answer comes, forever
without a timeout.
"""

from __future__ import annotations

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator

GROUP_ID = -1004242


def build() -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("remote"))
    async def remote(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Answer in the group, please")
        answer = await aiostep.wait_for(message.from_user.id, chat_id=GROUP_ID)
        await message.answer(f"the group said {answer.text}")

    @dp.message(Command("approve"))
    async def approve(message: Message) -> None:
        # wait for another user (an admin, in their private chat)
        await message.answer("Asking the admin")
        answer = await aiostep.wait_for(4242)
        await message.answer(f"the admin said {answer.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        await message.answer(f"normal: {message.text}")

    return dp


async def test_dm_messages_are_handled_while_a_handler_waits_for_a_group_answer() -> None:
    async with BotSimulator(build(), settle_timeout=1) as sim:
        alice = sim.user(first_name="Alice")
        in_dm, in_group = sim.chat(alice), sim.chat(alice, sim.group(id=GROUP_ID))
        await in_dm.send("/remote")
        await in_dm.send("still here")
        in_dm.assert_last("normal: still here")
        await in_group.send("yes")
        in_dm.assert_last("the group said yes")


async def test_the_user_is_not_blocked_while_a_handler_waits_for_another_user() -> None:
    async with BotSimulator(build(), settle_timeout=1) as sim:
        alice = sim.user(first_name="Alice")
        admin = sim.user(id=4242, first_name="Admin")
        in_dm = sim.chat(alice)
        await in_dm.send("/approve")
        await in_dm.send("any news?")
        in_dm.assert_last("normal: any news?")
        await sim.chat(admin).send("approved")
        in_dm.assert_last("the admin said approved")
