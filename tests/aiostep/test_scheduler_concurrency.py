"""The scheduler fires due deadlines concurrently: one slow ``on_timeout`` (a slow send, a
``wait_for``) does not hold up other conversations' deadlines; firings are bounded, each
one's error is its own, and stopping waits for those under way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator, Conversation

if TYPE_CHECKING:
    from conftest import Backend

Names = Callable[[str], str]


@pytest.fixture
def fixed_names(step_name: Names) -> Names:
    """The same step name for a label on every call (a restart registers the same steps)."""
    made: dict[str, str] = {}

    def make(label: str) -> str:
        if label not in made:
            made[label] = step_name(label)
        return made[label]

    return make


def listen_of(sim: BotSimulator) -> aiostep.Listen:
    found = next(
        m for m in sim.dispatcher.message.outer_middleware if isinstance(m, aiostep.Listen)
    )
    assert isinstance(found, aiostep.Listen)
    return found


def quiz_bot(
    storage: Any,
    step_name: Names,
    log: list[str],
    gates: dict[int, asyncio.Event],
    failing: set[int] | None = None,
    asking: set[int] | None = None,
) -> Dispatcher:
    """/quiz asks with a persisted step timing out after 60 s; the on_timeout of a chat in
    ``gates`` waits for its event (a slow send), of a chat in ``failing`` raises, of a chat
    in ``asking`` asks "Still there?" and waits for the answer (``wait_for``)."""
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    async def answer(message: Message) -> None:
        log.append(f"answer {message.chat.id}")

    async def too_slow(bot: Bot, chat_id: int) -> None:
        gate = gates.get(chat_id)
        if gate is not None:
            await gate.wait()
        if failing is not None and chat_id in failing:
            raise RuntimeError(f"broken {chat_id}")
        if asking is not None and chat_id in asking:
            await bot.send_message(chat_id, "Still there?")
            reply = await aiostep.wait_for(chat_id, chat_id=chat_id)
            log.append(f"{reply.text} {chat_id}")
        log.append(f"timeout {chat_id}")
        await bot.send_message(chat_id, "Too slow")

    answer_name, timeout_name = step_name("conc.answer"), step_name("conc.too_slow")
    if answer_name not in aiostep.registry:
        aiostep.registry.register(answer, answer_name)
        aiostep.registry.register(too_slow, timeout_name)

    @dp.message(Command("quiz"))
    async def quiz(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("2 + 2?")
        await aiostep.register_next_step(
            message.from_user.id,
            answer_name,
            timeout=timedelta(seconds=60),
            on_timeout=timeout_name,
        )

    return dp


async def until(condition: Callable[[], bool], limit: float = 1.0) -> None:
    """Wait (real time, at most ``limit`` s) until ``condition()`` holds."""
    for _ in range(int(limit / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)


def talks(sim: BotSimulator, n: int) -> list[Conversation]:
    return [sim.chat(sim.user()) for _ in range(n)]


async def test_an_on_timeout_waiting_for_an_answer_does_not_delay_other_deadlines(
    backend: Backend, fixed_names: Names
) -> None:
    log: list[str] = []
    asking: set[int] = set()
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, {}, asking=asking))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    slow, quick = talks(sim, 2)
    asking.add(slow.chat.id)
    await slow.send("/quiz")
    await clock.advance(1)
    await quick.send("/quiz")
    await clock.advance(61)
    slow.assert_last("Still there?")
    assert log == [f"timeout {quick.chat.id}"]  # not held up by the one waiting
    quick.assert_last("Too slow")
    await slow.send("yes")
    assert log == [f"timeout {quick.chat.id}", f"yes {slow.chat.id}", f"timeout {slow.chat.id}"]
    assert await backend.record(slow) is None and await backend.record(quick) is None


async def test_deadlines_due_together_fire_together(backend: Backend, fixed_names: Names) -> None:
    """Ten conversations due at the same moment, each on_timeout waiting for the others: one
    after another they would never end."""
    log: list[str] = []
    gates: dict[int, asyncio.Event] = {}
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, gates))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    everyone = talks(sim, 10)
    everyone_in = asyncio.Event()
    for talk in everyone:
        gates[talk.chat.id] = everyone_in
        await talk.send("/quiz")
    firing = asyncio.ensure_future(clock.advance(60))
    scheduler = listen_of(sim).scheduler
    try:
        await until(lambda: scheduler.firing == 10)
        assert scheduler.firing == 10
    finally:
        everyone_in.set()
        await firing
    assert sorted(log) == sorted(f"timeout {talk.chat.id}" for talk in everyone)


async def test_at_most_concurrency_deadlines_fire_at_once(
    backend: Backend, fixed_names: Names
) -> None:
    log: list[str] = []
    gates: dict[int, asyncio.Event] = {}
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, gates))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    everyone = talks(sim, 5)
    hold = asyncio.Event()
    for talk in everyone:
        gates[talk.chat.id] = hold
        await talk.send("/quiz")
    await sim.start()
    scheduler = listen_of(sim).scheduler
    scheduler.concurrency = 2
    firing = asyncio.ensure_future(clock.advance(60))
    try:
        await until(lambda: scheduler.firing == 2)
        await asyncio.sleep(0.05)
        assert scheduler.firing == 2  # the other three wait for a free slot, still indexed
    finally:
        hold.set()
        await firing
    assert len(log) == 5


async def test_a_failing_on_timeout_does_not_stop_the_others(
    backend: Backend, fixed_names: Names, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    failing: set[int] = set()
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, {}, failing))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    bad, good = talks(sim, 2)
    failing.add(bad.chat.id)
    await bad.send("/quiz")
    await good.send("/quiz")
    await clock.advance(60)
    assert log == [f"timeout {good.chat.id}"]
    assert f"RuntimeError: broken {bad.chat.id}" in caplog.text
    assert await backend.record(bad) is None


async def test_stopping_the_scheduler_waits_for_the_firings_under_way(
    backend: Backend, fixed_names: Names
) -> None:
    log: list[str] = []
    gates: dict[int, asyncio.Event] = {}
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, gates))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    slow, quick = talks(sim, 2)
    gates[slow.chat.id] = asyncio.Event()
    await slow.send("/quiz")
    await quick.send("/quiz")
    firing = asyncio.ensure_future(clock.advance(60))
    scheduler = listen_of(sim).scheduler
    await until(lambda: len(log) == 1)
    stopping = asyncio.ensure_future(scheduler.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # the storage must not be closed under the slow firing
    gates[slow.chat.id].set()
    await stopping
    assert sorted(log) == sorted([f"timeout {slow.chat.id}", f"timeout {quick.chat.id}"])
    await firing


async def test_stopping_the_scheduler_does_not_wait_for_an_on_timeout_parked_in_wait_for(
    backend: Backend, fixed_names: Names
) -> None:
    """A parked ``wait_for`` waits for a user who may never answer: shutdown ends it, as a
    restart ends every in-process waiter, instead of hanging."""
    log: list[str] = []
    asking: set[int] = set()
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, {}, asking=asking))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    asking.add(talk.chat.id)
    await talk.send("/quiz")
    await clock.advance(60)
    talk.assert_last("Still there?")
    await asyncio.wait_for(listen_of(sim).scheduler.stop(), 1)
    assert listen_of(sim).scheduler.firing == 0


async def test_an_overdue_on_timeout_waiting_for_an_answer_does_not_hold_up_startup(
    persistent_backend: Backend, fixed_names: Names
) -> None:
    """After a restart, an overdue on_timeout that asks and waits for the answer fires at
    startup; the startup (and so polling, which brings the answer) does not wait for it."""
    log: list[str] = []
    asking: set[int] = set()
    sim = BotSimulator(
        lambda: quiz_bot(persistent_backend.new_storage(), fixed_names, log, {}, asking=asking)
    )
    persistent_backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    asking.add(talk.chat.id)
    await talk.send("/quiz")
    await listen_of(sim).scheduler.stop()  # the process is down...
    await clock.advance(600)  # ...past the deadline
    await asyncio.wait_for(sim.restart(), 2)
    talk.assert_last("Still there?")
    await talk.send("yes")
    assert log == [f"yes {talk.chat.id}", f"timeout {talk.chat.id}"]


async def test_stopping_does_not_hang_when_every_slot_waits_for_an_answer(
    backend: Backend, fixed_names: Names
) -> None:
    """The look that waits for a free slot (all of them parked in ``wait_for``) ends too."""
    log: list[str] = []
    asking: set[int] = set()
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, {}, asking=asking))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    first, second = talks(sim, 2)
    asking.update((first.chat.id, second.chat.id))
    await first.send("/quiz")
    await second.send("/quiz")
    scheduler = listen_of(sim).scheduler
    scheduler.concurrency = 1
    firing = asyncio.ensure_future(clock.advance(60))
    await until(lambda: scheduler.firing == 1)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(scheduler.stop(), 1)
    assert scheduler.firing == 0
    await firing
