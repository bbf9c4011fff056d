"""Next steps persisted by name in a File or Redis storage: they survive a restart of the bot.

Every test runs on both backends (the ``persistent`` fixture). A restart is
``BotSimulator.restart()``: the factory builds a new Dispatcher over a *new* storage object on the
same journal file / Redis database, as a new process would.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, ErrorEvent, Message, User
from aiogram.utils.keyboard import InlineKeyboardBuilder

import aiostep
from aiostep.storage import StateContext
from aiostep.testing import BotSimulator

if TYPE_CHECKING:
    from conftest import Backend

Names = Callable[[str], str]
Handlers = Callable[[Dispatcher], None]


def factory(backend: Backend, handlers: Handlers, **dp_data: Any) -> Callable[[], Dispatcher]:
    """Builds the bot of one process: a Dispatcher and a new storage object over ``backend``."""

    def build() -> Dispatcher:
        storage = backend.new()
        dp = Dispatcher(**dp_data)
        aiostep.setup(dp, storage=storage)
        dp.shutdown.register(storage.close)
        handlers(dp)
        return dp

    return build


async def stored(backend: Backend, user_id: int, chat_id: int | None = None) -> StateContext | None:
    """The record of a conversation, read through a fresh storage object (Redis) or the bot's
    own one (File: a journal has one writer at a time, a second object is refused)."""
    chat = user_id if chat_id is None else chat_id
    storage = backend.opened[-1] if backend.kind == "file" and backend.opened else backend.new()
    return await storage.read(f"{chat}:{user_id}@42")  # @ the simulator's bot, 42:TEST


def normal_handlers(dp: Dispatcher, log: list[str]) -> None:
    @dp.message(Command("help"))
    async def help_command(message: Message) -> None:
        log.append(f"help {message.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")


# --- surviving a restart -------------------------------------------------------------------------


async def test_a_persisted_step_survives_a_restart_with_its_kwargs(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("signup.age"))
    async def ask_age(message: Message, name: str, tags: list[str]) -> None:
        log.append(f"{name} {tags} is {message.text}")
        await message.answer(f"Thanks {name}")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await message.answer("How old are you?")
            await aiostep.register_next_step(
                message.from_user.id, ask_age, kwargs={"name": "Alice", "tags": ["a", "b"]}
            )

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        record = await stored(persistent, talk.user.id)
        assert record is not None and record.callback == aiostep.registry.find(ask_age).name  # type: ignore[union-attr]
        await sim.restart()
        await talk.send("30")
        assert log == ["Alice ['a', 'b'] is 30"]
        talk.assert_last("Thanks Alice")
        await talk.send("again")
        assert log[-1] == "normal again"
        assert await stored(persistent, talk.user.id) is None


async def test_a_chain_of_persisted_steps_survives_a_restart_at_every_step(
    persistent: Backend, step_name: Names
) -> None:
    @aiostep.persisted_step(step_name("chain.age"))
    async def ask_age(message: Message, name: str) -> None:
        assert message.from_user is not None
        await message.answer("Your city?")
        await aiostep.register_next_step(
            message.from_user.id, ask_city, kwargs={"name": name, "age": int(message.text or 0)}
        )

    @aiostep.persisted_step(step_name("chain.city"))
    async def ask_city(message: Message, name: str, age: int) -> None:
        await message.answer(f"{name}, {age}, from {message.text}")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await message.answer("Your name?")
            await aiostep.register_next_step(message.from_user.id, ask_name)

    @aiostep.persisted_step(step_name("chain.name"))
    async def ask_name(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Your age?")
        await aiostep.register_next_step(
            message.from_user.id, ask_age, kwargs={"name": message.text}
        )

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await sim.restart()
        await talk.send("Bob")
        talk.assert_last("Your age?")
        await sim.restart()
        await talk.send("41")
        talk.assert_last("Your city?")
        await sim.restart()
        await talk.send("Oslo")
        talk.assert_last("Bob, 41, from Oslo")


async def test_a_persisted_step_in_a_group_survives_a_restart_for_that_member_only(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("group.answer"))
    async def answer(message: Message) -> None:
        assert message.from_user is not None
        log.append(f"step {message.from_user.first_name}: {message.text}")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("ask"))
        async def ask(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, answer)

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        group = sim.group()
        alice = sim.chat(sim.user(first_name="Alice"), group)
        bob = sim.chat(sim.user(first_name="Bob"), group)
        await alice.send("/ask")
        await sim.restart()
        await bob.send("bob here")
        await sim.chat(alice.user).send("alice in private")
        await alice.send("alice here")
        assert log == ["normal bob here", "normal alice in private", "step Alice: alice here"]


# --- what cannot be persisted --------------------------------------------------------------------


async def test_non_json_kwargs_raise_a_type_error_naming_the_key_and_store_nothing(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("json.when"))
    async def when(message: Message, when: Any) -> None:
        log.append("step ran")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            try:
                await aiostep.register_next_step(
                    message.from_user.id, when, kwargs={"ok": 1, "when": datetime(2024, 1, 1)}
                )
            except TypeError as exc:
                await message.answer(f"refused: {exc}")

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        assert talk.last is not None and talk.last.startswith("refused: ")
        assert "'when'" in talk.last
        assert await stored(persistent, talk.user.id) is None
        await talk.send("next")
        assert log == ["normal next"]


async def test_an_unregistered_function_cannot_be_persisted(persistent: Backend) -> None:
    log: list[str] = []
    caught: list[BaseException] = []

    async def not_registered(message: Message) -> None:
        log.append("step ran")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            try:
                await aiostep.register_next_step(message.from_user.id, not_registered)
            except aiostep.StepNotRegisteredError as exc:
                caught.append(exc)

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        assert len(caught) == 1 and isinstance(caught[0], TypeError)
        assert "not_registered" in str(caught[0]) and "@aiostep.persisted_step" in str(caught[0])
        assert await stored(persistent, talk.user.id) is None
        await talk.send("next")
        assert log == ["normal next"]


async def test_a_stored_step_that_no_longer_resolves_is_logged_cleared_and_skipped(
    persistent: Backend, step_name: Names, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    name = step_name("renamed.old")

    @aiostep.persisted_step(name)
    async def old(message: Message) -> None:
        log.append("old step ran")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, old)

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        aiostep.registry.unregister(name)  # the new version of the bot no longer has it
        await sim.restart()
        with caplog.at_level(logging.ERROR, logger="aiostep"):
            await talk.send("first")
            await talk.send("second")
        assert log == ["normal first", "normal second"]
        errors = [r for r in caplog.records if r.name == "aiostep" and r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert name in errors[0].getMessage()
        record = await stored(persistent, talk.user.id)
        assert record is None or record.callback is None


# --- which updates a persisted step takes --------------------------------------------------------


async def test_commands_pass_a_persisted_step_unless_it_allows_them(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("commands.name"))
    async def name_step(message: Message) -> None:
        log.append(f"name {message.text}")

    @aiostep.persisted_step(step_name("commands.menu"), allow_commands=True)
    async def menu_step(message: Message) -> None:
        log.append(f"menu {message.text}")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("name"))
        async def ask_name(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, name_step)

        @dp.message(Command("menu"))
        async def menu(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, menu_step)

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/name")
        await sim.restart()
        await talk.send("/help")
        await talk.send("Alice")
        assert log == ["help /help", "name Alice"]
        await talk.send("/menu")
        await sim.restart()
        await talk.send("/help")
        assert log[-1] == "menu /help"


def digits_magic() -> Any:
    return F.text.regexp(r"^\d+$")


def digits_sync() -> Any:
    return lambda message: message.text is not None and message.text.isdigit()


def digits_async() -> Any:
    async def check(message: Message) -> bool:
        await asyncio.sleep(0)
        return message.text is not None and message.text.isdigit()

    return check


@pytest.mark.parametrize(
    "make_filter", [digits_magic, digits_sync, digits_async], ids=["magic", "sync", "async"]
)
async def test_updates_failing_a_persisted_steps_filter_go_to_normal_handlers(
    persistent: Backend, step_name: Names, make_filter: Callable[[], Any]
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("filtered.age"), filter=make_filter())
    async def age(message: Message) -> None:
        log.append(f"age {message.text}")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("age"))
        async def ask_age(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, age)

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/age")
        await sim.restart()
        await talk.send("old")
        await talk.send("33")
        await talk.send("34")
        assert log == ["normal old", "age 33", "normal 34"]


async def test_a_persisted_step_raising_skip_handler_stays_and_lets_the_update_through(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("declining.age"))
    async def age(message: Message, asked: str) -> None:
        if not (message.text or "").isdigit():
            raise SkipHandler()  # not for this step: as a handler declines an update
        log.append(f"age {message.text} ({asked})")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("age"))
        async def ask_age(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(
                message.from_user.id, age, kwargs={"asked": "once"}, state="AGE", data={"n": 1}
            )

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/age")
        before = await stored(persistent, talk.user.id)
        await talk.send("old")
        after = await stored(persistent, talk.user.id)
        assert before is not None and after is not None
        for field in ("callback", "kwargs", "token", "accepts", "current_state", "data"):
            assert getattr(after, field) == getattr(before, field), field
        assert after.claim is None
        await talk.send("33")
        assert log == ["normal old", "age 33 (once)"]
        assert await stored(persistent, talk.user.id) is not None  # state and data stay
        await talk.send("34")
        assert log[-1] == "normal 34"


async def test_a_persisted_step_for_buttons_takes_the_press_after_a_restart(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("buttons.vote"), updates=("callback_query",))
    async def vote(query: CallbackQuery, poll: str) -> None:
        log.append(f"{poll}: {query.data}")
        await query.answer("Thanks")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("vote"))
        async def ask(message: Message) -> None:
            assert message.from_user is not None
            keyboard = InlineKeyboardBuilder()
            keyboard.button(text="Yes", callback_data="yes")
            await message.answer("Pizza?", reply_markup=keyboard.as_markup())
            await aiostep.register_next_step(message.from_user.id, vote, kwargs={"poll": "pizza"})

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/vote")
        await sim.restart()
        await talk.send("typed")
        await talk.click("Yes")
        assert log == ["normal typed", "pizza: yes"]
        assert talk.toasts == ["Thanks"]


# --- what a persisted step is called with, and its errors ----------------------------------------


async def test_a_persisted_step_gets_aiogram_context_by_parameter_name(
    persistent: Backend, step_name: Names
) -> None:
    seen: dict[str, Any] = {}

    @aiostep.persisted_step(step_name("context.persisted"))
    async def got(
        message: Message,
        bot: Bot,
        state: FSMContext,
        event_from_user: User,
        greeting: str,
        name: str,
    ) -> None:
        seen.update(bot=bot, state=state, user=event_from_user.id, greeting=greeting, name=name)

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, got, kwargs={"name": "Ann"})

    async with BotSimulator(factory(persistent, handlers, greeting="hi")) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await sim.restart()
        await talk.send("x")
        assert seen["bot"] is sim.bot and isinstance(seen["state"], FSMContext)
        assert (seen["user"], seen["greeting"], seen["name"]) == (talk.user.id, "hi", "Ann")


async def test_an_exception_in_a_persisted_step_reaches_the_errors_handlers(
    persistent: Backend, step_name: Names
) -> None:
    errors: list[tuple[str, str | None]] = []

    @aiostep.persisted_step(step_name("errors.persisted"))
    async def broken(message: Message) -> None:
        raise LookupError("no such city")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, broken)

        @dp.errors()
        async def on_error(event: ErrorEvent) -> None:
            assert event.update.message is not None
            errors.append((repr(event.exception), event.update.message.text))

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await sim.restart()
        await talk.send("Atlantis")
        assert errors == [("LookupError('no such city')", "Atlantis")]


# --- timeouts ------------------------------------------------------------------------------------


def quiz(persistent: Backend, step_name: Names, log: list[str]) -> Callable[[], Dispatcher]:
    """/quiz asks "2 + 2?" with a 60 s persisted step; the answer and the timeout are logged
    (and the timeout tells the user)."""

    @aiostep.persisted_step(step_name("timed.answer"))
    async def answer(message: Message, topic: str) -> None:
        log.append(f"{topic}: {message.text}")

    @aiostep.persisted_step(step_name("timed.too_slow"))
    async def too_slow(bot: Bot, chat_id: int, topic: str) -> None:
        log.append(f"timeout {topic}")
        await bot.send_message(chat_id, f"Too slow for {topic}")

    return factory(persistent, timed_handlers(log, answer, too_slow))


def timed_handlers(log: list[str], step: Any, on_timeout: Any) -> Handlers:
    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("quiz"))
        async def quiz(message: Message) -> None:
            assert message.from_user is not None
            await message.answer("2 + 2?")
            await aiostep.register_next_step(
                message.from_user.id,
                step,
                kwargs={"topic": "maths"},
                timeout=60,
                on_timeout=on_timeout,
            )

        normal_handlers(dp, log)

    return handlers


async def test_a_persisted_step_expires_and_calls_on_timeout_without_another_message(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []
    async with BotSimulator(quiz(persistent, step_name, log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await clock.advance(59)
        assert log == []
        await clock.advance(1)
        assert log == ["timeout maths"]
        talk.assert_last("Too slow for maths")
        await talk.send("4")
        assert log == ["timeout maths", "normal 4"]
        assert await stored(persistent, talk.user.id) is None


async def test_a_persisted_steps_timeout_fires_after_a_restart_with_no_update(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []
    async with BotSimulator(quiz(persistent, step_name, log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await sim.restart()  # the process's timer dies with it; the stored deadline does not
        await clock.advance(59)
        assert log == []
        await clock.advance(1)
        assert log == ["timeout maths"]
        talk.assert_last("Too slow for maths")
        await talk.send("4")
        assert log == ["timeout maths", "normal 4"]


async def test_a_deadline_that_passed_while_the_bot_was_down_fires_once_at_startup(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []
    async with BotSimulator(quiz(persistent, step_name, log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        listen = next(
            m for m in sim.dispatcher.message.outer_middleware if isinstance(m, aiostep.Listen)
        )
        await listen.scheduler.stop()  # the process is down (nothing fires)...
        await clock.advance(600)  # ...past the deadline
        await sim.restart()
        assert log == ["timeout maths"]  # fired at startup, with no update
        await sim.restart()
        await clock.advance(600)
        assert log == ["timeout maths"]  # once


async def test_a_persisted_step_answered_in_time_after_a_restart_runs(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []
    async with BotSimulator(quiz(persistent, step_name, log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await sim.restart()
        await clock.advance(30)
        await talk.send("4")
        await clock.advance(120)
        assert log == ["maths: 4"]


# --- unregistering, and state set with the step --------------------------------------------------


async def test_unregister_steps_removes_a_persisted_step_for_good(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("cancel.name"))
    async def name_step(message: Message) -> None:
        log.append(f"step {message.text}")

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, name_step)

        @dp.message(Command("cancel"))
        async def cancel(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.unregister_steps(message.from_user.id)

        normal_handlers(dp, log)

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("/cancel")
        await sim.restart()
        await talk.send("Alice")
        assert log == ["normal Alice"]


class Signup(enum.Enum):
    NAME = "name"
    AGE = "age"


async def test_register_next_step_stores_an_enum_state_by_name_with_the_step(
    persistent: Backend, step_name: Names
) -> None:
    @aiostep.persisted_step(step_name("state.age"))
    async def age(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, age, state=None)

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(
                message.from_user.id, age, state=Signup.AGE, data={"name": "Ann"}
            )

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        record = await stored(persistent, talk.user.id)
        assert record is not None
        assert record.current_state == "AGE" and record.data == {"name": "Ann"}
        await sim.restart()
        await talk.send("30")
        record = await stored(persistent, talk.user.id)
        assert record is not None and record.current_state is None
        assert record.data == {"name": "Ann"}


async def test_a_persisted_step_answered_in_time_leaves_no_timer(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []
    async with BotSimulator(quiz(persistent, step_name, log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        assert len(clock.timers) == 1  # the scheduler's one timer
        await talk.send("4")
        assert len(clock.timers) <= 1  # still one at most: a timer is never per conversation
        await clock.advance(120)
        assert log == ["maths: 4"]
        if persistent.kind == "file":  # single process: nothing left to wake for
            assert clock.timers == []
