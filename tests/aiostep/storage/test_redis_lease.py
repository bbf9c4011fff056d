"""On a shared storage (Redis) a claim marks the step claimed for a lease: another worker's
update waits for the step's outcome instead of racing past it, a running step renews its lease,
and a worker that died lets the lease run out, so the step (kept whole) is offered again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiostep.exceptions import ClaimLostError
from aiostep.storage.base import ClaimStatus, Patch
from aiostep.storage.redis import RedisStateStorage

KEY = "10:20@42"
NOW = time.time()  # real time: a lone busy mark also sets the key's expiry on the server


@pytest.fixture(autouse=True)
def _now() -> None:
    """Real time as each test starts, not as the module was collected: a lease of ``NOW + 30``
    must not have run out because the suite took more than 30 s to get here."""
    global NOW
    NOW = time.time()


@pytest.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisStateStorage]:
    storage = RedisStateStorage(redis_url)
    yield storage
    await storage.close()


async def park(storage: RedisStateStorage, name: str = "s.one") -> None:
    await storage.write(KEY, Patch(callback=name, token="t", accepts=",message,", chat_id=10))


async def claim(
    storage: RedisStateStorage,
    now: float,
    lease: float | None = None,
    owner: str | None = None,
    **extra: Any,
) -> ClaimStatus:
    result = await storage.claim(
        KEY, now=now, kind="message", is_command=False, lease=lease, owner=owner, **extra
    )
    return result.status


async def test_redis_is_a_shared_storage(storage: RedisStateStorage) -> None:
    assert storage.shared


async def test_a_claim_with_a_lease_makes_the_next_claim_busy_until_the_lease_runs_out(
    storage: RedisStateStorage,
) -> None:
    await park(storage)
    assert await claim(storage, NOW, lease=NOW + 5, owner="w1") is ClaimStatus.CLAIMED
    record = await storage.read(KEY)
    assert record is not None and record.busy == NOW + 5 and record.claim == "w1"
    assert record.callback == "s.one"  # the step is kept while it runs
    assert await claim(storage, NOW + 1) is ClaimStatus.BUSY
    # a worker that died mid-step: once its lease ran out the step is offered again
    assert await claim(storage, NOW + 6, lease=NOW + 11, owner="w2") is ClaimStatus.CLAIMED
    with pytest.raises(ClaimLostError):
        await storage.write(KEY, Patch(callback="s.two", owner="w1"))


async def test_renewing_keeps_a_long_step_claimed(storage: RedisStateStorage) -> None:
    await park(storage)
    await claim(storage, NOW, lease=NOW + 5, owner="w1")
    assert await storage.renew(KEY, "w1", NOW + 20)
    assert await claim(storage, NOW + 10) is ClaimStatus.BUSY
    assert not await storage.renew(KEY, "someone", NOW + 99)
    assert (await storage.read(KEY)).busy == NOW + 20  # type: ignore[union-attr]


async def test_writing_the_next_step_ends_the_claim(storage: RedisStateStorage) -> None:
    await park(storage)
    await claim(storage, NOW, lease=NOW + 30, owner="w1")
    await storage.write(KEY, Patch(callback="s.two", token="t2", owner="w1"))
    record = await storage.read(KEY)
    assert record is not None and (record.busy, record.claim) == (None, None)
    assert await claim(storage, NOW + 1) is ClaimStatus.CLAIMED


async def test_ending_a_claim_without_an_outcome_leaves_nothing_behind(
    storage: RedisStateStorage,
) -> None:
    await park(storage)
    await claim(storage, NOW, lease=NOW + 30, owner="w1")
    assert not await storage.end_claim(KEY, "w2")  # not ours
    assert await claim(storage, NOW + 1) is ClaimStatus.BUSY
    assert await storage.end_claim(KEY, "w1")
    assert await claim(storage, NOW + 1) is ClaimStatus.NONE
    assert await storage.read(KEY) is None  # nothing left behind


async def test_claim_token_can_take_a_lease_too(storage: RedisStateStorage) -> None:
    # claim_token reads the clock itself (a timer calls it): the lease runs from now, not from
    # when this module was imported
    now = time.time()
    await park(storage)
    assert await storage.claim_token(KEY, "t", now + 30, "w1") is not None
    assert await claim(storage, now + 1) is ClaimStatus.BUSY
    assert await storage.claim_token(KEY, "t") is None  # a timer leaves a running step alone


async def test_updates_of_a_conversation_are_taken_in_update_id_order(
    storage: RedisStateStorage, redis_url: str
) -> None:
    """Update 6 reached Redis before update 5 (two workers, a burst): 6 waits for 5."""
    await storage.peers()  # both workers announce themselves, as setup() does at startup
    other_worker = RedisStateStorage(redis_url)
    assert await other_worker.peers() == 2
    assert await storage.peers(fresh=True) == 2  # else learnt at this worker's next heartbeat
    await park(storage)
    window = 0.05
    assert await claim(storage, NOW, NOW + 5, "u6", update_id=6, window=window) in (
        ClaimStatus.WAIT,
    )
    assert await claim(storage, NOW, NOW + 5, "u5", update_id=5, window=window) in (
        ClaimStatus.WAIT,
    )
    await asyncio.sleep(window * 2)
    assert await claim(storage, NOW, NOW + 5, "u6", update_id=6, window=window) in (
        ClaimStatus.BUSY,
    )
    assert await claim(storage, NOW, NOW + 5, "u5", update_id=5, window=window) in (
        ClaimStatus.CLAIMED,
    )
    await storage.write(KEY, Patch(callback="s.two", token="t2", owner="u5"))
    assert await claim(storage, NOW, NOW + 5, "u6", update_id=6, window=window) in (
        ClaimStatus.CLAIMED,
    )
    record = await storage.read(KEY)
    assert record is not None and record.seq == 5 and record.inflight == 6
    await other_worker.close()


async def test_a_worker_alone_is_not_held_for_the_ordering_window(
    storage: RedisStateStorage,
) -> None:
    await park(storage)
    assert await claim(storage, NOW, NOW + 5, "u6", update_id=6, window=5.0) in (
        ClaimStatus.CLAIMED,
    )
