"""`RedisStateStorage` checks what it is given when it is built (the deploy guide tells users
to size `max_connections`, `pool_timeout` and `socket_timeout`, and to pass a Sentinel or
Cluster client): a synchronous `redis.Redis`, a 0 pool, a negative or str timeout were taken
and failed later, inside an update, with an error that named none of them."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from aiostep import RedisStateStorage

URL = "redis://127.0.0.1:1/0"  # never connected to: the checks come first


def test_a_synchronous_redis_client_is_refused_naming_the_async_one() -> None:
    client = redis.Redis()
    with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis.*got redis\.client\.Redis"):
        RedisStateStorage(client)  # type: ignore[arg-type]
    client.close()


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    [
        ("max_connections", 0, ValueError, "max_connections must be at least 1, got 0"),
        ("max_connections", 10.5, TypeError, "max_connections must be an int, got float: 10.5"),
        ("max_connections", True, TypeError, "max_connections must be an int, got bool"),
        ("pool_timeout", -1, ValueError, "pool_timeout must be a positive, finite number"),
        ("pool_timeout", "5", TypeError, "pool_timeout must be a number of seconds, got str"),
        ("socket_timeout", 0, ValueError, "socket_timeout must be a positive, finite number"),
        ("socket_timeout", float("nan"), ValueError, "socket_timeout must be a positive"),
    ],
)
def test_a_bad_pool_option_is_refused_naming_it(
    option: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RedisStateStorage(URL, **{option: value})


def test_good_pool_options_are_taken() -> None:
    storage = RedisStateStorage(URL, max_connections=3, pool_timeout=0.5, socket_timeout=2)
    assert storage.redis.connection_pool.max_connections == 3  # type: ignore[union-attr]
