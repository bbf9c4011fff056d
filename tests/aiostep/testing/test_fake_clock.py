"""FakeClock: time moves on advance(); timers fire in order; simulators settle after each."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.clock import SystemClock, get_clock
from aiostep.testing import BotSimulator, FakeClock


async def test_advance_fires_due_timers_in_order_at_their_time() -> None:
    clock = FakeClock(start=1000.0)
    fired: list[tuple[str, float]] = []

    def note(name: str) -> None:
        fired.append((name, clock.now()))

    clock.call_later(5, note, "five")
    clock.call_later(1, note, "one")
    clock.call_later(3, note, "three")
    clock.call_later(3, note, "three again")  # same time: the order they were set
    clock.call_later(20, note, "twenty")

    await clock.advance(10)

    assert fired == [
        ("one", 1001.0),
        ("three", 1003.0),
        ("three again", 1003.0),
        ("five", 1005.0),
    ]
    assert clock.now() == 1010.0
    assert [timer.when for timer in clock.timers] == [1020.0]


async def test_cancelled_timers_do_not_fire() -> None:
    clock = FakeClock()
    fired: list[str] = []
    timer = clock.call_later(1, fired.append, "cancelled")
    clock.call_later(2, fired.append, "kept")
    timer.cancel()

    await clock.advance(5)

    assert fired == ["kept"]
    assert timer.cancelled()


async def test_a_timer_armed_by_a_timer_fires_in_the_same_advance_if_due() -> None:
    clock = FakeClock(start=0.0)
    fired: list[float] = []

    def first() -> None:
        fired.append(clock.now())
        clock.call_later(2, lambda: fired.append(clock.now()))

    clock.call_later(1, first)
    await clock.advance(3)

    assert fired == [1.0, 3.0]


async def test_advance_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        await FakeClock().advance(-1)


def test_context_manager_installs_and_restores_the_clock() -> None:
    before = get_clock()
    with FakeClock() as clock:
        assert get_clock() is clock
    assert get_clock() is before
    assert isinstance(get_clock(), SystemClock)


def waiting_dispatcher() -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("echo"))
    async def echo(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Type something")
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=25)
        except TimeoutError:
            await message.answer("Too slow")
        else:
            await message.answer(f"You typed: {answer.text}")

    return dp


async def test_wait_for_answer_and_timeout_through_the_simulator() -> None:
    async with BotSimulator(waiting_dispatcher) as sim:
        clock = sim.use_fake_clock()
        assert get_clock() is clock
        talk = sim.chat()

        await talk.send("/echo")
        talk.assert_last("Type something")
        await talk.send("hello")
        talk.assert_last("You typed: hello")

        await talk.send("/echo")
        await clock.advance(24)
        talk.assert_last("Type something")
        await clock.advance(1)
        talk.assert_last("Too slow")
    assert isinstance(get_clock(), SystemClock)  # aclose restored it


async def test_tasks_started_by_timers_are_awaited_by_advance() -> None:
    dp = Dispatcher()

    @dp.message(Command("remind"))
    async def remind(message: Message, bot: Bot) -> None:
        async def later() -> None:
            await asyncio.sleep(0.01)  # real time passes; advance() still waits for it
            await bot.send_message(message.chat.id, "Reminder!")

        aiostep.clock.get_clock().call_later(60, lambda: asyncio.ensure_future(later()))
        await message.answer("I will remind you")

    with FakeClock() as clock:
        async with BotSimulator(dp) as sim:  # picks up the installed clock by itself
            talk = sim.chat()
            await talk.send("/remind")
            talk.assert_last("I will remind you")
            await clock.advance(60)
            talk.assert_last("Reminder!")


async def test_restart_drops_pending_timers() -> None:
    fired: list[str] = []
    async with BotSimulator(Dispatcher) as sim:
        clock = sim.use_fake_clock()
        clock.call_later(10, fired.append, "old process")
        await sim.restart()
        await clock.advance(20)
    assert fired == []


async def test_an_error_in_a_timeout_path_surfaces_from_advance() -> None:
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        try:
            await aiostep.wait_for(message.from_user.id, timeout=5)
        except TimeoutError:
            raise LookupError("timeout handling broke") from None

    async with BotSimulator(dp) as sim:
        clock = sim.use_fake_clock()
        await sim.send("/ask")
        with pytest.raises(LookupError, match="timeout handling broke"):
            await clock.advance(5)
