"""The three storages, their constructors, and the record API they share."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cachebox import TTLCache

from aiostep.storage import FileStateStorage, MemoryStateStorage


# --8<-- [start:memory]
def memory_demo() -> dict[str, object]:
    storage = MemoryStateStorage(TTLCache(10_000, 86_400))  # any cachebox cache; default unbounded
    storage.set_state(user_id=12345, state="awaiting_input")  # plain calls, no await
    storage.update_data(12345, name="Alice")
    assert storage.get_state(user_id=12345).current_state == "awaiting_input"
    return storage.get_data(12345)


# --8<-- [end:memory]


# --8<-- [start:file]
async def file_demo(path: Path) -> dict[str, object]:
    storage = FileStateStorage(path, ex=dt.timedelta(days=7))  # records live 7 days
    try:
        await storage.set_state(user_id=12345, state="awaiting_input")
        await storage.set_data(12345, {"name": "Alice"})
        await storage.update_data(12345, {"city": "Berlin"})  # merges, atomically
        return await storage.get_data(12345)  # {'name': 'Alice', 'city': 'Berlin'}
    finally:
        await storage.close()


# --8<-- [end:file]


# --8<-- [start:redis]
async def redis_demo(url: str) -> dict[str, object]:
    from aiostep.storage import RedisStateStorage  # pip install "aiostep[redis]"

    storage = RedisStateStorage(url, prefix="mybot:")  # or a redis.asyncio.Redis client
    try:
        await storage.update_data(12345, city="Berlin")  # one HSET of the changed items
        return await storage.get_data(12345)
    finally:
        await storage.close()  # closes the client only if the storage made it from a URL


# --8<-- [end:redis]


# --8<-- [start:json]
def json_only() -> str:
    storage = MemoryStateStorage()
    try:
        storage.set_data(12345, {"when": dt.datetime(2025, 1, 1)})
    except TypeError as exc:
        return str(exc)  # data['when'] is not JSON-serializable: datetime ...
    raise AssertionError("unreachable")


# --8<-- [end:json]
