"""Wizard.setup on a Dispatcher that already has aiostep's Listen."""

from __future__ import annotations

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command

import aiostep
from aiostep.storage import MemoryStateStorage
from aiostep.testing import BotSimulator
from examples.signup import Signup


async def test_a_listen_installed_the_old_way_on_messages_also_gets_the_buttons() -> None:
    dp = Dispatcher()
    dp.message.outer_middleware(aiostep.Listen(storage=MemoryStateStorage()))
    Signup.setup(dp, entry=Command("signup"))
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        for text in ("/signup", "Bob", "30"):
            await talk.send(text)
        await talk.click("Yes")
        assert talk.last == "Welcome, Bob!"


def test_a_listen_without_storage_is_refused_with_a_clear_message() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)
    with pytest.raises(ValueError, match="has no storage"):
        Signup.setup(dp, entry=Command("signup"))
