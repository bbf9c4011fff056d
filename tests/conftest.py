"""Shared fixtures. Redis, the simulator and the fake clock come from the test kit's own pytest
plugin (``aiostep.testing.pytest_plugin``, loaded by its entry point) as ``aiostep_redis_url``,
``aiostep_simulator`` and ``aiostep_clock``. The plugin keeps its fixtures to the ``aiostep_``
prefix so as not to inject generic names into every project that installs aiostep; this project's
tests use the short names (``redis_url``, ``bot_simulator``, ``fake_clock``), defined here as
aliases because they are this project's choice, not the plugin's.

Wizard and example tests run on every storage: memory, a file journal and a real Redis.

The ``backend`` fixture is parametrized over the three; ``persistent_backend`` over File and
Redis only (what survives ``sim.restart()``). ``backend.factory(setup)`` is the Dispatcher
factory a ``BotSimulator`` needs: every call builds a fresh ``Dispatcher`` and a fresh storage
object over the same file / Redis database, as a restarted process would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiogram import Dispatcher

from aiostep import FileStateStorage, MemoryStateStorage
from aiostep.keys import ConversationKey, storage_key
from aiostep.storage import StateContext, as_async
from aiostep.testing import BotSimulator, Conversation, FakeClock
from aiostep.testing.pytest_plugin import SimulatorFactory

Setup = Callable[[Dispatcher, Any], None]


@pytest.fixture
def redis_url(aiostep_redis_url: str) -> str:
    """The plugin's ``aiostep_redis_url``: an empty database on the session's redis-server."""
    return aiostep_redis_url


@pytest.fixture
def redis_cluster_url(aiostep_redis_cluster_url: str) -> str:
    """The plugin's ``aiostep_redis_cluster_url``: an emptied 3-master local Redis Cluster."""
    return aiostep_redis_cluster_url


@pytest.fixture
def bot_simulator(aiostep_simulator: SimulatorFactory) -> SimulatorFactory:
    """The plugin's ``aiostep_simulator``: simulators closed after the test."""
    return aiostep_simulator


@pytest.fixture
def fake_clock(aiostep_clock: FakeClock) -> FakeClock:
    """The plugin's ``aiostep_clock``: a FakeClock installed for the test."""
    return aiostep_clock


@dataclass
class Backend:
    """One storage backend: makes storage objects and simulators over the same place."""

    name: str
    make: Callable[[], Any]
    storages: list[Any] = field(default_factory=list)
    sims: list[BotSimulator] = field(default_factory=list)

    @property
    def persistent(self) -> bool:
        return self.name != "memory"

    def new_storage(self) -> Any:
        storage = self.make()
        self.storages.append(storage)
        return storage

    @property
    def storage(self) -> Any:
        """The async view of the storage the newest Dispatcher uses."""
        assert self.storages, "no Dispatcher was built yet"
        return as_async(self.storages[-1])

    def factory(self, setup: Setup) -> Callable[[], Dispatcher]:
        """A Dispatcher factory: a fresh Dispatcher and storage, then ``setup(dp, storage)``."""

        def build() -> Dispatcher:
            dp = Dispatcher()
            setup(dp, self.new_storage())
            return dp

        return build

    def simulator(self, setup: Setup) -> BotSimulator:
        """A simulator of ``setup``'s bot (closed after the test)."""
        sim = BotSimulator(self.factory(setup))
        self.sims.append(sim)
        return sim

    def simulate(self, build: Callable[[Any], Dispatcher]) -> BotSimulator:
        """A simulator of a ``build(storage) -> Dispatcher`` function (the examples' shape)."""
        sim = BotSimulator(lambda: build(self.new_storage()))
        self.sims.append(sim)
        return sim

    async def record(self, talk: Conversation) -> StateContext | None:
        """The stored record of ``talk``'s conversation."""
        key = ConversationKey(talk.chat.id, talk.user.id, talk.thread_id, talk.sim.bot.id)
        result: StateContext | None = await self.storage.read(storage_key(key))
        return result

    async def close(self) -> None:
        errors: list[BaseException] = []
        for sim in reversed(self.sims):
            try:
                await sim.aclose()
            except Exception as exc:  # report the first, but close everything
                errors.append(exc)
        for storage in self.storages:
            await as_async(storage).close()
        if errors:
            raise errors[0]


def _maker(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Any]:
    if name == "memory":
        return MemoryStateStorage
    if name == "file":
        path = tmp_path / "wizards.jsonl"
        return lambda: FileStateStorage(path)
    from aiostep.storage.redis import RedisStateStorage

    if name == "redis-cluster":
        nodes: str = request.getfixturevalue("redis_cluster_url")
        return lambda: RedisStateStorage(nodes, cluster=True)
    url: str = request.getfixturevalue("redis_url")
    return lambda: RedisStateStorage(url)


@pytest_asyncio.fixture(params=["memory", "file", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each storage backend in turn."""
    made = Backend(request.param, _maker(request.param, request, tmp_path))
    yield made
    await made.close()


@pytest_asyncio.fixture(params=["file", "redis"])
async def persistent_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Backend]:
    """The backends whose conversations survive a restart."""
    made = Backend(request.param, _maker(request.param, request, tmp_path))
    yield made
    await made.close()


@pytest_asyncio.fixture
async def cluster_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Redis storage through a cluster client on the session's local 3-master Redis Cluster."""
    made = Backend("redis-cluster", _maker("redis-cluster", request, tmp_path))
    yield made
    await made.close()


@pytest.fixture
def only_this_bot_seen() -> Iterator[None]:
    """A process that has seen no bot but the test's own (restored after). A step or waiter
    named outside any update belongs to the only bot the process has seen
    (`aiostep.keys.default_bot_id`), and tests that run earlier in this process show it
    others (two bots on one Dispatcher, bots with other tokens)."""
    from aiostep import keys

    seen = set(keys.seen_bots)
    keys.seen_bots.clear()
    yield
    keys.seen_bots.clear()
    keys.seen_bots.update(seen)
