"""Which updates answer a waiter or step (``Listen`` via ``aiostep.setup``): update kinds,
filters, and commands. Whatever a waiter/step does not take goes to the normal handlers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

import aiostep
from aiostep.testing import BotSimulator


def keyboard() -> Any:
    builder = InlineKeyboardBuilder()
    builder.button(text="Yes", callback_data="yes")
    builder.button(text="No", callback_data="no")
    return builder.as_markup()


def build(log: list[str], **wait_options: Any) -> Dispatcher:
    """/ask waits with ``wait_options``; every normal handler logs what reached it."""
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Question?", reply_markup=keyboard())
        answer = await aiostep.wait_for(message.from_user.id, **wait_options)
        if isinstance(answer, CallbackQuery):
            log.append(f"waiter got button {answer.data}")
            await answer.answer()
        else:
            log.append(f"waiter got {answer.text or answer.content_type.value}")

    for name in ("help", "cancel", "start"):

        @dp.message(Command(name))
        async def command(message: Message) -> None:
            log.append(f"command {message.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text or message.content_type.value}")

    @dp.edited_message()
    async def edited(message: Message) -> None:
        log.append(f"edited {message.text}")

    @dp.callback_query()
    async def button(query: CallbackQuery) -> None:
        log.append(f"button {query.data}")
        await query.answer()

    return dp


# --- update kinds -------------------------------------------------------------------------------


async def test_a_message_answers_a_wait() -> None:
    log: list[str] = []
    async with BotSimulator(build(log)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("hello")
        assert log == ["waiter got hello"]


async def test_an_edit_does_not_answer_a_wait_for_messages() -> None:
    log: list[str] = []
    async with BotSimulator(build(log)) as sim:
        talk = sim.chat()
        typo = await talk.send("helo")
        await talk.send("/ask")
        await talk.edit(typo, "hello")
        assert log == ["normal helo", "edited hello"]
        await talk.send("answer")
        assert log[-1] == "waiter got answer"


async def test_an_edit_answers_a_wait_for_edited_messages() -> None:
    log: list[str] = []
    async with BotSimulator(build(log, updates=("edited_message",))) as sim:
        talk = sim.chat()
        typo = await talk.send("helo")
        await talk.send("/ask")
        await talk.send("a new message")
        assert log == ["normal helo", "normal a new message"]
        await talk.edit(typo, "hello")
        assert log[-1] == "waiter got hello"


async def test_a_wait_for_messages_and_edits_takes_either() -> None:
    log: list[str] = []
    async with BotSimulator(build(log, updates=("message", "edited_message"))) as sim:
        talk = sim.chat()
        typo = await talk.send("helo")
        await talk.send("/ask")
        await talk.edit(typo, "hello")
        assert log == ["normal helo", "waiter got hello"]
        await talk.send("/ask")
        await talk.send("plain")
        assert log[-1] == "waiter got plain"


async def test_a_button_does_not_answer_a_wait_for_messages() -> None:
    log: list[str] = []
    async with BotSimulator(build(log)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.click("Yes")
        assert log == ["button yes"]
        await talk.send("typed")
        assert log == ["button yes", "waiter got typed"]


async def test_a_button_answers_a_wait_for_callback_queries() -> None:
    log: list[str] = []
    async with BotSimulator(build(log, updates=("callback_query",))) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("typed")
        assert log == ["normal typed"]
        await talk.click("No")
        assert log == ["normal typed", "waiter got button no"]
        assert sim.session.unanswered_callbacks() == []
        await talk.click("Yes")
        assert log[-1] == "button yes"


async def test_a_button_reaches_a_step_registered_for_callback_queries() -> None:
    got: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def chosen(query: CallbackQuery, question: str) -> None:
        got.append(f"{question}: {query.data}")
        await query.answer("noted")

    @dp.message(Command("vote"))
    async def vote(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Pizza?", reply_markup=keyboard())
        await aiostep.register_next_step(
            message.from_user.id, chosen, kwargs={"question": "pizza"}, updates=("callback_query",)
        )

    @dp.message()
    async def normal(message: Message) -> None:
        got.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/vote")
        await talk.send("text is not a vote")
        await talk.click("Yes")
        assert got == ["normal text is not a vote", "pizza: yes"]
        assert talk.toasts == ["noted"]


async def test_setup_limited_to_messages_leaves_buttons_to_the_normal_handlers() -> None:
    log: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp, updates=("message",))

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Question?", reply_markup=keyboard())
        answer = await aiostep.wait_for(
            message.from_user.id, updates=("message", "callback_query"), timeout=1
        )
        log.append(f"waiter got {answer.text}")

    @dp.callback_query()
    async def button(query: CallbackQuery) -> None:
        log.append(f"button {query.data}")
        await query.answer()

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.click("Yes")
        assert log == ["button yes"]
        await talk.send("typed")
        assert log == ["button yes", "waiter got typed"]


# --- filters ------------------------------------------------------------------------------------


def digits_magic() -> Any:
    return F.text.regexp(r"^\d+$")


def digits_sync() -> Any:
    return lambda message: message.text is not None and message.text.isdigit()


def digits_async() -> Any:
    async def check(message: Message) -> bool:
        await asyncio.sleep(0)
        return message.text is not None and message.text.isdigit()

    return check


FILTERS: dict[str, Callable[[], Any]] = {
    "magic filter": digits_magic,
    "sync callable": digits_sync,
    "async callable": digits_async,
}


@pytest.mark.parametrize("make_filter", FILTERS.values(), ids=FILTERS.keys())
async def test_updates_failing_a_waits_filter_go_to_normal_handlers_and_the_wait_goes_on(
    make_filter: Callable[[], Any],
) -> None:
    log: list[str] = []
    async with BotSimulator(build(log, filter=make_filter())) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("forty-two")
        await talk.send_sticker()
        assert log == ["normal forty-two", "normal sticker"]
        await talk.send("42")
        assert log[-1] == "waiter got 42"


@pytest.mark.parametrize("make_filter", FILTERS.values(), ids=FILTERS.keys())
async def test_updates_failing_a_steps_filter_go_to_normal_handlers_and_the_step_waits(
    make_filter: Callable[[], Any],
) -> None:
    got: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def age(message: Message) -> None:
        got.append(f"age {message.text}")

    @dp.message(Command("age"))
    async def ask_age(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, age, filter=make_filter())

    @dp.message()
    async def normal(message: Message) -> None:
        got.append(f"normal {message.text or message.content_type.value}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/age")
        await talk.send("old")
        await talk.send_photo()
        await talk.send("33")
        await talk.send("34")
        assert got == ["normal old", "normal photo", "age 33", "normal 34"]


async def test_a_sync_filter_is_called_on_the_event_loop_thread() -> None:
    threads: list[int] = []

    def check(message: Message) -> bool:
        threads.append(threading.get_ident())
        return True

    log: list[str] = []
    async with BotSimulator(build(log, filter=check)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("x")
        assert log == ["waiter got x"]
        assert threads == [threading.get_ident()]


async def test_a_filter_can_take_aiogram_context_by_name() -> None:
    seen: list[Any] = []

    async def check(message: Message, event_from_user: Any, bot: Any) -> bool:
        seen.append((event_from_user.id, bot))
        return True

    log: list[str] = []
    async with BotSimulator(build(log, filter=check)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("x")
        assert seen == [(talk.user.id, sim.bot)]
        assert log == ["waiter got x"]


# --- commands -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["/help", "/cancel", "/start"])
async def test_commands_go_to_their_handlers_and_the_wait_goes_on(command: str) -> None:
    log: list[str] = []
    async with BotSimulator(build(log)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send(command)
        assert log == [f"command {command}"]
        await talk.send("the answer")
        assert log == [f"command {command}", "waiter got the answer"]


@pytest.mark.parametrize("command", ["/help", "/cancel", "/start"])
async def test_commands_go_to_their_handlers_and_the_step_waits(command: str) -> None:
    got: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def name(message: Message) -> None:
        got.append(f"step {message.text}")

    @dp.message(Command("name"))
    async def ask_name(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, name)

    @dp.message(Command("help", "cancel", "start"))
    async def commands(message: Message) -> None:
        got.append(f"command {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/name")
        await talk.send(command)
        await talk.send("Alice")
        assert got == [f"command {command}", "step Alice"]


async def test_allow_commands_lets_a_command_answer_a_wait() -> None:
    log: list[str] = []
    async with BotSimulator(build(log, allow_commands=True)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("/help")
        assert log == ["waiter got /help"]


async def test_allow_commands_lets_a_command_reach_a_step() -> None:
    got: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def menu_choice(message: Message) -> None:
        got.append(f"step {message.text}")

    @dp.message(Command("menu"))
    async def menu(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, menu_choice, allow_commands=True)

    @dp.message(Command("pizza"))
    async def pizza(message: Message) -> None:
        got.append("pizza handler")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/menu")
        await talk.send("/pizza")
        assert got == ["step /pizza"]


async def test_a_slash_alone_is_not_a_command() -> None:
    log: list[str] = []
    async with BotSimulator(build(log)) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("/")
        assert log == ["waiter got /"]


async def test_another_members_button_press_does_not_answer_a_users_wait() -> None:
    log: list[str] = []
    async with BotSimulator(build(log, updates=("callback_query",))) as sim:
        group = sim.group()
        alice = sim.chat(sim.user(first_name="Alice"), group)
        bob = sim.chat(sim.user(first_name="Bob"), group)
        await alice.send("/ask")
        await bob.click("Yes")
        assert log == ["button yes"]
        await alice.click("No")
        assert log == ["button yes", "waiter got button no"]
