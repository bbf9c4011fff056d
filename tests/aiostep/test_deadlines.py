"""Persisted steps' deadlines fire with no update: one scheduler per Listen over the storage's
deadline index, through the same claim as an answer; on Redis, exactly one worker fires each,
and a worker that dies while firing is replaced once its lease runs out."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import FileStateStorage, MemoryStateStorage
from aiostep.deadlines import DeadlineIndex, parse_storage_key
from aiostep.keys import ConversationKey
from aiostep.storage import as_async
from aiostep.storage.base import Patch, new_owner
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator, FakeClock

if TYPE_CHECKING:
    from conftest import Backend

Names = Callable[[str], str]


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
    *,
    on_timeout_gate: asyncio.Event | None = None,
    step_gate: asyncio.Event | None = None,
    bad: dict[str, Any] | None = None,
    fail: bool = False,
) -> Dispatcher:
    """/quiz asks "2 + 2?" with a persisted step that times out after 60 s."""
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    async def answer(message: Message) -> None:
        if step_gate is not None:
            await step_gate.wait()
        log.append(f"answer {message.text}")

    async def too_slow(bot: Bot, chat_id: int) -> None:
        if on_timeout_gate is not None:
            await on_timeout_gate.wait()
        if fail:
            raise RuntimeError("broken")
        log.append("timeout")
        await bot.send_message(chat_id, "Too slow")

    answer_name, timeout_name = step_name("dl.answer"), step_name("dl.too_slow")
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

    @dp.message(Command("bad"))
    async def bad_step(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, answer_name, **(bad or {}))

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


@pytest.fixture
def fixed_names(step_name: Names) -> Names:
    """The same step name for a label on every call (two workers register the same steps)."""
    made: dict[str, str] = {}

    def make(label: str) -> str:
        if label not in made:
            made[label] = step_name(label)
        return made[label]

    return make


# --- the index -----------------------------------------------------------------------------------


def test_the_index_hands_out_each_due_key_once_earliest_first() -> None:
    index = DeadlineIndex()
    index.note("a", 30.0)
    index.note("b", 10.0)
    index.note("c", 20.0)
    index.note("a", 5.0)  # moved earlier: the old entry fires nothing
    index.note("c", None)  # its step ended
    assert index.earliest() == 5.0
    assert index.take_due(15.0, 10) == ["a", "b"]
    assert index.take_due(100.0, 10) == []
    assert len(index) == 0 and index.earliest() is None


def test_a_storage_key_reads_back_as_its_conversation() -> None:
    assert parse_storage_key("-100123:42:7@5000") == ConversationKey(-100123, 42, 7, 5000)
    assert parse_storage_key("10:20") == ConversationKey(10, 20, None, None)
    with pytest.raises(ValueError, match=r"'user-1' is not a conversation's key"):
        parse_storage_key("user-1")


# --- one scheduler, bounded memory ---------------------------------------------------------------


@pytest.mark.slow  # 100,000 writes (a few seconds)
async def test_100000_pending_deadlines_cost_one_timer_no_task_and_bounded_memory(
    fake_clock: FakeClock,
) -> None:
    storage = MemoryStateStorage().aio
    listen = aiostep.setup(Dispatcher(), storage=storage)
    await listen.scheduler.start([Bot("42:TEST")])
    tasks_before = len(asyncio.all_tasks())
    count = 100_000
    base = fake_clock.now()
    for i in range(count):
        await storage.write(
            f"{i}:{i}@42",
            Patch(callback="x.step", token="t", deadline=base + 60 + i % 3600, chat_id=i),
        )
    assert len(storage.deadlines or ()) == count
    assert len(fake_clock.timers) == 1  # the scheduler's, for the earliest deadline
    assert fake_clock.timers[0].when == base + 60
    assert len(asyncio.all_tasks()) == tasks_before  # no task per conversation, none at all
    await listen.scheduler.stop()

    # what the scheduler adds per pending deadline: an entry in one dict and one heap
    keys = [f"{i}:{i}@42" for i in range(count)]
    gc.collect()
    tracemalloc.start()
    try:
        index = DeadlineIndex()
        before, _ = tracemalloc.get_traced_memory()
        for i, key in enumerate(keys):
            index.note(key, base + i % 3600)
        for i, key in enumerate(keys[: count // 2]):  # half of them answered and re-asked
            index.note(key, base + 7200 + i % 3600)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(index) == count
    assert (after - before) / count < 400  # bytes; measured ~150


# --- firing with no update -----------------------------------------------------------------------


async def test_a_deadline_fires_while_the_process_runs_with_no_update(
    backend: Backend, fixed_names: Names
) -> None:
    log: list[str] = []
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/quiz")
    await clock.advance(59)
    assert log == []
    await clock.advance(1)
    assert log == ["timeout"]
    talk.assert_last("Too slow")
    assert await backend.record(talk) is None


async def test_on_timeout_must_be_a_registered_step_for_a_persisted_step(
    backend: Backend, fixed_names: Names
) -> None:
    bad = {"timeout": 5, "on_timeout": lambda: None}
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, [], bad=bad))
    backend.sims.append(sim)
    talk = sim.chat()
    with pytest.raises(
        TypeError, match=r"on_timeout <function .*lambda.* is not a registered step"
    ):
        await talk.send("/bad")
    assert await backend.record(talk) is None  # nothing was stored


async def test_a_timeout_must_be_a_positive_duration(backend: Backend, fixed_names: Names) -> None:
    sim = BotSimulator(
        lambda: quiz_bot(backend.new_storage(), fixed_names, [], bad={"timeout": -1})
    )
    backend.sims.append(sim)
    with pytest.raises(ValueError, match=r"timeout must be a positive, finite number .* -1"):
        await sim.chat().send("/bad")


# --- an answer and the deadline at the same moment -----------------------------------------------


async def test_an_answer_during_the_firing_of_the_timeout_goes_to_the_normal_handlers(
    backend: Backend, fixed_names: Names
) -> None:
    """The scheduler claimed the step and its on_timeout runs: the answer that arrives then
    does not run the step too; it waits for the timeout's outcome and goes on."""
    log: list[str] = []
    gate = asyncio.Event()
    sim = BotSimulator(
        lambda: quiz_bot(backend.new_storage(), fixed_names, log, on_timeout_gate=gate)
    )
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/quiz")
    firing = asyncio.ensure_future(clock.advance(60))
    for _ in range(20):
        await asyncio.sleep(0)
    answering = asyncio.ensure_future(talk.send("4"))
    for _ in range(20):
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(firing, answering)
    await sim.settle()
    assert log == ["timeout", "normal 4"]


async def test_a_deadline_passing_while_the_answer_runs_fires_nothing(
    backend: Backend, fixed_names: Names
) -> None:
    log: list[str] = []
    gate = asyncio.Event()
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, step_gate=gate))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/quiz")
    await clock.advance(59)
    answering = asyncio.ensure_future(talk.send("4"))
    for _ in range(20):
        await asyncio.sleep(0)
    firing = asyncio.ensure_future(clock.advance(10))
    for _ in range(20):
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(answering, firing)
    await clock.advance(120)
    assert log == ["answer 4"]


# --- several workers on one Redis ----------------------------------------------------------------


async def test_two_workers_scanning_at_the_same_moment_take_each_deadline_once(
    redis_url: str,
) -> None:
    first, second = RedisStateStorage(redis_url), RedisStateStorage(redis_url)
    try:
        for i in range(300):
            await first.write(
                f"{i}:{i}@42", Patch(callback="x.step", token="t", deadline=1000.0 + i, chat_id=i)
            )
        taken: list[list[str]] = []
        for now in (1100.0, 1200.0, 1400.0):
            a, b = await asyncio.gather(
                first.due_deadlines(now, now + 30, 50), second.due_deadlines(now, now + 30, 50)
            )
            taken += [a, b]
            for key in (*a, *b):  # a live worker says when it is done with each
                await first.deadline_fired(key)
        every = [key for batch in taken for key in batch]
        assert len(every) == len(set(every)) == 300
        assert all(len(batch) == 50 for batch in taken)  # both workers got their share
    finally:
        await first.close()
        await second.close()


async def test_two_workers_fire_a_deadline_exactly_once(
    redis_url: str, fixed_names: Names, fake_clock: FakeClock
) -> None:
    log: list[str] = []
    workers = [
        BotSimulator(lambda: quiz_bot(RedisStateStorage(redis_url), fixed_names, log))
        for _ in range(2)
    ]
    try:
        for sim in workers:
            await sim.start()
        talk = workers[0].chat()
        for i in range(20):
            await workers[0].chat(workers[0].user(5000 + i)).send("/quiz")
        schedulers = [listen_of(sim).scheduler for sim in workers]
        for scheduler in schedulers:
            await scheduler.stop()
        await fake_clock.advance(61)
        # both look at the same moment
        await asyncio.gather(
            *(s.start([sim.bot]) for sim, s in zip(workers, schedulers, strict=True))
        )
        await asyncio.gather(*(sim.settle() for sim in workers))
        assert log == ["timeout"] * 20
        del talk
    finally:
        for sim in workers:
            await sim.aclose()


async def test_a_worker_that_dies_while_firing_is_replaced_when_its_lease_runs_out(
    redis_url: str, fixed_names: Names, fake_clock: FakeClock
) -> None:
    log: list[str] = []
    sim = BotSimulator(lambda: quiz_bot(RedisStateStorage(redis_url), fixed_names, log))
    try:
        talk = sim.chat()
        await talk.send("/quiz")
        listen = listen_of(sim)
        await listen.scheduler.stop()
        await fake_clock.advance(60)
        # another worker takes the deadline and claims the step, then dies (no outcome)
        dead = RedisStateStorage(redis_url)
        now = fake_clock.now()
        (skey,) = await dead.due_deadlines(now, now + 5, 10)
        record = await dead.read(skey)
        assert record is not None and record.token is not None
        assert await dead.claim_token(skey, record.token, now + 5, new_owner()) is not None
        await dead.redis.aclose()
        await listen.scheduler.start([sim.bot])
        await fake_clock.advance(4)
        assert log == []  # its lease still runs
        await fake_clock.advance(2)
        assert log == ["timeout"]
        talk.assert_last("Too slow")
        assert (await listen.storage.read(skey)) is None  # type: ignore[union-attr]
    finally:
        await sim.aclose()


# --- the storage interface, on every backend -----------------------------------------------------


async def test_every_storage_indexes_deadlines_and_hands_each_due_one_out_once(
    backend: Backend,
) -> None:
    storage = as_async(backend.new_storage())
    await storage.write("1:1@42", Patch(callback="x", token="t", deadline=1000.0, chat_id=1))
    await storage.write("2:2@42", Patch(callback="x", token="t", deadline=2000.0, chat_id=2))
    await storage.write("3:3@42", Patch(callback="x", token="t", deadline=1200.0, chat_id=3))
    await storage.write("3:3@42", Patch(callback=None))  # its step ended
    assert await storage.next_deadline() in (1000.0, 1200.0)  # a stale entry may remain
    due = await storage.due_deadlines(1500.0, 1530.0)
    assert "1:1@42" in due and "2:2@42" not in due
    for key in due:
        await storage.deadline_fired(key)
    assert await storage.due_deadlines(1500.0, 1530.0) == []
    assert await storage.next_deadline() == 2000.0
    await storage.deadline_later("2:2@42", 1700.0)
    assert await storage.due_deadlines(1800.0, 1830.0) == ["2:2@42"]


async def test_taking_due_deadlines_also_says_the_earliest_one_left(backend: Backend) -> None:
    storage = as_async(backend.new_storage())
    assert await storage.due_deadlines_and_next(1500.0, 1530.0) == ([], None)
    await storage.write("1:1@42", Patch(callback="x", token="t", deadline=1000.0, chat_id=1))
    await storage.write("2:2@42", Patch(callback="x", token="t", deadline=2000.0, chat_id=2))
    assert await storage.due_deadlines_and_next(900.0, 930.0) == ([], 1000.0)
    taken, earliest = await storage.due_deadlines_and_next(1500.0, 1530.0)
    assert taken == ["1:1@42"]
    # the one taken counts at its lease on a shared storage, until it is marked fired
    assert earliest == (1530.0 if storage.shared else 2000.0)
    await storage.deadline_fired("1:1@42")
    assert await storage.due_deadlines_and_next(1600.0, 1630.0) == ([], 2000.0)


async def test_a_file_storage_finds_its_deadlines_when_the_journal_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    storage = FileStateStorage(path)
    await storage.write("1:1@42", Patch(callback="x", token="t", deadline=1000.0, chat_id=1))
    await storage.write("2:2@42", Patch(callback="x", token="t", chat_id=2))  # no deadline
    await storage.close()
    reopened = FileStateStorage(path)
    try:
        assert await reopened.next_deadline() == 1000.0
        assert await reopened.due_deadlines(1000.0, 1030.0) == ["1:1@42"]
    finally:
        await reopened.close()


async def test_a_failing_on_timeout_is_logged_and_ends_the_step(
    backend: Backend, fixed_names: Names, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log, fail=True))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/quiz")
    await clock.advance(60)
    assert "on_timeout callback" in caplog.text and "RuntimeError: broken" in caplog.text
    assert await backend.record(talk) is None  # not fired again and again
    await talk.send("4")
    assert log == ["normal 4"]


async def test_a_webhook_apps_startup_starts_the_scheduler_with_its_bot(
    fixed_names: Names, fake_clock: FakeClock
) -> None:
    from aiogram.webhook.aiohttp_server import setup_application
    from aiohttp import web

    from aiostep.testing import RecordingSession

    log: list[str] = []
    storage = MemoryStateStorage()
    dp = quiz_bot(storage, fixed_names, log)
    bot = Bot("42:TEST", session=RecordingSession())
    app = web.Application()
    setup_application(app, dp, bot=bot)  # as examples/webhook/app.py does
    app.freeze()
    await app.startup()
    try:
        listen = next(m for m in dp.message.outer_middleware if isinstance(m, aiostep.Listen))
        assert listen.scheduler.running
        sim = BotSimulator(dp, bot=bot)  # feeds the updates (its startup adds nothing new)
        await sim.chat().send("/quiz")
        await fake_clock.advance(60)
        assert log == ["timeout"]
    finally:
        await app.shutdown()
        await app.cleanup()
    assert not listen.scheduler.running  # stopped by the app's shutdown
    await sim.aclose()


async def test_an_answer_on_another_worker_while_one_fires_the_timeout_waits_for_it(
    redis_url: str, fixed_names: Names, fake_clock: FakeClock
) -> None:
    log: list[str] = []
    gate = asyncio.Event()
    workers = [
        BotSimulator(
            lambda: quiz_bot(RedisStateStorage(redis_url), fixed_names, log, on_timeout_gate=gate)
        )
        for _ in range(2)
    ]
    firing_worker, answering_worker = workers
    try:
        for sim in workers:
            await sim.start()
        await listen_of(answering_worker).scheduler.stop()  # only the first one fires
        await firing_worker.chat().send("/quiz")
        firing = asyncio.ensure_future(fake_clock.advance(60))
        for _ in range(50):
            await asyncio.sleep(0)
        # the same user answers through the other worker while on_timeout runs
        answering = asyncio.ensure_future(answering_worker.chat().send("4"))
        await asyncio.sleep(0.05)
        assert log == []  # the answer waits for the timeout's outcome (the claim is busy)
        gate.set()
        await asyncio.gather(firing, answering)
        assert log == ["timeout", "normal 4"]
    finally:
        for sim in workers:
            await sim.aclose()


async def test_an_update_that_finds_the_deadline_passed_before_it_fired_fires_it_once(
    backend: Backend, fixed_names: Names
) -> None:
    """The scheduler has not fired yet (the bot was busy or down): the update that finds the
    step expired fires on_timeout itself, and goes to the handlers; nothing fires twice."""
    log: list[str] = []
    sim = BotSimulator(lambda: quiz_bot(backend.new_storage(), fixed_names, log))
    backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/quiz")
    scheduler = listen_of(sim).scheduler
    await scheduler.stop()
    await clock.advance(61)
    await talk.send("4")
    assert log == ["timeout", "normal 4"]
    await scheduler.start([sim.bot])
    await clock.advance(60)
    assert log == ["timeout", "normal 4"]
