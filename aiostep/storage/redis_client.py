"""The redis-py client `RedisStateStorage` builds from a URL, lean per round trip.

The storage's URL client keeps what it promises (a burst waits for a free connection instead
of failing; a frozen Redis fails a call after ``socket_timeout``) but skips costs redis-py adds
to every command, each about a tenth of a round trip's client CPU (measured on Python 3.11,
redis-py 8.1):

- `QuickBlockingPool`: redis-py's `BlockingConnectionPool` takes an `asyncio.Condition`, a
  timeout and a context manager for every connection it hands out, free or not (11 µs a get
  and release, against 4). This pool hands out a free connection as the plain pool does, and
  waits as the blocking pool does when none is free or a caller already waits.
- `QuickConnection`: with a ``socket_timeout``, redis-py wraps every *write* in
  `asyncio.wait_for` (a new task per command on Python 3.11, ~9 µs), although a small command
  on an idle connection never waits: the transport takes it whole (each connection carries one
  request at a time, so nothing is queued on it before). This connection writes a command
  under the transport's high-water mark directly; the read keeps its ``socket_timeout``,
  which is what notices a frozen Redis.
- `execute`: ``Redis.execute_command`` wraps each command in observability hooks, a
  single-connection check and a response-callback lookup (~10 µs a command). The storage
  sends its scripts through `execute` instead, on this pool only: a connection, the
  connection's retry policy (what ``execute_command`` applies), the reply, the connection
  back.

Each falls back to redis-py's own code whenever its condition does not hold (a large
command, health checks, a pool in maintenance mode, a redis-py without the condition-based
pool); a client the user passes in is used through redis-py's API only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Connection, Redis

__all__ = ["QuickBlockingPool", "QuickConnection", "client_from_url", "execute"]

#: commands up to this size are written without a timeout: an asyncio transport pauses its
#: writer (and ``drain`` waits) only above its high-water mark, 64 KiB by default
_QUICK_WRITE = 1 << 15


class QuickConnection(Connection):
    """A TCP connection that writes a small command without `asyncio.wait_for`."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        """Send a packed command; see the module for when the write timeout is skipped."""
        timeout = self.socket_timeout
        if (
            not timeout
            or self.health_check_interval  # its PING would read without a timeout
            or not self.is_connected
            or _size(command) > _QUICK_WRITE
        ):
            await super().send_packed_command(command, check_health)
            return
        self.socket_timeout = None  # redis-py then writes and drains directly
        try:
            await super().send_packed_command(command, check_health)
        finally:
            self.socket_timeout = timeout


def _size(command: bytes | str | Iterable[bytes]) -> int:
    if isinstance(command, (bytes, str)):
        return len(command)
    if isinstance(command, list):
        return sum(map(len, command))
    return _QUICK_WRITE + 1  # an iterator: measuring it would consume it


#: redis-py's condition-based blocking pool (5.0.1 and later) keeps free connections in
#: ``_available_connections`` and checks one with ``ensure_connection``; an older one queues
#: them elsewhere: no shortcut there
_CONDITION_POOL = all(
    hasattr(BlockingConnectionPool, name) for name in ("can_get_connection", "ensure_connection")
)


class QuickBlockingPool(BlockingConnectionPool):
    """A blocking pool that hands out a free connection without waiting on its condition,
    unless a caller already waits for one (they come first: no caller starves)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: callers waiting in redis-py's blocking path now
        self._waiting = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connected connection: a free one at once, else wait as `BlockingConnectionPool`."""
        # redis-py's own attributes, read only where they are what this shortcut expects (a
        # redis-py that renames them gets its own blocking path, slower, never wrong)
        free = getattr(self, "_available_connections", None) if _CONDITION_POOL else None
        in_use = getattr(self, "_in_use_connections", None)
        if (
            not isinstance(free, list)
            or not free
            or not isinstance(in_use, set)
            or self._waiting
            or getattr(self, "_in_maintenance", False)
        ):
            self._waiting += 1
            try:
                return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
            finally:
                self._waiting -= 1
        connection = free.pop()
        in_use.add(connection)
        try:
            # as redis-py's pools do: connected, and nothing left unread on it
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


async def execute(pool: QuickBlockingPool, *command: Any) -> Any:
    """Send ``command`` on a connection of ``pool`` and return its reply (raw: no response
    callback, as a script's reply has none), as ``Redis.execute_command`` would."""
    connection = await pool.get_connection()
    try:
        return await connection.retry.call_with_retry(
            lambda: _send_and_read(connection, command),
            lambda _error: connection.disconnect(),  # as redis-py does before a retry
        )
    finally:
        await pool.release(connection)


async def _send_and_read(connection: Any, command: tuple[Any, ...]) -> Any:
    await connection.send_command(*command)
    return await connection.read_response()


def client_from_url(
    url: str, *, max_connections: int, pool_timeout: float, socket_timeout: float
) -> Redis:
    """A client for ``url`` on a `QuickBlockingPool` (of `QuickConnection`s for ``redis://``;
    a ``unix://`` or ``rediss://`` URL keeps its own connection class)."""
    pool = QuickBlockingPool.from_url(
        url,
        connection_class=QuickConnection,
        max_connections=max_connections,
        timeout=pool_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
    )
    return Redis(connection_pool=pool)
