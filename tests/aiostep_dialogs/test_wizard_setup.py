"""Wizard.setup on a Dispatcher that already has aiostep's Listen."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command, Filter
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


class _Counted:
    """Counts the updates aiogram hands an observer of a wizard's router (``trigger`` is
    what aiogram's propagation calls once it reaches the observer's handlers)."""

    def __init__(self, observer: Any) -> None:
        self.calls = 0
        self._trigger = observer.trigger
        observer.trigger = self

    async def __call__(self, event: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self._trigger(event, **kwargs)


def _echoing(dp: Dispatcher) -> None:
    """The bot's own handlers, after the wizard's router: what nobody else took."""
    own = Router(name="own")

    @own.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    @own.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer(f"own: {query.data}")

    dp.include_router(own)


async def test_a_wizards_router_turns_away_what_none_of_its_handlers_could_take() -> None:
    """Every update of a bot reaches every wizard's router, and aiogram's propagation into a
    router costs ~12 µs: an ordinary message or another button's press is turned away
    before it, while commands and wizard buttons still reach the handlers."""
    dp = Dispatcher()
    router = Signup.setup(dp, entry=Command("signup"))
    _echoing(dp)
    messages, presses = _Counted(router.message), _Counted(router.callback_query)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("hello")
        assert talk.last == "echo: hello"
        shown = talk.last_message
        assert shown is not None
        await press(talk, shown, "menu:settings")
        assert talk.toasts == ["own: menu:settings"]
        assert (messages.calls, presses.calls) == (0, 0)
        await press(talk, shown, f"aw:{talk.user.id}:f:n:0")  # a wizard button, no wizard
        assert talk.toasts[-1] == Signup.texts.stale_button
        assert presses.calls == 1
        await talk.send("/help")  # a command: the navigation handler's filter decides
        assert talk.last == "echo: /help"
        await talk.send("/signup")
        assert talk.last == "What is your name?"
        assert messages.calls == 2


async def test_an_entry_that_is_not_a_command_reaches_the_wizards_router() -> None:
    dp = Dispatcher()
    router = Signup.setup(dp, entry=_TextIs("Sign me up"))
    _echoing(dp)
    messages = _Counted(router.message)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("hello")
        assert talk.last == "echo: hello"
        await talk.send("Sign me up")
        assert talk.last == "What is your name?"
        assert messages.calls == 2


class _TextIs(Filter):
    def __init__(self, text: str) -> None:
        self.text = text

    async def __call__(self, message: Message) -> bool:
        return message.text == self.text


async def test_a_handler_added_to_a_wizards_router_still_gets_ordinary_messages() -> None:
    dp = Dispatcher()
    router = Signup.setup(dp, entry=Command("signup"))

    @router.message(_TextIs("hi"))
    async def greet(message: Message) -> None:
        await message.answer("hello there")

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer(f"wizard router: {query.data}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("hi")
        assert talk.last == "hello there"
        shown = talk.last_message
        assert shown is not None
        await press(talk, shown, "menu:settings")
        assert talk.toasts == ["wizard router: menu:settings"]


async def test_an_outer_middleware_on_a_wizards_router_still_sees_every_message() -> None:
    dp = Dispatcher()
    router = Signup.setup(dp, entry=Command("signup"))
    _echoing(dp)
    seen: list[str | None] = []

    @router.message.outer_middleware()
    async def log(handler: Any, event: Message, data: dict[str, Any]) -> Any:
        seen.append(event.text)
        return await handler(event, data)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("hello")
        await talk.send("/signup")
        assert seen == ["hello", "/signup"]
        assert talk.last == "What is your name?"


async def test_a_filter_on_a_wizards_router_still_applies_to_its_commands() -> None:
    dp = Dispatcher()
    router = Signup.setup(dp, entry=Command("signup"))
    router.message.filter(_PrivateChat())
    _echoing(dp)
    async with BotSimulator(dp) as sim:
        in_group = sim.chat(chat=sim.group())
        await in_group.send("/signup")
        assert in_group.last == "echo: /signup"
        talk = sim.chat()
        await talk.send("/signup")
        assert talk.last == "What is your name?"


class _PrivateChat(Filter):
    async def __call__(self, message: Message) -> bool:
        return message.chat.type == "private"


async def test_a_router_included_in_a_wizards_router_still_gets_ordinary_messages() -> None:
    dp = Dispatcher()
    router = Signup.setup(dp, entry=Command("signup"))
    inner = Router(name="inner")

    @inner.message()
    async def echo(message: Message) -> None:
        await message.answer(f"inner: {message.text}")

    router.include_router(inner)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("hello")
        assert talk.last == "inner: hello"
