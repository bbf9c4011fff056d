"""``register_next_step``: where the next update goes, what a step is called with, what happens
when it raises, expires, or is replaced or unregistered."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import ErrorEvent, Message, TelegramObject, User

import aiostep
from aiostep import MemoryStateStorage
from aiostep.pending import root_store
from aiostep.testing import BotSimulator


class Put(BaseMiddleware):
    """Puts ``name=value`` into the handler data, as a user's middleware would."""

    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value = name, value

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data[self.name] = self.value
        return await handler(event, data)


# --- what a step is called with ------------------------------------------------------------------


@pytest.fixture(params=["in-process", "memory storage"])
def where(request: pytest.FixtureRequest) -> str:
    """Steps kept in this process, or persisted by name in a MemoryStateStorage."""
    return str(request.param)


def build_with_context(
    where: str, step_name: Callable[[str], str], seen: dict[str, Any]
) -> Dispatcher:
    dp = Dispatcher(greeting="hello")  # workflow data
    dp.update.outer_middleware(Put("db", "db-connection"))
    dp.update.middleware(Put("session", "db-session"))
    dp.message.outer_middleware(Put("request_id", 17))
    storage = MemoryStateStorage() if where == "memory storage" else None
    aiostep.setup(dp, storage=storage)

    @aiostep.persisted_step(step_name("context.age"))
    async def got_age(
        message: Message,
        bot: Bot,
        state: FSMContext,
        event_from_user: User,
        db: str,
        session: str,
        request_id: int,
        greeting: str,
        name: str,
    ) -> None:
        seen.update(
            bot=bot,
            state=state,
            fsm_data=await state.get_data(),
            user_id=event_from_user.id,
            db=db,
            session=session,
            request_id=request_id,
            greeting=greeting,
            name=name,
            text=message.text,
        )
        await message.answer(f"{greeting} {name}, you are {message.text}")

    @dp.message(Command("start"))
    async def start(message: Message, state: FSMContext) -> None:
        assert message.from_user is not None
        await state.update_data(language="en")
        await message.answer("How old are you?")
        await aiostep.register_next_step(message.from_user.id, got_age, kwargs={"name": "Ann"})

    return dp


async def test_a_step_gets_aiogram_context_by_parameter_name(
    where: str, step_name: Callable[[str], str]
) -> None:
    seen: dict[str, Any] = {}
    async with BotSimulator(build_with_context(where, step_name, seen)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("30")
        talk.assert_last("hello Ann, you are 30")
        assert seen["bot"] is sim.bot
        assert isinstance(seen["state"], FSMContext)
        assert seen["fsm_data"] == {"language": "en"}
        assert seen["user_id"] == talk.user.id
        assert (seen["db"], seen["session"], seen["request_id"]) == (
            "db-connection",
            "db-session",
            17,
        )
        assert seen["greeting"] == "hello"
        assert seen["name"] == "Ann" and seen["text"] == "30"


async def test_a_step_taking_kwargs_gets_everything(step_name: Callable[[str], str]) -> None:
    got: dict[str, Any] = {}
    dp = Dispatcher()
    aiostep.setup(dp)

    async def anything(message: Message, **data: Any) -> None:
        got.update(data)

    @dp.message(Command("go"))
    async def go(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, anything, kwargs={"n": 1})

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/go")
        await talk.send("x")
        assert got["n"] == 1
        assert got["bot"] is sim.bot
        assert isinstance(got["state"], FSMContext)
        assert got["conversation"] == aiostep.ConversationKey(
            talk.chat.id, talk.user.id, None, sim.bot.id
        )


def _with_signature_of(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator whose wrappers share one ``def`` (one code object) and each take the
    parameters of the function they wrap (``__signature__``, as signature-copying
    decorators do)."""
    import inspect

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    wrapper.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    return wrapper


async def test_steps_wrapped_by_one_decorator_each_get_their_own_parameters() -> None:
    """What a step is called with comes from its own signature, even when every step is a
    wrapper made by one decorator (the same code object): a wrapper taking ``**kwargs``
    would get everything, so each must be told apart by what it declares."""
    got: list[tuple[str, Any]] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def first(message: Message, name: str) -> None:
        got.append(("first", name))
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, wrapped_second, kwargs={"age": 3})

    async def second(message: Message, age: int) -> None:
        got.append(("second", age))

    wrapped_first = _with_signature_of(first)
    wrapped_second = _with_signature_of(second)

    @dp.message(Command("go"))
    async def go(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, wrapped_first, kwargs={"name": "A"})

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/go")
        await talk.send("x")
        await talk.send("y")
    assert got == [("first", "A"), ("second", 3)]


async def test_a_sync_step_is_called_too() -> None:
    got: list[str | None] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    def plain(message: Message, extra: str) -> None:
        got.append(f"{message.text} {extra}")

    @dp.message(Command("go"))
    async def go(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, plain, kwargs={"extra": "!"})

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/go")
        await talk.send("x")
        assert got == ["x !"]


async def test_an_exception_in_a_step_reaches_the_errors_handlers_with_the_update(
    where: str, step_name: Callable[[str], str]
) -> None:
    errors: list[tuple[type[BaseException], str | None]] = []
    dp = Dispatcher()
    aiostep.setup(dp, storage=MemoryStateStorage() if where == "memory storage" else None)

    @aiostep.persisted_step(step_name("errors.age"))
    async def age(message: Message) -> None:
        raise ValueError(f"not an age: {message.text}")

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, age)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> None:
        assert event.update.message is not None
        errors.append((type(event.exception), event.update.message.text))
        await event.update.message.answer(f"sorry: {event.exception}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("old")
        assert errors == [(ValueError, "old")]
        talk.assert_last("sorry: not an age: old")


async def test_a_steps_unhandled_exception_propagates_out_of_feed_update() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def broken(message: Message) -> None:
        raise RuntimeError("step failed")

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, broken)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/start")
        with pytest.raises(RuntimeError, match="step failed"):
            await talk.send("x")


# --- where the next update goes ------------------------------------------------------------------


def build_flow(log: list[str]) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def first(message: Message) -> None:
        log.append(f"first {message.text}")

    async def second(message: Message) -> None:
        log.append(f"second {message.text}")

    async def looping(message: Message, count: int) -> None:
        assert message.from_user is not None
        log.append(f"loop {count} {message.text}")
        if message.text != "stop":
            await aiostep.register_next_step(
                message.from_user.id, looping, kwargs={"count": count + 1}
            )

    @dp.message(Command("one"))
    async def one(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, first)

    @dp.message(Command("two"))
    async def two(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, first)
        await aiostep.register_next_step(message.from_user.id, second)

    @dp.message(Command("loop"))
    async def loop(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, looping, kwargs={"count": 1})

    @dp.message(Command("cancel"))
    async def cancel(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.unregister_steps(message.from_user.id)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


async def test_a_step_takes_exactly_the_next_update() -> None:
    log: list[str] = []
    async with BotSimulator(build_flow(log)) as sim:
        talk = sim.chat()
        await talk.send("/one")
        await talk.send("a")
        await talk.send("b")
        assert log == ["first a", "normal b"]
        assert len(root_store().cache) == 0  # type: ignore[attr-defined]


async def test_a_newer_step_replaces_the_pending_one() -> None:
    log: list[str] = []
    async with BotSimulator(build_flow(log)) as sim:
        talk = sim.chat()
        await talk.send("/two")
        await talk.send("a")
        await talk.send("b")
        assert log == ["second a", "normal b"]


async def test_a_step_can_register_itself_again_with_new_kwargs() -> None:
    log: list[str] = []
    async with BotSimulator(build_flow(log)) as sim:
        talk = sim.chat()
        await talk.send("/loop")
        for text in ("a", "b", "stop", "after"):
            await talk.send(text)
        assert log == ["loop 1 a", "loop 2 b", "loop 3 stop", "normal after"]


async def test_unregister_steps_drops_a_pending_step() -> None:
    log: list[str] = []
    async with BotSimulator(build_flow(log)) as sim:
        talk = sim.chat()
        await talk.send("/one")
        await talk.send("/cancel")
        await talk.send("a")
        assert log == ["normal a"]


async def test_a_step_can_be_given_by_its_registered_name(step_name: Callable[[str], str]) -> None:
    got: list[str | None] = []
    name = step_name("by_name")

    @aiostep.persisted_step(name)
    async def named(message: Message) -> None:
        got.append(message.text)

    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("go"))
    async def go(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, name)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/go")
        await talk.send("x")
        assert got == ["x"]


# --- timeouts ------------------------------------------------------------------------------------


def build_timed(log: list[str], on_timeout: bool = True) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def answered(message: Message, topic: str) -> None:
        log.append(f"step {topic}: {message.text}")

    async def too_slow(bot: Bot, chat_id: int, user_id: int, topic: str) -> None:
        log.append(f"timeout {topic} for {user_id}")
        await bot.send_message(chat_id, f"Too slow for {topic}!")

    @dp.message(Command("quiz"))
    async def quiz(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("2 + 2?")
        await aiostep.register_next_step(
            message.from_user.id,
            answered,
            kwargs={"topic": "maths"},
            timeout=10,
            on_timeout=too_slow if on_timeout else None,
        )

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


async def test_an_expired_step_calls_on_timeout_without_another_message() -> None:
    log: list[str] = []
    async with BotSimulator(build_timed(log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await clock.advance(9.9)
        assert log == []
        await clock.advance(0.1)
        assert log == [f"timeout maths for {talk.user.id}"]
        talk.assert_last("Too slow for maths!")


async def test_after_a_step_expires_the_next_update_goes_to_normal_handlers() -> None:
    log: list[str] = []
    async with BotSimulator(build_timed(log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await clock.advance(10)
        await talk.send("4")
        assert log == [f"timeout maths for {talk.user.id}", "normal 4"]
        assert len(root_store().cache) == 0  # type: ignore[attr-defined]


async def test_an_expired_step_without_on_timeout_just_lets_updates_through() -> None:
    log: list[str] = []
    async with BotSimulator(build_timed(log, on_timeout=False)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await clock.advance(11)
        await talk.send("4")
        assert log == ["normal 4"]


async def test_a_step_answered_in_time_never_times_out() -> None:
    log: list[str] = []
    async with BotSimulator(build_timed(log)) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        await clock.advance(5)
        await talk.send("4")
        await clock.advance(60)
        assert log == ["step maths: 4"]
        talk.assert_last("2 + 2?")


async def test_a_failing_on_timeout_is_logged_and_the_bot_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    async def answered(message: Message) -> None:
        log.append(f"step {message.text}")

    async def broken_timeout(chat_id: int) -> None:
        raise RuntimeError(f"cannot notify {chat_id}")

    @dp.message(Command("quiz"))
    async def quiz(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(
            message.from_user.id, answered, timeout=5, on_timeout=broken_timeout
        )

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/quiz")
        with caplog.at_level(logging.ERROR, logger="aiostep"):
            await clock.advance(5)
        failures = [r for r in caplog.records if r.name == "aiostep" and r.exc_info]
        assert len(failures) == 1
        assert isinstance(failures[0].exc_info[1], RuntimeError)  # type: ignore[index]
        assert "cannot notify" in str(failures[0].exc_info[1])  # type: ignore[index]
        await talk.send("4")
        assert log == ["normal 4"]
