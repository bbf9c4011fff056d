"""The client `RedisStateStorage` builds from a URL, and how its scripts talk to Redis: a burst
beyond the pool waits for a connection (and a pool that stays full fails naming Redis), a
Redis that forgot the scripts gets them again, and a client passed in that decodes responses
reads the same records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aiostep.exceptions import StorageUnavailableError
from aiostep.storage.base import ClaimStatus, Patch
from aiostep.storage.redis import RedisStateStorage
from aiostep.storage.redis_client import QuickBlockingPool, QuickConnection

KEY = "10:20@42"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    made = Redis.from_url(redis_url)
    yield made
    await made.aclose()


async def park(storage: RedisStateStorage, key: str = KEY) -> None:
    await storage.write(
        key, Patch(callback="s.one", token="t", accepts=",message,", chat_id=10, kwargs={"n": 1})
    )


async def test_a_storage_made_from_a_url_uses_the_quick_pool_and_connections(
    redis_url: str,
) -> None:
    storage = RedisStateStorage(redis_url, max_connections=7, pool_timeout=3.0)
    try:
        pool = storage.redis.connection_pool
        assert isinstance(pool, QuickBlockingPool)
        assert pool.connection_class is QuickConnection
        assert pool.max_connections == 7
        assert pool.timeout == 3.0
    finally:
        await storage.close()


async def test_a_burst_beyond_the_pool_waits_for_a_free_connection(redis_url: str) -> None:
    storage = RedisStateStorage(redis_url, max_connections=2)
    try:
        keys = [f"{n}:{n}@42" for n in range(40)]
        await asyncio.gather(*(park(storage, key) for key in keys))
        claims = await asyncio.gather(
            *(storage.claim(key, now=time.time(), kind="message", is_command=False) for key in keys)
        )
        assert [claim.status for claim in claims] == [ClaimStatus.CLAIMED] * len(keys)
        assert all(claim.record and claim.record.kwargs == {"n": 1} for claim in claims)
        pool = storage.redis.connection_pool
        assert isinstance(pool, QuickBlockingPool)
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 2
    finally:
        await storage.close()


async def test_a_pool_that_stays_full_fails_the_call_naming_redis(redis_url: str) -> None:
    storage = RedisStateStorage(redis_url, max_connections=1, pool_timeout=0.2)
    pool = storage.redis.connection_pool
    held = await pool.get_connection()  # the only connection, busy elsewhere
    try:
        with pytest.raises(StorageUnavailableError, match=r"Redis at 127\.0\.0\.1:"):
            await storage.claim(KEY, now=time.time(), kind="message", is_command=False)
        await pool.release(held)
        held = None
        await park(storage)  # free again: the storage works on
        assert (await storage.read(KEY)) is not None
    finally:
        if held is not None:
            await pool.release(held)
        await storage.close()


async def test_a_redis_that_forgot_the_scripts_gets_them_again(
    redis_url: str, client: Redis
) -> None:
    storage = RedisStateStorage(redis_url)
    try:
        await park(storage)
        await client.script_flush()  # a restarted Redis, or SCRIPT FLUSH
        claim = await storage.claim(KEY, now=time.time(), kind="message", is_command=False)
        assert claim.status is ClaimStatus.CLAIMED
        assert claim.record is not None and claim.record.kwargs == {"n": 1}
        await client.script_flush()
        await storage.write(KEY, Patch(callback=None, owner=claim.owner or ""))
        assert await storage.read(KEY) is None  # the step's outcome ended the conversation
    finally:
        await storage.close()


async def test_a_client_that_decodes_responses_reads_the_same_records(redis_url: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    storage = RedisStateStorage(client)
    try:
        await storage.write(KEY, Patch(state="S", data={"name": "Zoë", "age": 3}, chat_id=10))
        await park(storage)
        record = await storage.read(KEY)
        assert record is not None
        assert (record.current_state, record.callback, record.chat_id) == ("S", "s.one", 10)
        assert record.data == {"name": "Zoë", "age": 3}
        claim = await storage.claim(KEY, now=time.time(), kind="message", is_command=False)
        assert claim.status is ClaimStatus.CLAIMED
        assert claim.record is not None and claim.record.data == record.data
        before = await storage.write(KEY, Patch(callback=None, owner=claim.owner or ""))
        assert before is not None and before.claim == claim.owner
    finally:
        await storage.close()
        await client.aclose()


# -- what an update's round trip costs the client: each shortcut, shown to be taken ----------
async def test_a_free_connection_is_handed_out_while_the_pool_condition_is_held(
    redis_url: str,
) -> None:
    """redis-py's blocking pool takes its condition for every connection; this pool only
    when none is free (or someone waits)."""
    pool = QuickBlockingPool.from_url(redis_url, max_connections=2)
    try:
        await pool.release(await pool.get_connection())  # one free connection
        async with pool._condition:
            async with asyncio.timeout(1):
                connection = await pool.get_connection()
        await pool.release(connection)
    finally:
        await pool.aclose()


async def test_a_small_command_is_written_without_a_write_timeout_task(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``socket_timeout`` redis-py wraps each write in ``asyncio.wait_for`` (a task on
    Python 3.11); a small command on a `QuickConnection` is written directly."""
    import redis.asyncio.connection as connection_module

    storage = RedisStateStorage(redis_url, socket_timeout=5.0)
    try:
        await park(storage)  # connected
        waited: list[object] = []
        wait_for = asyncio.wait_for

        def counting(awaitable: object, timeout: float | None) -> object:
            waited.append(awaitable)
            return wait_for(awaitable, timeout)  # type: ignore[arg-type]

        monkeypatch.setattr(connection_module.asyncio, "wait_for", counting)
        claim = await storage.claim(KEY, now=time.time(), kind="message", is_command=False)
        monkeypatch.undo()
        assert claim.status is ClaimStatus.CLAIMED
        assert waited == []
    finally:
        await storage.close()


async def test_scripts_go_around_execute_command_on_the_storages_own_client_only(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripts on the client built from a URL skip ``Redis.execute_command``'s per-command
    extras; a client passed in is used through redis-py's API as it is."""
    executed: list[object] = []
    execute_command = Redis.execute_command

    async def counting(self: Redis, *args: object, **options: object) -> object:
        executed.append(args[0])
        return await execute_command(self, *args, **options)

    own = RedisStateStorage(redis_url)
    passed_client = Redis.from_url(redis_url)
    passed = RedisStateStorage(passed_client)
    try:
        for storage in (own, passed):
            await park(storage)  # scripts loaded
        monkeypatch.setattr(Redis, "execute_command", counting)
        await own.claim(KEY, now=time.time(), kind="message", is_command=False)
        assert executed == []
        await passed.claim("11:21@42", now=time.time(), kind="message", is_command=False)
        assert executed == ["EVALSHA"]
    finally:
        monkeypatch.undo()
        await own.close()
        await passed.close()
        await passed_client.aclose()


async def test_an_update_s_scripts_take_one_argument_and_answer_one_string(
    redis_url: str, client: Redis
) -> None:
    """redis-py packs a command's arguments and parses a reply's elements one by one in
    Python: the claim and the write send their arguments as one JSON array and answer with
    one JSON string, however large the record."""
    storage = RedisStateStorage(redis_url)
    try:
        await park(storage, "1:1@42")  # connected, the scripts loaded
        await storage.claim("1:1@42", now=time.time(), kind="message", is_command=False)
        sent: list[list[str]] = []
        async with client.monitor() as monitor:
            await client.echo("start")
            await storage.write(
                KEY,
                Patch(state="S", data={"a": 1, "b": [2]}, callback="s.one", token="t", chat_id=1),
            )
            claim = await storage.claim(KEY, now=time.time(), kind="message", is_command=False)
            await client.echo("end")
            started = False
            while True:
                entry = await monitor.next_command()
                command = str(entry["command"])
                if command == "ECHO start":
                    started = True
                elif command == "ECHO end":
                    break
                elif started and entry["client_type"] != "lua":
                    sent.append(command.split(" "))
        # EVALSHA sha numkeys key packed-arguments
        assert [(words[0], words[2], len(words)) for words in sent] == [
            ("EVALSHA", "1", 5),
            ("EVALSHA", "1", 5),
        ]
        assert claim.record is not None and claim.record.data == {"a": 1, "b": [2]}
        raw = await client.evalsha(
            storage._claim_script.sha,
            1,
            storage._k(KEY),
            '["0","message","0","","","o","","0.0","1.0","1","","","w",""]',
        )
        assert isinstance(raw, bytes)  # one bulk string, not a table
    finally:
        await storage.close()
