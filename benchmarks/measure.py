"""How the benchmark measures: CPU and wall time of a run, Redis client round trips, the
redis-server's own CPU, Python heap (tracemalloc) and Redis key bytes."""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.filters import CommandStart
from aiogram.types import Message, Update
from scenario import NAME_PROMPT, TEXTS, NullSession, interleaved, make_update

if TYPE_CHECKING:
    # Not at run time: aiostep 0.3.7's subprocess (v037_run.py) times and weighs with this
    # module, and there `aiostep` is 0.3.7; this project's aiostep is imported where used.
    from contenders import Contender, Env

WARM_USERS = range(1, 6)  # complete dialogs run first: imports, caches, Redis script loads
USER_BASE = 1000


class RoundTrips:
    """Counts the Redis client's round trips: every ``send_packed_command`` of a
    ``redis.asyncio`` connection is one write of one request batch, answered before the
    caller goes on. A single command, an ``EVALSHA`` (a whole Lua script) and a pipeline's
    ``execute()`` (all its commands packed into one write) each count once; ``send_command``
    goes through ``send_packed_command``, so nothing counts twice.

    aiostep's worker heartbeat (one pipeline a second per process, from a background task,
    whatever the traffic) is counted in ``count`` too, and apart in ``heartbeats``."""

    def __init__(self) -> None:
        self.count = 0
        self.heartbeats = 0

    def install(self) -> None:
        """Wrap ``AbstractConnection.send_packed_command`` (every client in the process)."""
        from redis.asyncio.connection import AbstractConnection

        original = AbstractConnection.send_packed_command
        counter = self

        async def counted(conn: Any, command: Any, check_health: bool = True) -> None:
            counter.count += 1
            await original(conn, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

        from aiostep.storage.redis import RedisStateStorage

        announce = RedisStateStorage._announce

        async def announced(storage: Any) -> int:
            counter.heartbeats += 1
            return await announce(storage)

        RedisStateStorage._announce = announced  # type: ignore[method-assign]

    def per_update(self) -> int:
        """Round trips so far, leaving out the heartbeat."""
        return self.count - self.heartbeats


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (the redis-server), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """One timed run of one contender on one storage."""

    cpu_us: float
    wall_us: float
    calls: float
    round_trips: float | None = None
    server_cpu_us: float | None = None
    #: per update of the dialog, without the heartbeat
    step_round_trips: list[float] = field(default_factory=list)
    heartbeats: float = 0.0


class WrongDialog(AssertionError):
    """A contender did not run the dialog as specified: its numbers would mean nothing."""


def check_dialog(session: NullSession, users: int, contender: Contender, kind: str) -> None:
    """Every user got exactly the dialog's five messages."""
    expected = {text: n * users for text, n in contender.expected.items()}
    if dict(session.texts) != expected:
        raise WrongDialog(
            f"{contender.name} on {kind}: sent {dict(session.texts)}, expected {expected}"
        )


async def _feed(dp: Dispatcher, bot: Bot, updates: Iterable[Update]) -> None:
    """Feed ``updates`` one by one (in a function: no loop variable outlives it to keep the
    last update alive while the heap is measured)."""
    for update in updates:
        await dp.feed_update(bot, update)


async def _warm_up(dp: Dispatcher, bot: Bot) -> None:
    await _feed(dp, bot, interleaved(bot, WARM_USERS))


async def timed_run(
    contender: Contender,
    kind: str,
    env: Env,
    users: int,
    trips: RoundTrips,
    server_pid: int | None,
    before_run: Callable[[], None],
) -> Sample | None:
    """Feed the interleaved dialog of ``users`` users once; time it and count."""
    built = contender.build(kind, env)
    if built is None:
        return None
    session = NullSession()
    bot = Bot("42:TEST", session=session)
    dp = built.dp
    try:
        await _warm_up(dp, bot)
        before_run()
        updates = list(interleaved(bot, range(USER_BASE, USER_BASE + users)))
        session.texts.clear()
        session.calls = 0
        steps = [0] * len(TEXTS)
        gc.collect()
        server0 = process_cpu_seconds(server_pid) if server_pid else 0.0
        trips0, beats0 = trips.count, trips.heartbeats
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i, update in enumerate(updates):
            before = trips.per_update()
            await dp.feed_update(bot, update)
            steps[i // users] += trips.per_update() - before
        cpu1, wall1 = time.process_time(), time.perf_counter()
        server1 = process_cpu_seconds(server_pid) if server_pid else 0.0
        check_dialog(session, users, contender, kind)
        n = len(updates)
        sample = Sample(
            cpu_us=(cpu1 - cpu0) / n * 1e6,
            wall_us=(wall1 - wall0) / n * 1e6,
            calls=session.calls / n,
        )
        if kind == "redis":
            sample.round_trips = (trips.count - trips0) / n
            sample.server_cpu_us = (server1 - server0) / n * 1e6
            sample.step_round_trips = [s / users for s in steps]
            sample.heartbeats = (trips.heartbeats - beats0) / n
        return sample
    finally:
        await built.close()
        await bot.session.close()


def _heap() -> tracemalloc.Snapshot:
    # aiogram's Update.event_type is an lru_cache(128) property: it keeps the last 128 updates
    # alive whoever handled them. Bounded and the same for every contender, so not counted.
    Update.event_type.fget.cache_clear()  # type: ignore[attr-defined]
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )


def _grown(after: tracemalloc.Snapshot, before: tracemalloc.Snapshot) -> int:
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


@dataclass
class HeapSample:
    """Python heap per conversation: paused mid-dialog, and left once it finished."""

    paused: float
    left: float


async def heap_run(contender: Contender, kind: str, env: Env, users: int) -> HeapSample | None:
    """tracemalloc: heap after ``users`` users each answered /start and their name (paused,
    waiting for the age) minus the heap before, per user; and what is left after they finish.
    Updates are built on demand, so only what the framework keeps is counted."""
    tracemalloc.start()
    built = None
    try:
        built = contender.build(kind, env)
        if built is None:
            return None
        session = NullSession()
        bot = Bot("42:TEST", session=session)
        await _warm_up(built.dp, bot)
        session.texts.clear()
        group = range(USER_BASE, USER_BASE + users)
        before = _heap()
        await _feed(built.dp, bot, interleaved(bot, group, range(2)))
        paused = _heap()
        await _feed(built.dp, bot, interleaved(bot, group, range(2, len(TEXTS))))
        done = _heap()
        check_dialog(session, users, contender, kind)
        return HeapSample(_grown(paused, before) / users, _grown(done, before) / users)
    finally:
        tracemalloc.stop()
        if built is not None:
            await built.close()


async def parked_waiter_heap(users: int, *, bare: bool = False) -> HeapSample:
    """tracemalloc: ``users`` handlers each parked in ``aiostep.wait_for`` (each a task of
    ``dp.feed_update``, as polling runs them), per waiter; and what is left after each got
    its answer and returned.

    ``bare``: the floor of any wait inside a handler instead, with no aiostep: the handler
    awaits an asyncio ``Future`` of its own, which an outer middleware of four lines resolves
    with the user's next message. What it holds is what aiogram keeps alive for a handler
    that has not returned (the update, its call chain, the handler data)."""
    import aiostep
    from aiostep.pending import root_store

    tracemalloc.start()
    try:
        dp = Dispatcher()
        futures: dict[int, asyncio.Future[Message]] = {}
        if bare:

            async def resolve(handler: Any, event: Any, data: dict[str, Any]) -> Any:
                future = futures.pop(event.from_user.id, None) if event.from_user else None
                if future is None:
                    return await handler(event, data)
                future.set_result(event)
                return None

            dp.message.outer_middleware(resolve)
            waiting: Any = futures
        else:
            aiostep.setup(dp)
            store: Any = root_store()
            waiting = store.cache

        @dp.message(CommandStart())
        async def start(message: Message) -> None:
            user = message.from_user.id if message.from_user else message.chat.id
            await message.answer(NAME_PROMPT)
            if bare:
                future = futures[user] = asyncio.get_running_loop().create_future()
                reply = await future
            else:
                reply = await aiostep.wait_for(user)
            await message.answer(f"Hi, {reply.text}")

        bot = Bot("42:TEST", session=NullSession())

        async def park(group: range) -> list[asyncio.Task[Any]]:
            tasks = [
                asyncio.create_task(dp.feed_update(bot, make_update(u, "/start", bot)))
                for u in group
            ]
            for _ in range(100 * len(group)):
                if len(waiting) >= len(group):
                    break
                await asyncio.sleep(0)
            else:
                raise WrongDialog(f"only {len(waiting)} of {len(group)} waiters parked")
            return tasks

        async def answer(group: range, tasks: list[asyncio.Task[Any]]) -> None:
            for u in group:
                await dp.feed_update(bot, make_update(u, "Alice", bot))
            await asyncio.gather(*tasks)
            for _ in range(3):  # let the loop run the done tasks' pending wake-up callbacks
                await asyncio.sleep(0)

        warm = range(1, 4)
        await answer(warm, await park(warm))
        group = range(USER_BASE, USER_BASE + users)
        before = _heap()
        tasks = await park(group)
        parked = _heap()
        await answer(group, tasks)
        del tasks
        done = _heap()
        return HeapSample(_grown(parked, before) / users, _grown(done, before) / users)
    finally:
        tracemalloc.stop()


async def update_heap(users: int) -> float:
    """tracemalloc: the heap of one ``/start`` update as aiogram builds it (the ``Update``, its
    ``Message``, ``User`` and ``Chat``), over ``users`` of them: what a handler that has not
    returned keeps alive whatever else it does."""
    bot = Bot("42:TEST", session=NullSession())
    tracemalloc.start()
    try:
        make_update(1, "/start", bot)  # warm: pydantic's validators built
        before = _heap()
        updates = [make_update(u, "/start", bot) for u in range(USER_BASE, USER_BASE + users)]
        grown = _grown(_heap(), before) / users
        del updates
        return grown
    finally:
        tracemalloc.stop()
        await bot.session.close()


@dataclass
class KeyBytes:
    """Redis keys per conversation: count, MEMORY USAGE and payload bytes (key names + string
    values + hash fields and values), paused mid-dialog and left after it finished."""

    keys: float
    memory: float
    payload: float
    left_memory: float


def _redis_footprint(client: Any, skip: Callable[[str], bool]) -> tuple[int, int, int]:
    keys = memory = payload = 0
    for raw in client.scan_iter(count=1000):
        name = raw.decode()
        if skip(name):
            continue
        keys += 1
        memory += int(client.memory_usage(raw, samples=0) or 0)
        kind = client.type(raw).decode()
        payload += len(raw)
        if kind == "string":
            payload += int(client.strlen(raw))
        elif kind == "hash":
            payload += sum(len(f) + len(v) for f, v in client.hgetall(raw).items())
    return keys, memory, payload


async def redis_key_bytes(contender: Contender, env: Env, users: int, client: Any) -> KeyBytes:
    """Redis footprint of ``users`` conversations paused waiting for the age (the database is
    flushed after the warm-up), and what stays once they finished. aiostep's worker heartbeat
    set (one per process, not per conversation) is left out."""
    built = contender.build("redis", env)
    assert built is not None
    session = NullSession()
    bot = Bot("42:TEST", session=session)
    try:
        await _warm_up(built.dp, bot)
        client.flushdb()
        group = range(USER_BASE, USER_BASE + users)
        await _feed(built.dp, bot, interleaved(bot, group, range(2)))
        skip = lambda name: name.endswith(":workers")  # noqa: E731
        keys, memory, payload = _redis_footprint(client, skip)
        await _feed(built.dp, bot, interleaved(bot, group, range(2, len(TEXTS))))
        _, left, _ = _redis_footprint(client, skip)
        return KeyBytes(keys / users, memory / users, payload / users, left / users)
    finally:
        await built.close()
        await bot.session.close()
