"""On a shared storage (Redis) a claim marks the conversation busy until the step's outcome is
written, so another worker's update waits for it instead of racing past it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from aiostep.storage.base import ClaimStatus, Patch
from aiostep.storage.redis import RedisStateStorage

KEY = "10:20@42"
NOW = time.time()  # real time: a lone busy mark also sets the key's expiry on the server


@pytest.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisStateStorage]:
    storage = RedisStateStorage(redis_url)
    yield storage
    await storage.close()


async def park(storage: RedisStateStorage, name: str = "s.one") -> None:
    await storage.write(KEY, Patch(callback=name, token="t", accepts=",message,", chat_id=10))


async def claim(storage: RedisStateStorage, now: float, lease: float | None = None) -> ClaimStatus:
    result = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=lease)
    return result.status


async def test_redis_is_a_shared_storage(storage: RedisStateStorage) -> None:
    assert storage.shared


async def test_a_claim_with_a_lease_makes_the_next_claim_busy_until_it_ends(
    storage: RedisStateStorage,
) -> None:
    await park(storage)
    assert await claim(storage, NOW, lease=NOW + 30) is ClaimStatus.CLAIMED
    record = await storage.read(KEY)
    assert record is not None and record.busy == NOW + 30 and record.callback is None
    assert await claim(storage, NOW + 1) is ClaimStatus.BUSY
    assert await claim(storage, NOW + 31) is ClaimStatus.NONE  # a worker that died mid-step


async def test_writing_the_next_step_ends_the_busy_mark(storage: RedisStateStorage) -> None:
    await park(storage)
    await claim(storage, NOW, lease=NOW + 30)
    await park(storage, "s.two")
    record = await storage.read(KEY)
    assert record is not None and record.busy is None
    assert await claim(storage, NOW + 1) is ClaimStatus.CLAIMED


async def test_release_ends_only_its_own_lease(storage: RedisStateStorage) -> None:
    await park(storage)
    await claim(storage, NOW, lease=NOW + 30)
    await storage.release(KEY, NOW + 99)  # not ours: a later claim's
    assert await claim(storage, NOW + 1) is ClaimStatus.BUSY
    await storage.release(KEY, NOW + 30)
    assert await claim(storage, NOW + 1) is ClaimStatus.NONE
    assert await storage.read(KEY) is None  # nothing left behind


async def test_a_claim_without_a_lease_marks_nothing(storage: RedisStateStorage) -> None:
    await park(storage)
    assert await claim(storage, NOW) is ClaimStatus.CLAIMED
    assert await storage.read(KEY) is None


async def test_claim_token_can_take_a_lease_too(storage: RedisStateStorage) -> None:
    await park(storage)
    assert await storage.claim_token(KEY, "t", NOW + 30) is not None
    assert await claim(storage, NOW + 1) is ClaimStatus.BUSY


async def test_a_lone_busy_mark_expires_with_its_lease_and_a_write_keeps_the_record(
    storage: RedisStateStorage,
) -> None:
    now = time.time()
    await park(storage)
    await claim(storage, now, lease=now + 30)
    ttl = await storage.redis.pttl(storage.prefix + KEY)
    assert 0 < ttl <= 32_000  # a worker that dies mid-step leaves nothing forever
    await park(storage, "s.two")
    assert await storage.redis.pttl(storage.prefix + KEY) == -1
