"""Several worker processes on one Redis: updates/s, CPU and round trips per update.

Each worker is a real process with its own Dispatcher, Bot (the benchmark's ``NullSession``: no
network) and storage client on one redis-server the benchmark starts. The driver deals the
dialog of ``scenario.py`` to them as a load balancer in front of webhook workers would: update
k goes to worker k mod N (the user count is chosen so that a user's five updates visit
different workers), in five waves (update 1 of every user, then update 2, ...). Within a wave a
worker handles its updates concurrently (as a webhook server does, at most 64 at once); the
next wave starts when every worker is done, so a user's updates never overlap: what is
measured is the price of ordering, not the waiting for a burst to sort itself out.

Update ids are global and increasing (as Telegram numbers a bot's updates), whichever worker
gets them. Every run is checked: each user must get the five texts of the dialog.

    python benchmarks/bench_workers.py [--users 400] [--workers 1 2 4] [--repeat 3]
    python benchmarks/bench_workers.py ... --write-readme

Contenders: the Wizard on ``RedisStateStorage`` with ``order_updates`` off and on, and aiogram's
FSM (its fastest form) on ``RedisStorage``, without and with ``RedisEventIsolation`` (a Redis
lock per update: what aiogram offers for the same problem).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

README = Path(__file__).with_name("README.md")
START, END = "<!-- workers:start -->", "<!-- workers:end -->"
CONCURRENCY = 64
USER_BASE = 10_000_000
WARM_BASE = 9_000_000

#: name -> (contender builder name in contenders.py, storage option)
SETUPS = {
    "aiostep Wizard": ("build_wizard", {}),
    "aiostep Wizard, order_updates": ("build_wizard", {"order_updates": True}),
    "aiostep Wizard, order_updates, order_window=0": (
        "build_wizard",
        {"order_updates": True, "order_window": 0.0},
    ),
    "aiogram FSM (fastest)": ("build_fsm_fast", {}),
    "aiogram FSM + RedisEventIsolation": ("build_fsm_fast", {"isolation": True}),
}


def _build(setup: str, redis_url: str) -> Any:
    import contenders
    from contenders import Built, Env

    builder_name, options = SETUPS[setup]
    env = Env(redis_url, Path("/tmp"))
    if builder_name == "build_wizard":
        from aiogram import Dispatcher
        from aiogram.filters import CommandStart

        import aiostep
        import aiostep.storage.redis as aiostep_redis

        storage = aiostep_redis.RedisStateStorage(
            redis_url, order_updates=bool(options.get("order_updates"))
        )
        dp = Dispatcher()
        window = options.get("order_window", 0.1)
        aiostep.setup(dp, storage=storage, updates=("message",), order_window=window)
        contenders.BenchSignup.setup(dp, entry=CommandStart(), storage=storage)
        built = Built(dp, storage.close)
        built.storage = storage  # type: ignore[attr-defined]
        return built
    built = contenders.build_fsm_fast("redis", env)
    assert built is not None
    if options.get("isolation"):
        from aiogram.fsm.storage.redis import RedisEventIsolation

        built.dp.fsm.events_isolation = RedisEventIsolation(redis=built.dp.storage.redis)
    return built


def worker_main(conn: Connection, setup: str, redis_url: str) -> None:
    """One worker process: build the bot, warm up, then handle the waves it is sent."""
    import logging

    logging.getLogger("aiostep").setLevel(logging.ERROR)
    asyncio.run(_worker(conn, setup, redis_url))


async def _worker(conn: Connection, setup: str, redis_url: str) -> None:
    from aiogram import Bot
    from measure import RoundTrips
    from scenario import TEXTS, NullSession, make_update

    trips = RoundTrips()
    trips.install()
    built = _build(setup, redis_url)
    session = NullSession()
    bot = Bot("42:TEST", session=session)
    dp = built.dp
    await dp.emit_startup(bot=bot, dispatcher=dp)  # aiostep announces the worker
    loop = asyncio.get_running_loop()
    seat = asyncio.Semaphore(CONCURRENCY)

    async def handle(update: Any) -> None:
        async with seat:
            await dp.feed_update(bot, update)

    # warm up on users of its own (imports, caches, script loads), CONCURRENCY at once so the
    # connection pool has its connections (a new connection's handshake is round trips too)
    warm_id = WARM_BASE + os.getpid() * 1000
    for text in TEXTS:
        batch = []
        for user in range(CONCURRENCY):
            batch.append(make_update(WARM_BASE + os.getpid() * 100 + user, text, bot, warm_id))
            warm_id += 1
        await asyncio.gather(*(handle(update) for update in batch))
    session.texts.clear()
    conn.send("ready")
    cpu = wall = 0.0
    trips0, beats0 = trips.count, trips.heartbeats
    n = 0
    while True:
        wave = conn.recv()
        if wave is None:
            break
        updates = [make_update(user, TEXTS[step], bot, uid) for user, step, uid in wave]
        storage = getattr(built, "storage", None)
        if n == 0 and storage is not None:
            # every worker is up by now: count them now rather than at the next heartbeat
            await storage.peers(fresh=True)
        await loop.run_in_executor(None, conn.recv)  # the go signal: every worker has its wave
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(handle(update) for update in updates))
        cpu += time.process_time() - cpu0
        wall += time.perf_counter() - wall0
        n += len(updates)
        conn.send("done")
    await dp.emit_shutdown(bot=bot, dispatcher=dp)
    await built.close()
    await bot.session.close()
    conn.send(
        {
            "cpu": cpu,
            "wall": wall,
            "updates": n,
            "trips": trips.count - trips0 - (trips.heartbeats - beats0),
            "texts": dict(session.texts),
        }
    )


@dataclass
class Result:
    """One run of one setup on N workers."""

    setup: str
    workers: int
    updates: int
    wall: float  # driver's wall time over the waves
    cpu: float  # the workers' CPU, summed
    trips: int

    @property
    def rate(self) -> float:
        return self.updates / self.wall


def run(setup: str, workers: int, users: int, redis_url: str) -> Result:
    import redis
    from scenario import EXPECTED, TEXTS

    redis.Redis.from_url(redis_url).flushdb()
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for _ in range(workers):
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(theirs, setup, redis_url), daemon=True)
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    for pipe in pipes:
        if pipe.recv() != "ready":
            raise RuntimeError("a worker did not start")
    update_id = 1
    wall = 0.0
    k = 0
    for step in range(len(TEXTS)):
        waves: list[list[tuple[int, int, int]]] = [[] for _ in range(workers)]
        for user in range(USER_BASE, USER_BASE + users):
            waves[k % workers].append((user, step, update_id))
            update_id += 1
            k += 1
        for pipe, wave in zip(pipes, waves, strict=True):
            pipe.send(wave)
        time.sleep(0.05)  # let every worker build its updates before the clock starts
        start = time.perf_counter()
        for pipe in pipes:
            pipe.send("go")
        for pipe in pipes:
            if pipe.recv() != "done":
                raise RuntimeError("a worker failed")
        wall += time.perf_counter() - start
    for pipe in pipes:
        pipe.send(None)
    reports = [pipe.recv() for pipe in pipes]
    for proc in procs:
        proc.join(10)
    texts: Counter[str] = Counter()
    for report in reports:
        texts.update(report["texts"])
    expected = {text: n * users for text, n in EXPECTED.items()}
    if dict(texts) != expected:
        raise AssertionError(f"{setup} on {workers} workers: sent {dict(texts)}, not {expected}")
    return Result(
        setup,
        workers,
        sum(r["updates"] for r in reports),
        wall,
        sum(r["cpu"] for r in reports),
        sum(r["trips"] for r in reports),
    )


def table(results: list[list[Result]]) -> str:
    rows = [
        "| setup | workers | updates/s | wall µs/update | CPU µs/update (all workers) "
        "| Redis round trips/update |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for runs in results:
        first = runs[0]
        rate = statistics.median(r.rate for r in runs)
        cpu = statistics.median(r.cpu / r.updates * 1e6 for r in runs)
        trips = statistics.median(r.trips / r.updates for r in runs)
        rows.append(
            f"| {first.setup} | {first.workers} | {rate:,.0f} | {1e6 / rate:,.0f} | {cpu:,.0f} "
            f"| {trips:.2f} |"
        )
    return "\n".join(rows)


def _machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip().split()[0:2]
                cpu = " ".join(cpu)
                break
    except OSError:
        pass
    from aiostep.testing.redis_server import find_redis_server

    server = find_redis_server() or "?"
    version = os.popen(f"{server} --version").read().split()[2][2:] if server != "?" else "?"
    return (
        f"{platform.platform()}; {cpu}, {os.cpu_count()} cores; Python "
        f"{platform.python_version()}; aiogram {metadata.version('aiogram')}, redis-py "
        f"{metadata.version('redis')}, redis-server {version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    from aiostep.testing.redis_server import RedisServer

    results: list[list[Result]] = []
    with RedisServer() as server:
        for workers in args.workers:
            users = args.users + (1 if args.users % workers == 0 and workers > 1 else 0)
            runs: dict[str, list[Result]] = {setup: [] for setup in args.only}
            # interleaved (every setup once, then again): a shared machine's load changes
            # over minutes, and should weigh on every setup alike
            for _ in range(args.repeat):
                for setup in args.only:
                    runs[setup].append(run(setup, workers, users, server.url))
            for setup in args.only:
                results.append(runs[setup])
                print(table([runs[setup]]).splitlines()[-1], flush=True)
    text = table(results)
    command = "python benchmarks/bench_workers.py " + " ".join(sys.argv[1:])
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"Run on {stamp}: `{command.strip()}` ({args.users} users × 5 updates, median of "
        f"{args.repeat} runs).\n\nMachine: {_machine()}.\n\n{text}\n"
    )
    print("\n" + block)
    if args.write_readme:
        readme = README.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        if not pattern.search(readme):
            raise SystemExit(f"{README} has no {START} ... {END} block")
        README.write_text(pattern.sub(lambda _: f"{START}\n{block}{END}", readme))


if __name__ == "__main__":
    main()
