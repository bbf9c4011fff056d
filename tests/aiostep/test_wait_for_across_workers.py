"""``wait_for`` across workers on Redis, in one process: each "worker" is its own Dispatcher,
Listen, in-process store and ``RedisStateStorage`` (so its own worker id and pub/sub channel),
as separate processes would be. The answer reaches the other worker; it is handed over to the
waiting one. (tests/reliability/test_wait_for_workers.py does this with real processes.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Hashable
from typing import Any

import pytest
from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import Message
from redis.asyncio import Redis

import aiostep
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from tests.aiostep.test_redis_round_trips import RoundTrips


class DictStore(aiostep.MetaStore):
    """One worker's in-process store (the root store is one per process, and here the
    workers share a process)."""

    def __init__(self) -> None:
        self.items: dict[Hashable, Any] = {}

    async def set_item(self, key: Hashable, value: Any) -> None:
        self.items[key] = value

    async def get_item(self, key: Hashable) -> Any:
        return self.items.get(key)

    async def pop_item(self, key: Hashable) -> Any:
        return self.items.pop(key)

    async def clear(self) -> AsyncIterator[Any]:
        while self.items:
            yield self.items.popitem()[1]


def worker(
    redis_url: str, log: list[str], name: str, timeout: float | None = None, **wait: Any
) -> tuple[Dispatcher, RedisStateStorage]:
    storage = RedisStateStorage(redis_url)
    dp = Dispatcher()
    aiostep.setup(dp, store=DictStore(), storage=storage)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Your colour?")
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=timeout, **wait)
        except TimeoutError:
            log.append(f"{name}: timed out")
            await message.answer("Too late")
            return
        except aiostep.WaitCancelled:
            log.append(f"{name}: cancelled")
            return
        log.append(f"{name} waited, got {answer.text}")
        assert answer.bot is message.bot  # a real Message, bound to this worker's bot
        await answer.answer(f"got {answer.text}")

    @dp.message(Command("cancel"))
    async def cancel(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.unregister_steps(message.from_user.id)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"{name} normal {message.text}")

    return dp, storage


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture
def round_trips(client: Redis) -> RoundTrips:
    return RoundTrips(client)


async def test_an_answer_reaching_another_worker_is_handed_to_the_waiting_worker(
    redis_url: str, client: Redis
) -> None:
    log: list[str] = []
    dp_a, _ = worker(redis_url, log, "A")
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5001)), b.chat(b.user(5001))
        await on_a.send("/ask")
        await on_b.send("blue")
        await a.settle()
        assert log == ["A waited, got blue"]
        on_a.assert_last("got blue")
        assert on_b.messages == []  # nothing ran on B
        # the registration is gone with the answer: the next message is B's own
        await on_b.send("green")
        assert log[-1] == "B normal green"
        assert await client.hkeys("aiostep:5001:5001@42") == []


async def test_an_answer_reaching_the_waiting_worker_itself_is_taken_there(
    redis_url: str, client: Redis
) -> None:
    log: list[str] = []
    dp_a, _ = worker(redis_url, log, "A")
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5002)), b.chat(b.user(5002))
        await on_a.send("/ask")
        await on_a.send("red")
        assert log == ["A waited, got red"]
        await on_b.send("later")
        assert log[-1] == "B normal later"
        assert await client.exists("aiostep:5002:5002@42") == 0


async def test_a_wait_that_times_out_removes_its_registration(
    redis_url: str, client: Redis
) -> None:
    log: list[str] = []
    dp_a, _ = worker(redis_url, log, "A", timeout=0.2)
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5003)), b.chat(b.user(5003))
        await on_a.send("/ask")
        assert await client.hget("aiostep:5003:5003@42", "waiter") is not None
        await asyncio.sleep(0.4)
        await a.settle()
        assert log == ["A: timed out"]
        assert await client.exists("aiostep:5003:5003@42") == 0
        await on_b.send("blue")
        assert log[-1] == "B normal blue"


async def test_a_cancelled_wait_removes_its_registration(redis_url: str, client: Redis) -> None:
    log: list[str] = []
    dp_a, _ = worker(redis_url, log, "A")
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5007)), b.chat(b.user(5007))
        await on_a.send("/ask")
        await on_a.send("/cancel")
        assert log == ["A: cancelled"]
        assert await client.hget("aiostep:5007:5007@42", "waiter") is None
        await on_b.send("blue")
        assert log[-1] == "B normal blue"


async def test_an_answer_the_remote_waiters_filter_refuses_goes_to_the_normal_handlers(
    redis_url: str,
) -> None:
    log: list[str] = []
    dp_a, _ = worker(redis_url, log, "A", filter=F.text.isdigit())
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5004)), b.chat(b.user(5004))
        await on_a.send("/ask")
        await on_b.send("blue")  # refused by A's filter: B routes it, and the wait goes on
        assert log == ["B normal blue"]
        await on_b.send("42")
        await a.settle()
        assert log == ["B normal blue", "A waited, got 42"]


async def test_an_answer_for_a_waiter_whose_worker_died_goes_to_the_normal_handlers(
    redis_url: str, client: Redis
) -> None:
    """A worker that vanished without a word: its subscription is gone, so the offer reaches
    nobody, and the update is routed where it arrived; the registration is removed."""
    log: list[str] = []
    dp_a, storage_a = worker(redis_url, log, "A")
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_b) as b:
        a = BotSimulator(dp_a)
        on_a, on_b = a.chat(a.user(5005)), b.chat(b.user(5005))
        await on_a.send("/ask")
        await storage_a.handover.close()  # the "process" is gone: nobody listens for it
        await on_b.send("blue")
        assert log == ["B normal blue"]
        assert await client.hget("aiostep:5005:5005@42", "waiter") is None
        await a.aclose()


async def test_an_update_with_nothing_pending_costs_no_extra_round_trip_with_handover(
    redis_url: str, round_trips: RoundTrips
) -> None:
    """Another worker's waiter is looked for by the claim script the update runs anyway."""
    log: list[str] = []
    dp_a, _ = worker(redis_url, log, "A")
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5006)), b.chat(b.user(5006))
        await on_a.send("/ask")
        await on_b.send("blue")  # warm up: handover scripts loaded, subscriptions open
        await a.settle()
        await on_b.send("hello")
        assert await round_trips.count(lambda: on_b.send("hello again")) == 1, round_trips.last
        assert round_trips.last[0].startswith("EVALSHA")
        assert log == ["A waited, got blue", "B normal hello", "B normal hello again"]


async def later(action: Awaitable[Any], delay: float) -> None:
    await asyncio.sleep(delay)
    await action


async def test_two_answers_at_once_on_both_workers_give_the_waiter_exactly_one(
    redis_url: str, client: Redis
) -> None:
    """One answer reaches the waiting worker, the other the second worker, at the same time:
    the waiter takes one of them, and the other goes to the normal handlers of its worker."""
    for user in range(5100, 5120):
        log: list[str] = []
        dp_a, _ = worker(redis_url, log, "A")
        dp_b, _ = worker(redis_url, log, "B")
        async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
            on_a, on_b = a.chat(a.user(user)), b.chat(b.user(user))
            await on_a.send("/ask")
            # the local answer a little later each time: either may come first
            await asyncio.gather(later(on_a.send("here"), (user % 10) * 0.002), on_b.send("there"))
            await a.settle()
            waited = [line for line in log if "waited" in line]
            assert len(waited) == 1, log
            assert sorted(log) in (
                ["A waited, got here", "B normal there"],
                ["A normal here", "A waited, got there"],
            ), log
            assert await client.hget(f"aiostep:{user}:{user}@42", "waiter") is None


async def test_an_offer_its_worker_does_not_acknowledge_is_withdrawn_and_handled_here(
    redis_url: str, client: Redis
) -> None:
    """The waiting worker is alive (it beats) but does not answer the offer in time: the
    offering worker withdraws it and routes the update itself; the waiter stays registered."""
    log: list[str] = []
    dp_a, storage_a = worker(redis_url, log, "A")
    dp_b, storage_b = worker(redis_url, log, "B")
    storage_b.handover.ack_timeout = 0.3
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5008)), b.chat(b.user(5008))
        await on_a.send("/ask")
        reader = storage_a.handover._reader
        assert reader is not None
        reader.cancel()  # subscribed, but reads nothing: a stalled event loop
        await on_b.send("blue")
        assert log == ["B normal blue"]
        registration = await client.hget("aiostep:5008:5008@42", "waiter")
        assert registration is not None
        assert await client.hget("aiostep:5008:5008@42", "waiter_offer") is None


async def test_a_waiter_whose_worker_stopped_beating_is_dropped(
    redis_url: str, client: Redis
) -> None:
    """A registration left by a worker that no longer announces itself (its heartbeat is
    older than three beats): the claim removes it and the update is routed normally."""
    log: list[str] = []
    dp_b, _ = worker(redis_url, log, "B")
    async with BotSimulator(dp_b) as b:
        await client.hset(
            "aiostep:5009:5009@42", mapping={"waiter": "gone:token", "waiter_accepts": ",message,"}
        )
        await client.zadd("aiostep:workers", {"gone": 1.0})  # seen long ago
        await b.chat(b.user(5009)).send("blue")
        assert log == ["B normal blue"]
        assert await client.exists("aiostep:5009:5009@42") == 0
