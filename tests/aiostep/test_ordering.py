"""One update at a time per conversation, in arrival order; a step runs once; no deadlock.

A burst is several updates fed at once: ``asyncio.gather(talk.send("a"), talk.send("b"))``
creates every update's task before any of them runs, as polling does with a batch.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Backend


async def pause() -> None:
    """Give way to the other tasks a few times, as real I/O in a handler would."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_burst_is_handled_one_at_a_time_in_arrival_order() -> None:
    log: list[str] = []
    dp = Dispatcher()
    listen = aiostep.setup(dp)

    @dp.message()
    async def slow(message: Message) -> None:
        log.append(f"start {message.text}")
        await pause()
        await asyncio.sleep(0.01)
        log.append(f"end {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await asyncio.gather(*(talk.send(text) for text in "abcd"))
        assert log == [f"{edge} {text}" for text in "abcd" for edge in ("start", "end")]
        assert len(listen.gates) == 0


async def test_different_conversations_are_not_serialised_against_each_other() -> None:
    alice_inside = asyncio.Event()
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message()
    async def handler(message: Message) -> None:
        assert message.from_user is not None
        if message.from_user.first_name == "Alice":
            alice_inside.set()
            await asyncio.wait_for(bob_done.wait(), 1)  # Bob must get through meanwhile
            await message.answer("Alice done")
        else:
            await alice_inside.wait()
            bob_done.set()
            await message.answer("Bob done")

    bob_done = asyncio.Event()
    async with BotSimulator(dp) as sim:
        group = sim.group()
        alice = sim.chat(sim.user(first_name="Alice"), group)
        bob = sim.chat(sim.user(first_name="Bob"), group)
        await asyncio.gather(alice.send("hi"), bob.send("hi"))
        assert sorted(r.text or "" for r in alice.messages) == ["Alice done", "Bob done"]


def build_steps(log: list[str]) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def first(message: Message) -> None:
        assert message.from_user is not None
        log.append(f"first step {message.text}")
        await pause()
        await asyncio.sleep(0.02)
        await aiostep.register_next_step(message.from_user.id, second)
        log.append("first step done")

    async def second(message: Message) -> None:
        log.append(f"second step {message.text}")

    async def once(message: Message) -> None:
        log.append(f"once {message.text}")
        await pause()

    @dp.message(Command("two"))
    async def two(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, first)

    @dp.message(Command("once"))
    async def start_once(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, once)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


async def test_a_step_runs_once_when_a_burst_arrives() -> None:
    log: list[str] = []
    async with BotSimulator(build_steps(log)) as sim:
        talk = sim.chat()
        await talk.send("/once")
        await asyncio.gather(*(talk.send(text) for text in ("a", "b", "c")))
        assert log == ["once a", "normal b", "normal c"]


async def test_a_fast_second_message_goes_where_the_first_step_pointed() -> None:
    log: list[str] = []
    async with BotSimulator(build_steps(log)) as sim:
        talk = sim.chat()
        await talk.send("/two")
        await asyncio.gather(talk.send("a"), talk.send("b"), talk.send("c"))
        assert log == ["first step a", "first step done", "second step b", "normal c"]


async def test_a_parked_handler_gets_its_answer_and_a_third_message_queues_behind_it() -> None:
    log: list[str] = []
    dp = Dispatcher()
    listen = aiostep.setup(dp)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        answer = await aiostep.wait_for(message.from_user.id)
        log.append(f"handler got {answer.text}")
        await pause()
        await asyncio.sleep(0.02)
        log.append("handler done")

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        assert len(listen.gates) == 0  # parked: it does not hold the conversation's turn
        await asyncio.gather(talk.send("answer"), talk.send("third"))
        assert log == ["handler got answer", "handler done", "normal third"]
        assert len(listen.gates) == 0


async def test_a_parked_handler_that_waits_again_gets_the_next_answer_of_a_burst() -> None:
    log: list[str] = []
    dp = Dispatcher()
    aiostep.setup(dp)

    @dp.message(Command("form"))
    async def form(message: Message) -> None:
        assert message.from_user is not None
        name = await aiostep.wait_for(message.from_user.id)
        await pause()
        age = await aiostep.wait_for(message.from_user.id)
        log.append(f"{name.text} is {age.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/form")
        await asyncio.gather(talk.send("Ann"), talk.send("30"), talk.send("extra"))
        assert log == ["Ann is 30", "normal extra"]


async def test_a_persisted_step_runs_once_when_a_burst_arrives(
    persistent: Backend, step_name: Callable[[str], str]
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("burst.first"))
    async def first(message: Message) -> None:
        assert message.from_user is not None
        log.append(f"first {message.text}")
        await asyncio.sleep(0.02)
        await aiostep.register_next_step(message.from_user.id, second)

    @aiostep.persisted_step(step_name("burst.second"))
    async def second(message: Message) -> None:
        log.append(f"second {message.text}")

    storage = persistent.new()
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    @dp.message(Command("go"))
    async def go(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, first)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/go")
        await asyncio.gather(*(talk.send(text) for text in ("a", "b", "c")))
        assert log == ["first a", "second b", "normal c"]


def redis_worker(
    backend: Backend, label: str, step: Callable[..., Any], log: Callable[[str], None]
) -> Dispatcher:
    """One worker process on the shared Redis: /go registers ``step``; anything else reaches
    the normal handler, which logs ``"<label> normal <text>"``."""
    dp = Dispatcher(worker=label)
    aiostep.setup(dp, storage=backend.new())

    @dp.message(Command("go"))
    async def go(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, step)

    @dp.message()
    async def normal(message: Message) -> None:
        log(f"{label} normal {message.text}")

    return dp


async def test_two_workers_on_one_redis_run_a_persisted_step_exactly_once(
    redis_backend: Backend, step_name: Callable[[str], str]
) -> None:
    runs: list[str] = []
    normal_runs: list[str] = []

    @aiostep.persisted_step(step_name("workers.claim"))
    async def claimed(message: Message, worker: str) -> None:
        runs.append(f"{worker} ran the step with {message.text}")
        await asyncio.sleep(0.01)

    def worker(label: str) -> Dispatcher:
        return redis_worker(redis_backend, label, claimed, normal_runs.append)

    async with BotSimulator(worker("w1")) as one, BotSimulator(worker("w2")) as two:
        talk_one, talk_two = one.chat(), two.chat()
        assert talk_one.user.id == talk_two.user.id  # the same user, seen by both workers
        for attempt in range(20):
            runs.clear()
            normal_runs.clear()
            await talk_one.send("/go")
            await asyncio.gather(talk_one.send(f"x{attempt}"), talk_two.send(f"x{attempt}"))
            assert len(runs) == 1, runs
            assert len(normal_runs) == 1, normal_runs


async def test_a_message_on_another_worker_waits_for_the_running_step_and_follows_it(
    redis_backend: Backend, step_name: Callable[[str], str]
) -> None:
    """Two workers on one Redis: while worker 1 runs a step, the user's next message reaches
    worker 2. It waits for the step's outcome (the claim's busy lease) and goes to the step the
    first one pointed to, instead of racing past it to the normal handlers."""
    log: list[str] = []
    release = asyncio.Event()
    started = asyncio.Event()

    @aiostep.persisted_step(step_name("relay.second"))
    async def second(message: Message, worker: str) -> None:
        log.append(f"{worker}: second step got {message.text}")

    @aiostep.persisted_step(step_name("relay.first"))
    async def first(message: Message, worker: str) -> None:
        log.append(f"{worker}: first step got {message.text}")
        started.set()
        await release.wait()  # a slow step: a database, an API call...
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, second)

    def worker(label: str) -> Dispatcher:
        return redis_worker(redis_backend, label, first, log.append)

    async with BotSimulator(worker("w1")) as one, BotSimulator(worker("w2")) as two:
        talk_one, talk_two = one.chat(), two.chat()
        await talk_one.send("/go")
        slow = asyncio.ensure_future(talk_one.send("a"))
        await started.wait()
        fast = asyncio.ensure_future(talk_two.send("b"))
        await asyncio.sleep(0.3)  # worker 2 must still be waiting, not answered by "normal"
        assert log == ["w1: first step got a"]
        release.set()
        await asyncio.gather(slow, fast)
        assert log == ["w1: first step got a", "w2: second step got b"]
