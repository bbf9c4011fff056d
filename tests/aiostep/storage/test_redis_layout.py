"""How a record lies in its Redis hash: a step's kwargs one field per item (``k:<name>``), as
data has (``d:<name>``), so that short values keep the hash in Redis' compact encoding; and a
record written before that (one ``kwargs`` field, as 0.4.0 wrote it) is still read, replaced
and dropped whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aiostep.exceptions import RecordTooLargeError
from aiostep.storage.base import Patch
from aiostep.storage.redis import RedisStateStorage

KEY = "100:7@42"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    made = Redis.from_url(redis_url, decode_responses=True)
    yield made
    await made.aclose()


@pytest.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisStateStorage]:
    made = RedisStateStorage(redis_url)
    yield made
    await made.close()


async def test_a_step_s_kwargs_lie_one_field_per_item_and_are_replaced_whole(
    storage: RedisStateStorage, client: Redis
) -> None:
    await storage.write(
        KEY, Patch(callback="s.one", kwargs={"a": 1, "long": "x" * 50, "h": ["NAME+name"]})
    )
    fields = await client.hgetall(storage._k(KEY))
    assert {f: v for f, v in fields.items() if f.startswith("k:")} == {
        "k:a": "1",
        "k:long": json.dumps("x" * 50),
        "k:h": '["NAME+name"]',
    }
    assert "kwargs" not in fields
    assert await client.object("encoding", storage._k(KEY)) in ("ziplist", "listpack")
    record = await storage.read(KEY)
    assert record is not None and record.kwargs == {"a": 1, "long": "x" * 50, "h": ["NAME+name"]}

    await storage.write(KEY, Patch(callback="s.two", kwargs={"b": 2}))  # the next step
    fields = await client.hgetall(storage._k(KEY))
    assert sorted(f for f in fields if f.startswith("k:")) == ["k:b"]
    record = await storage.read(KEY)
    assert record is not None and record.kwargs == {"b": 2}

    await storage.write(KEY, Patch(state="S", callback=None))  # the step ends, the state stays
    fields = await client.hgetall(storage._k(KEY))
    assert not [f for f in fields if f.startswith("k:")] and fields["state"] == "S"


async def test_a_record_with_one_kwargs_field_is_read_and_its_step_replaced_and_dropped(
    storage: RedisStateStorage, client: Redis
) -> None:
    # as aiostep 0.4.0 wrote a pending step
    await client.hset(
        storage._k(KEY),
        mapping={
            "callback": "s.old",
            "kwargs": '{"n":1,"w":"old"}',
            "token": "t0",
            "accepts": ",message,",
            "chat_id": "100",
        },
    )
    record = await storage.read(KEY)
    assert record is not None and record.kwargs == {"n": 1, "w": "old"}

    await storage.write(KEY, Patch(callback="s.new", kwargs={"m": 2}))
    fields = await client.hgetall(storage._k(KEY))
    assert "kwargs" not in fields and fields["k:m"] == "2"
    record = await storage.read(KEY)
    assert record is not None and record.kwargs == {"m": 2}

    # a claim that finds the step expired drops it whole, kwargs fields too
    await storage.write(KEY, Patch(deadline=1.0))
    claim = await storage.claim(KEY, now=10.0, kind="message", is_command=False)
    assert claim.record is not None and claim.record.kwargs == {"m": 2}
    assert await client.exists(storage._k(KEY)) == 0  # nothing but the step was there


async def test_the_size_limit_counts_kwargs_as_one_json_object(
    storage: RedisStateStorage,
) -> None:
    """A merge measured in the script (data given without kwargs): the stored kwargs fields
    count as the JSON object they make, as `patch_size` measures it."""
    kwargs = {"a": "x" * 20, "b": [1, 2]}
    await storage.write(KEY, Patch(callback="s.one", kwargs=kwargs))
    as_json = len(json.dumps(kwargs, separators=(",", ":")))
    data = {"d": "y"}
    data_json = len(json.dumps(data, separators=(",", ":")))
    storage.max_record_bytes = as_json + data_json  # exactly fits
    await storage.write(KEY, Patch(data_update=data))
    storage.max_record_bytes = as_json + data_json + 3  # {"d":"y","e":""} would not fit
    with pytest.raises(RecordTooLargeError) as excinfo:
        await storage.write(KEY, Patch(data_update={"e": "zz"}))
    assert excinfo.value.size == as_json + len('{"d":"y","e":"zz"}')
