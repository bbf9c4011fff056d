"""Fixtures of the core aiostep tests: unique step names and persistent storages to restart over."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

import aiostep
from aiostep.storage import BaseStorage, FileStateStorage


@pytest.fixture
def step_name() -> Iterator[Callable[[str], str]]:
    """Makes step names no other test uses; the global registry forgets them after the test.

    ``aiostep.registry`` is process-wide, so every test registers its steps under fresh names.
    """
    names: list[str] = []

    def make(label: str) -> str:
        name = f"test.{label}.{uuid.uuid4().hex[:8]}"
        names.append(name)
        return name

    yield make
    for name in names:
        aiostep.registry.unregister(name)


class Backend:
    """A persistent place (a journal file or a Redis database) and a way to open new storage
    objects over it, the way a restarted process would."""

    def __init__(self, kind: str, make: Callable[[], BaseStorage]) -> None:
        self.kind = kind
        self._make = make
        self.opened: list[BaseStorage] = []

    def new(self) -> BaseStorage:
        """A new storage object over the same file/database (what a new process opens)."""
        storage = self._make()
        self.opened.append(storage)
        return storage

    def __repr__(self) -> str:
        return f"<Backend {self.kind}>"


def _redis_backend(url: str) -> Backend:
    from aiostep.storage.redis import RedisStateStorage

    return Backend("redis", lambda: RedisStateStorage(url))


@pytest_asyncio.fixture(params=["file", "redis"])
async def persistent(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A File or Redis backend; every storage object opened on it is closed after the test."""
    if request.param == "file":
        path = tmp_path / "conversations.journal"
        backend = Backend("file", lambda: FileStateStorage(path, fsync=False))
    else:
        url: Any = request.getfixturevalue("redis_url")
        backend = _redis_backend(url)
    yield backend
    for storage in backend.opened:
        await storage.close()


@pytest_asyncio.fixture
async def redis_backend(redis_url: str) -> AsyncIterator[Backend]:
    """A Redis backend (for what only Redis promises: several workers, round trips)."""
    backend = _redis_backend(redis_url)
    yield backend
    for storage in backend.opened:
        await storage.close()
