"""Several workers on one Redis, as a webhook deployment behind a load balancer runs them: each
worker is its own Dispatcher, Listen and Redis storage object (its own process, as far as
aiostep can tell), and a user's updates are dealt round-robin among them."""

from __future__ import annotations

import asyncio
from enum import Enum, auto
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import CommandStart
from aiogram.types import Message

import aiostep
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step, v

finished: list[tuple[str, int]] = []


class Burst(Wizard, name="reliability.burst"):
    class State(Enum):
        NAME = auto()
        AGE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        await asyncio.sleep(0.005)  # a little real work
        self.data["age"] = value

    @step(State.CONFIRM, prompt="{name}, {age}. Correct?", choices={"yes": "Yes", "no": "No"})
    async def confirm(self, value: str) -> Any:
        return self.finish() if value == "yes" else self.State.NAME

    async def on_finish(self) -> None:
        finished.append((self.data["name"], self.data["age"]))


def worker(redis_url: str, **listen: Any) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=RedisStateStorage(redis_url), **listen)
    Burst.setup(dp)

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await Burst.start(message)

    return dp


@pytest.mark.parametrize("workers", [2, 3, 4])
async def test_answers_sent_back_to_back_are_taken_in_order_on_any_number_of_workers(
    redis_url: str, workers: int
) -> None:
    """Each user sends their three answers 0 ms apart; worker i gets answer i (mod N). Before
    ordering across workers, most users were left stuck mid-wizard ("How old are you?"
    answered with the name)."""
    finished.clear()
    users = 15  # the workers share this test's one event loop: keep it from saturating
    sims = [BotSimulator(worker(redis_url), settle_timeout=60) for _ in range(workers)]
    for sim in sims:
        await sim.start()
    try:
        talks = [[sim.chat(sim.user(5000 + u)) for u in range(users)] for sim in sims]

        async def user(u: int) -> None:
            await talks[0][u].send("/start")
            answers = [f"User{u}", str(20 + u), "Yes"]
            # dealt round-robin, 0 ms apart: each send starts before the previous one is handled
            await asyncio.gather(
                *(talks[(i + 1) % workers][u].send(text) for i, text in enumerate(answers))
            )

        await asyncio.gather(*(user(u) for u in range(users)))
        expected = sorted((f"User{u}", 20 + u) for u in range(users))
        if sorted(finished) != expected:
            stuck = [u for u in range(users) if (f"User{u}", 20 + u) not in finished]
            seen = "\n".join(talks[w][stuck[0]].transcript() for w in range(workers))
            pytest.fail(f"{len(stuck)} users did not finish right; user {stuck[0]}:\n{seen}")
    finally:
        for sim in sims:
            await sim.aclose()


async def test_a_worker_alone_on_redis_takes_no_ordering_round_trip(redis_url: str) -> None:
    storage = RedisStateStorage(redis_url)
    try:
        assert await storage.peers() == 1
        other = RedisStateStorage(redis_url)
        try:
            assert await other.peers() == 2
        finally:
            await other.close()
        await storage._announce()
        assert await storage.peers() == 1  # the other one said goodbye
    finally:
        await storage.close()


@pytest.mark.slow
async def test_a_step_longer_than_the_lease_keeps_its_claim_by_renewing_it(redis_url: str) -> None:
    """The lease is short (1 s here) so a dead worker frees the conversation quickly; a live one
    renews it while a long step runs, so no other worker takes the step over meanwhile."""
    log: list[str] = []

    @aiostep.persisted_step("reliability.renew.slow")
    async def slow(message: Message, worker: str) -> None:
        log.append(f"{worker}: slow step got {message.text}")
        await asyncio.sleep(2.5)
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, after)

    @aiostep.persisted_step("reliability.renew.after")
    async def after(message: Message, worker: str) -> None:
        log.append(f"{worker}: next step got {message.text}")

    def build(label: str) -> Dispatcher:
        dp = Dispatcher()
        aiostep.setup(dp, storage=RedisStateStorage(redis_url), step_lease=1.0)

        @dp.message(CommandStart())
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, slow)

        @dp.message()
        async def normal(message: Message) -> None:
            log.append(f"{label}: normal handler got {message.text}")

        dp["worker"] = label
        return dp

    async with BotSimulator(build("w1")) as one, BotSimulator(build("w2")) as two:
        user = one.user(7000)
        talk_one, talk_two = one.chat(user), two.chat(two.user(7000))
        await talk_one.send("/start")
        first = asyncio.ensure_future(talk_one.send("a"))
        await asyncio.sleep(0.3)
        second = asyncio.ensure_future(talk_two.send("b"))
        await asyncio.gather(first, second)
    assert log == ["w1: slow step got a", "w2: next step got b"]
