"""Wizard.setup on a Dispatcher that already has aiostep's Listen."""

from __future__ import annotations

import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from forged_press import press

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


def test_every_filter_of_a_wizards_router_is_awaited_not_run_in_a_thread() -> None:
    """aiogram runs a sync filter (a magic filter such as ``F.data.startswith(...)``) through
    ``asyncio.to_thread``: every button press of the bot that reached the wizard's router
    would pay a thread hop."""
    dp = Dispatcher()
    router = Signup.setup(dp, entry=Command("signup"))
    handlers = [h for observer in router.observers.values() for h in observer.handlers]
    assert any(h for h in router.callback_query.handlers)  # the stale-button handler
    for handler in handlers:
        assert handler.awaitable, handler.callback
        for flt in handler.filters or ():
            assert flt.awaitable, flt.callback


async def test_a_bots_own_buttons_still_reach_its_handlers_beside_a_wizard() -> None:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("signup"))
    menu = Router()  # included after the wizard's router: presses pass its filter first

    @menu.message(Command("menu"))
    async def show(message: Message) -> None:
        button = InlineKeyboardButton(text="Settings", callback_data="menu:settings")
        await message.answer("Menu", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]))

    @menu.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer(f"menu: {query.data}")

    dp.include_router(menu)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/menu")
        shown = talk.last_message
        assert shown is not None
        await talk.send("/signup")
        await talk.click("Settings", message=shown)
        assert talk.toasts == ["menu: menu:settings"]
        await press(talk, shown, f"aw:{talk.user.id}:f:n:0")  # a wizard button no step takes
        assert talk.toasts[-1] == Signup.texts.stale_button


async def test_an_entry_command_with_its_own_prefix_starts_the_wizard() -> None:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("signup", prefix="!"))
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/signup")
        assert talk.last is None  # not this entry's prefix
        await talk.send("!signup")
        assert talk.last == "What is your name?"
        await talk.send("/cancel")  # the navigation commands keep theirs
        assert talk.last == Signup.texts.cancelled


async def test_an_entry_command_after_spaces_still_starts_the_wizard() -> None:
    """aiogram's ``Command`` reads the first word of the text, and so does the cheap check
    the wizard puts before it."""
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("signup"))
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("  /signup")
        assert talk.last == "What is your name?"
