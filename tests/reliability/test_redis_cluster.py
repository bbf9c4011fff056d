"""Redis Cluster: a real local cluster of 3 masters (the session's ``aiostep_redis_cluster``),
the storage through a ``RedisCluster`` client. The conformance suite runs on it too
(``tests/aiostep/storage/test_conformance.py``, backend ``redis-cluster``)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from redis.asyncio.cluster import RedisCluster

import aiostep
import aiostep.storage.redis as redis_storage
import aiostep.storage.redis_handover as redis_handover
from aiostep.exceptions import StorageUnavailableError
from aiostep.storage.base import ClaimStatus, Patch
from aiostep.storage.redis import RedisStateStorage, _companion
from aiostep.testing import BotSimulator
from examples.signup import build
from tests.aiostep.test_deadlines import Names, quiz_bot
from tests.aiostep.test_wait_for_across_workers import worker

if TYPE_CHECKING:
    from conftest import Backend


@pytest.fixture
def fixed_names() -> Iterator[Names]:
    """One fresh step name per label, forgotten by the global registry after the test."""
    made: dict[str, str] = {}

    def make(label: str) -> str:
        return made.setdefault(label, f"test.{label}.{uuid.uuid4().hex[:8]}")

    yield make
    for name in made.values():
        aiostep.registry.unregister(name)


FLOW = [("send", "/start"), ("send", "Alice"), ("send", "30"), ("click", "Yes")]


@pytest.mark.parametrize("position", range(1, len(FLOW)))
async def test_a_wizard_conversation_survives_a_restart_on_a_redis_cluster(
    cluster_backend: Backend, position: int
) -> None:
    sim = cluster_backend.simulate(build)
    talk = sim.chat()
    for index, (kind, arg) in enumerate(FLOW):
        if index == position:
            before = await cluster_backend.record(talk)
            await sim.restart()
            assert await cluster_backend.record(talk) == before
        if kind == "send":
            await talk.send(arg)
        else:
            await talk.click(arg)
    talk.assert_last("Welcome, Alice!")
    assert await cluster_backend.record(talk) is None


async def test_a_cluster_client_passed_in_is_used_as_given(redis_cluster_url: str) -> None:
    client = RedisCluster.from_url(redis_cluster_url)
    storage = RedisStateStorage(client)
    try:
        await storage.write(42, Patch(state="s", data={"a": 1}))
        record = await storage.read(42)
        assert record is not None and record.data == {"a": 1}
    finally:
        await storage.close()
        await client.aclose()


@pytest.mark.parametrize("prefix", ["aiostep:", "bot{7}:"])
async def test_every_key_a_conversation_touches_is_in_its_record_slot(
    redis_cluster_url: str, prefix: str
) -> None:
    """The record and its turn (order_updates) hash to one slot, so the scripts that touch
    both run on a cluster (a cross-slot script fails with CROSSSLOT)."""
    storage = RedisStateStorage(redis_cluster_url, cluster=True, prefix=prefix, order_updates=True)
    try:
        for key in ("1:2:3", "100:-100", "x"):
            await storage.write(key, Patch(state="s", callback="a.b", accepts=",message,"))
            claim = await storage.claim(
                key, now=0.0, kind="message", is_command=False, owner="o", update_id=5, turn=True
            )
            assert claim.status is ClaimStatus.CLAIMED
            record_key = prefix + key
            turn_key = _companion(record_key, ":turn")
            client = storage.redis
            assert await client.exists(turn_key) == 1
            assert client.keyslot(turn_key) == client.keyslot(record_key)
            assert await storage.renew_turn(key, "o", 5.0)
            await storage.leave_turn(key, "o")
            assert await client.exists(turn_key) == 0  # nothing left behind
    finally:
        await storage.close()


def test_a_prefix_whose_braces_would_split_a_conversation_is_refused() -> None:
    with pytest.raises(ValueError, match=r"hash tag"):
        RedisStateStorage("redis://127.0.0.1:1/0", prefix="bot}:")


def _scripts() -> dict[str, str]:
    return {
        f"{module.__name__}.{name}": value
        for module in (redis_storage, redis_handover)
        for name, value in vars(module).items()
        if isinstance(value, str) and "redis.call" in value
    }


def test_every_script_names_its_keys_in_KEYS_and_builds_no_key_name() -> None:
    """Static: the key argument of every ``redis.call`` is ``KEYS[n]``, or a local or a shared
    function's key parameter bound to one (a key name built inside a script may live in
    another cluster slot, and Redis cannot route it)."""
    scripts = _scripts()
    names = {name.rsplit(".", 1)[1] for name in scripts}
    assert {"_WRITE", "_CLAIM", "_CLAIM_TOKEN", "_RENEW", "_TAKE_TURN", "_LEAVE_TURN"} <= names
    assert {"_PARK", "_TAKE", "_RELEASE", "_OFFER", "_ACCEPT", "_DECLINE", "_REVOKE"} <= names
    keyless = {"TIME", "PUBLISH"}  # PUBLISH names a channel, not a key
    for name, body in scripts.items():
        functions = dict(re.findall(r"local function (\w+)\((\w+)", body))  # name -> key param
        bound = set(re.findall(r"local (\w+) = KEYS\[\d\]", body)) | set(functions.values())
        for command, arg in re.findall(r"redis\.call\('(\w+)'(?:,\s*([^,)]+))?", body):
            if command not in keyless:
                assert re.fullmatch(r"KEYS\[\d\]", arg) or arg in bound, (name, command, arg)
        for function in functions:
            for arg in re.findall(rf"(?<!function ){function}\(([^,)]+)", body):
                assert re.fullmatch(r"KEYS\[\d\]", arg) or arg in bound, (name, function, arg)


def test_the_module_names_no_global_key_in_a_script() -> None:
    """The one global key (the workers' heartbeat set) is never handed to a script: the
    claim and the hand-over's withdrawal get the heartbeat's findings as arguments."""
    source = Path(redis_storage.__file__).read_text()
    assert '"workers"' in source  # the heartbeat still uses it
    handover_source = Path(redis_handover.__file__).read_text()
    for text in (source, handover_source):
        assert "ZCOUNT" not in text and "ZSCORE" not in text
    assert '"workers"' not in handover_source


async def test_an_unreachable_cluster_fails_the_call_with_storage_unavailable_naming_it() -> None:
    storage = RedisStateStorage("redis://127.0.0.1:1", cluster=True, socket_timeout=0.5)
    try:
        with pytest.raises(StorageUnavailableError, match=r"Redis Cluster 127\.0\.0\.1:1"):
            await storage.read(1)
    finally:
        await storage.close()


async def test_a_wait_for_gets_the_answer_another_worker_received_on_a_redis_cluster(
    redis_cluster_url: str,
) -> None:
    """The hand-over's scripts (registration, offer, accept with its outcome key) run in the
    conversation's slot, and the offer reaches the waiting worker's subscription."""
    log: list[str] = []
    dp_a, _ = worker(redis_cluster_url, log, "A", cluster=True)
    dp_b, storage_b = worker(redis_cluster_url, log, "B", cluster=True)
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        for user in (5201, 5202, 5203):  # conversations in different slots
            on_a, on_b = a.chat(a.user(user)), b.chat(b.user(user))
            await on_a.send("/ask")
            await on_b.send(f"blue {user}")
            await a.settle()
            assert log[-1] == f"A waited, got blue {user}"
            on_a.assert_last(f"got blue {user}")
            assert on_b.messages == []
            await on_b.send("next")
            assert log[-1] == "B normal next"
            record_key = f"aiostep:{user}:{user}@42"
            assert await storage_b.redis.exists(record_key) == 0


async def test_an_offer_to_a_dead_worker_on_a_redis_cluster_is_withdrawn_and_handled_here(
    redis_cluster_url: str,
) -> None:
    """On a cluster PUBLISH counts only one node's subscribers, so an offer nobody took is
    not taken as a sign of death: after ``ack_timeout`` a fresh heartbeat shows the waiting
    worker gone, and the registration is removed."""
    log: list[str] = []
    dp_a, storage_a = worker(redis_cluster_url, log, "A", cluster=True)
    dp_b, storage_b = worker(redis_cluster_url, log, "B", cluster=True)
    storage_b.handover.ack_timeout = 0.3
    async with BotSimulator(dp_a) as a, BotSimulator(dp_b) as b:
        on_a, on_b = a.chat(a.user(5204)), b.chat(b.user(5204))
        await on_a.send("/ask")
        # the "process" A is gone: no subscription, no heartbeat
        await storage_a.handover.close()
        beat, storage_a._beat = storage_a._beat, None
        assert beat is not None
        beat.cancel()
        await storage_b.redis.zrem("aiostep:workers", storage_a._worker)
        await on_b.send("blue")
        assert log == ["B normal blue"]
        assert await storage_b.redis.hget("aiostep:5204:5204@42", "waiter") is None


async def test_a_persisted_steps_timeout_fires_with_no_update_on_a_redis_cluster(
    cluster_backend: Backend, fixed_names: Names
) -> None:
    """The deadline goes into the index in the record write's pipeline (two slots: redis-py's
    cluster pipeline splits it by node), and the scheduler's take script moves it between the
    two index keys, which share one slot."""
    log: list[str] = []
    sim = BotSimulator(lambda: quiz_bot(cluster_backend.new_storage(), fixed_names, log))
    cluster_backend.sims.append(sim)
    clock = sim.use_fake_clock()
    talks = [sim.chat(sim.user(5300 + i)) for i in range(3)]  # records in different slots
    for talk in talks:
        await talk.send("/quiz")
    await clock.advance(59)
    assert log == []
    await clock.advance(1)
    assert log == ["timeout"] * 3
    for talk in talks:
        talk.assert_last("Too slow")
        assert await cluster_backend.record(talk) is None


async def test_two_workers_take_each_deadline_once_on_a_redis_cluster(
    redis_cluster_url: str,
) -> None:
    first = RedisStateStorage(redis_cluster_url, cluster=True)
    second = RedisStateStorage(redis_cluster_url, cluster=True)
    try:
        assert first.redis.keyslot(first.firing_key) == first.redis.keyslot(first.deadlines_key)
        for i in range(40):
            await first.write(
                f"{i}:{i}@42", Patch(callback="x.step", token="t", deadline=1000.0 + i, chat_id=i)
            )
        assert await first.next_deadline() == 1000.0
        a, b = await asyncio.gather(
            first.due_deadlines(2000.0, 2030.0, 30), second.due_deadlines(2000.0, 2030.0, 30)
        )
        assert len(a) + len(b) == len(set(a) | set(b)) == 40
        for key in a:
            await first.deadline_later(key, 3000.0)  # busy: looked at again later
        for key in b:
            await second.deadline_fired(key)
        assert await first.due_deadlines(2999.0, 3030.0, 100) == []
        assert sorted(await second.due_deadlines(3000.0, 3030.0, 100)) == sorted(a)
    finally:
        await first.close()
        await second.close()
