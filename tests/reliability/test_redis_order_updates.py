"""``RedisStateStorage(order_updates=True)``: every update of a conversation, not only those a
step takes, is handled one at a time and in ``update_id`` order across workers. Workers here are
Dispatchers with their own storage objects on one Redis (or one Redis Cluster), sharing this
test's event loop; a user's updates are dealt round-robin among them, concurrently."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.types import Message, Update
from redis.asyncio.connection import AbstractConnection

import aiostep
from aiostep.keys import ConversationKey, storage_key
from aiostep.storage.base import ClaimStatus
from aiostep.storage.redis import RedisStateStorage
from aiostep.testing import BotSimulator
from examples.signup import build

BURST = 5
_IDS = itertools.count(1_500_000_000)  # update ids of hand-made updates, above the simulator's


class Workers:
    """``n`` workers of one bot whose only handler logs ``(user, text)`` when it is done; the
    handler of message ``i`` of a burst takes longer the earlier it is, so updates that run at
    the same time finish in reverse."""

    def __init__(self, url: str, n: int, *, cluster: bool = False, **options: Any) -> None:
        self.log: dict[int, list[str]] = {}
        self.storages = [RedisStateStorage(url, cluster=cluster, **options) for _ in range(n)]
        self.sims = [BotSimulator(self._build(s), settle_timeout=30) for s in self.storages]

    def _build(self, storage: RedisStateStorage) -> Dispatcher:
        dp = Dispatcher()
        aiostep.setup(dp, storage=storage, step_lease=1.0, busy_wait=60)

        @dp.message()
        async def handle(message: Message) -> None:
            assert message.from_user is not None and message.text is not None
            await asyncio.sleep((BURST - int(message.text[1:])) * 0.02)
            self.log.setdefault(message.from_user.id, []).append(message.text)

        return dp

    async def __aenter__(self) -> Workers:
        for sim in self.sims:
            await sim.start()
        for storage in self.storages:
            await storage.peers(fresh=True)  # the first ones learn of the last ones now
        return self

    async def __aexit__(self, *exc: object) -> None:
        for sim in self.sims:
            await sim.aclose()

    async def burst(self, user: int) -> None:
        """Messages m0..m4 of ``user``, message i to worker i mod n, all at once."""
        talks = [sim.chat(sim.user(user)) for sim in self.sims]
        await asyncio.gather(*(talks[i % len(talks)].send(f"m{i}") for i in range(BURST)))


@pytest.mark.parametrize("where", ["redis", "redis-cluster"])
async def test_bursts_spread_over_three_workers_are_handled_in_order_exactly_once(
    request: pytest.FixtureRequest, where: str
) -> None:
    url = request.getfixturevalue("redis_url" if where == "redis" else "redis_cluster_url")
    users = range(9100, 9106)
    async with Workers(url, 3, cluster=where == "redis-cluster", order_updates=True) as workers:
        await asyncio.gather(*(workers.burst(user) for user in users))
    expected = [f"m{i}" for i in range(BURST)]
    assert {user: workers.log.get(user) for user in users} == {user: expected for user in users}


async def test_without_order_updates_updates_no_step_takes_run_at_once_across_workers(
    redis_url: str,
) -> None:
    """What the option adds: without it, a worker orders only its own updates of a
    conversation (and, across workers, those a step takes); the burst's updates that reached
    different workers run at the same time, so here they finish in reverse."""
    async with Workers(redis_url, 3) as workers:
        await workers.burst(9200)
    handled = workers.log[9200]
    assert sorted(handled) == [f"m{i}" for i in range(BURST)]  # each once
    assert handled != sorted(handled)
    # one worker's own updates stay in order (m0 before m3, m1 before m4)
    assert handled.index("m0") < handled.index("m3")
    assert handled.index("m1") < handled.index("m4")


def _message(sim: BotSimulator, user: int, text: str, update_id: int) -> Update:
    chat = {"id": user, "type": "private", "first_name": "U"}
    return Update.model_validate(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id % 1_000_000,
                "date": int(time.time()),
                "chat": chat,
                "from": {"id": user, "is_bot": False, "first_name": "U"},
                "text": text,
            },
        },
        context={"bot": sim.bot},
    )


async def test_an_earlier_update_that_reaches_redis_later_within_the_window_goes_first(
    redis_url: str,
) -> None:
    """Telegram numbers updates; the webhook deliveries may still overtake each other. Within
    ``order_window`` (0.1 s) of the later one's arrival, the earlier one is handled first."""
    async with Workers(redis_url, 2, order_updates=True) as workers:
        ids = [next(_IDS) for _ in range(BURST)]
        one, two = workers.sims
        feeds = []
        for i in reversed(range(BURST)):  # m4 reaches a worker first, m0 last
            sim = (one, two)[i % 2]
            feeds.append(asyncio.ensure_future(sim.feed(_message(sim, 9300, f"m{i}", ids[i]))))
            await asyncio.sleep(0.01)
        await asyncio.gather(*feeds)
    assert workers.log[9300] == [f"m{i}" for i in range(BURST)]


async def test_a_worker_that_died_holding_the_turn_blocks_the_conversation_for_one_lease(
    redis_url: str,
) -> None:
    """A dead worker's turn runs out with its lease (``step_lease``, 1 s here; the workers'
    ``busy_wait`` is 60 s and the simulator's settle timeout 30 s), and so does the queue
    entry of an update a dead worker was holding back."""
    key = storage_key(ConversationKey(9400, 9400, None, 42))
    async with Workers(redis_url, 2, order_updates=True) as workers:
        dead = workers.storages[1]
        assert await dead.take_turn(key, "dead", next(_IDS), 0.0, 1.0) is ClaimStatus.CLAIMED
        await workers.burst(9400)
        assert workers.log[9400] == [f"m{i}" for i in range(BURST)]
        # an update that waits (a lower id) and whose worker then dies
        assert await dead.take_turn(key, "dead-waiter", 1, 5.0, 1.0) is ClaimStatus.WAIT
        workers.log.clear()
        await workers.burst(9400)
        assert workers.log[9400] == [f"m{i}" for i in range(BURST)]


async def test_a_turn_is_given_back_after_each_update_and_costs_one_round_trip(
    redis_url: str,
) -> None:
    """Alone on Redis: the turn is taken in the routing's one claim, given back with one
    script call; nothing is left in Redis."""
    storage = RedisStateStorage(redis_url, order_updates=True)
    calls: list[str] = []
    # every command a connection sends, whichever path sent it (the storage's scripts skip
    # Redis.execute_command on its own client: aiostep/storage/redis_client.py)
    real = AbstractConnection.send_command

    async def counting(connection: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        calls.append(str(args[0]))
        await real(connection, *args, **kwargs)

    dp = Dispatcher()
    aiostep.setup(dp, storage=storage, order_window=0)

    @dp.message()
    async def handle(message: Message) -> None:
        pass

    async with BotSimulator(dp) as sim:
        talk = sim.chat(sim.user(9500))
        await talk.send("warm up")  # scripts loaded
        AbstractConnection.send_command = counting  # type: ignore[method-assign]
        try:
            await talk.send("hello")
        finally:
            AbstractConnection.send_command = real  # type: ignore[method-assign]
    assert calls == ["EVALSHA", "EVALSHA"]  # the claim (with the turn), the turn given back
    assert await storage.redis.keys("*") == []


async def test_a_wizard_on_ordered_workers_takes_answers_sent_back_to_back_in_order(
    redis_url: str,
) -> None:
    """Steps and the turn together: the step's claim is taken under the turn, in one call."""
    storages = [RedisStateStorage(redis_url, order_updates=True) for _ in range(3)]
    sims = [BotSimulator(build(storage), settle_timeout=30) for storage in storages]
    for sim in sims:
        await sim.start()
    for storage in storages:
        await storage.peers(fresh=True)
    try:
        talks = [sim.chat(sim.user(9600)) for sim in sims]
        await talks[0].send("/start")
        await asyncio.gather(talks[1].send("Alice"), talks[2].send("30"))
        await talks[2].click("Yes")  # on the worker that asked (its transcript has the button)
        assert "Welcome, Alice!" in "\n".join(talk.transcript() for talk in talks)
    finally:
        for sim in sims:
            await sim.aclose()


async def test_a_handler_parked_in_wait_for_gives_the_turn_back_so_the_answer_reaches_it(
    redis_url: str,
) -> None:
    storage = RedisStateStorage(redis_url, order_updates=True)
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage, busy_wait=60)
    answers: list[str] = []

    @dp.message()
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Your name?")
        answer = await aiostep.wait_for(message.from_user.id, timeout=5)
        answers.append(answer.text or "")

    async with BotSimulator(dp, settle_timeout=5) as sim:
        talk = sim.chat(sim.user(9700))
        await talk.send("hi")
        await talk.send("Alice")  # would wait for the parked handler's turn if it kept it
    assert answers == ["Alice"]
    assert await storage.redis.keys("*turn*") == []
