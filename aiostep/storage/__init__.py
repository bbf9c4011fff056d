"""State storages: one async interface, three backends.

- [`MemoryStateStorage`][aiostep.MemoryStateStorage]: in this process (cachebox); fastest; lost on
  restart.
- [`FileStateStorage`][aiostep.FileStateStorage]: a journal file (aiofiles); survives restarts; one
  process.
- [`RedisStateStorage`][aiostep.storage.RedisStateStorage]: Redis (redis.asyncio); survives
  restarts; several workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiostep.storage.base import BaseStorage, StateContext, as_async
from aiostep.storage.file import FileStateStorage
from aiostep.storage.memory import AsyncMemoryStateStorage, MemoryStateStorage

if TYPE_CHECKING:
    from aiostep.storage.redis import RedisStateStorage

__all__ = [
    "AsyncMemoryStateStorage",
    "BaseStorage",
    "FileStateStorage",
    "MemoryStateStorage",
    "RedisStateStorage",
    "StateContext",
    "as_async",
]


def __getattr__(name: str) -> Any:
    # redis is an optional extra: import it only when asked for
    if name == "RedisStateStorage":
        from aiostep.storage.redis import RedisStateStorage

        return RedisStateStorage
    raise AttributeError(f"module 'aiostep.storage' has no attribute {name!r}")
