"""FileStateStorage: event-loop stalls at load and compaction, journal growth, and kill -9 runs.

    python benchmarks/bench_file_storage.py [--records 100000] [--kills 100] [--repeat 1]

- load / compaction: a ticker task measures the longest time the event loop went without
  running it (the stall) while a journal of ``--records`` records loads, and while it is
  compacted with a writer appending meanwhile (its slowest write is printed too), each
  ``--repeat`` times. Two yardsticks are measured first: a single fsync'ed write, and the
  longest stall of an idle event loop over a second (on a busy machine the OS's scheduling
  alone makes gaps of several ms, and no load or compaction can show less). The load also
  prints how many objects the garbage collector tracks for the records it holds.
- growth: the journal's growth for one 10 MB value plus one small ``update_data``, and for
  ten small ``update_data`` next to a 1 MB value.
- kills: ``--kills`` rounds of a writer process killed with SIGKILL at random moments (half
  of them as a compaction starts); after each, every acknowledged write must be in the
  journal (tests/aiostep/storage/kills.py).

Runs against whichever aiostep is importable, so ``PYTHONPATH=<old tree>`` measures an older
version (compaction then runs the old way, on the loop under the storage lock).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from aiostep.storage import file as file_module
from aiostep.storage.base import StateContext
from aiostep.storage.file import FileStateStorage

TESTS = Path(__file__).resolve().parent.parent / "tests" / "aiostep" / "storage"


class Ticker:
    """Measures the longest gap between two turns of the event loop, and the longest pause of
    CPython's cyclic garbage collector meanwhile (it stops every thread, whoever triggers it)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_gc = 0.0
        self._gc_start = 0.0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.worst_gc = max(self.worst_gc, time.perf_counter() - self._gc_start)

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last)
            last = now

    def __enter__(self) -> Ticker:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        gc.callbacks.remove(self._on_gc)

    def __str__(self) -> str:
        return (
            f"longest loop stall {self.worst * 1e3:7.1f} ms "
            f"(longest GC pause meanwhile {self.worst_gc * 1e3:.1f} ms)"
        )


def build_journal(path: Path, records: int) -> None:
    """A journal of ``records`` small records, in the format of the aiostep being measured."""
    whole_line = getattr(file_module, "_whole_line", None)
    lines = []
    for i in range(records):
        record = StateContext(current_state="s", chat_id=i, data={"n": i, "name": "x" * 40})
        if whole_line is not None:
            lines.append(whole_line(str(i), (record, None)))
        else:  # 0.4: bare JSON lines
            lines.append(
                file_module._encode(str(i), (record, None))  # type: ignore[attr-defined]
            )
    path.write_bytes(file_module.HEADER + b"".join(lines))


async def one_write(path: Path) -> float:
    storage = FileStateStorage(path)
    await storage.set_state(1, "s")
    times = []
    for i in range(200):
        start = time.perf_counter()
        await storage.update_data(1, n=i)
        times.append(time.perf_counter() - start)
    await storage.close()
    return statistics.median(times)


async def idle_stall() -> Ticker:
    with Ticker() as ticker:
        await asyncio.sleep(1.0)
    return ticker


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


async def load_stall(path: Path) -> tuple[Ticker, float, int]:
    storage = FileStateStorage(path)
    before = tracked()
    with Ticker() as ticker:
        start = time.perf_counter()
        await storage.read(0)
        took = time.perf_counter() - start
    held = tracked() - before
    await storage.close()
    return ticker, took, held


async def compaction_stall(path: Path) -> tuple[Ticker, float, float, int]:
    storage = FileStateStorage(path)
    await storage.read(0)
    compact = getattr(storage, "compact", None)
    run: Awaitable[Any] = (
        compact() if compact is not None else storage._serialised(storage._compact)  # type: ignore[attr-defined]
    )
    writes: list[float] = []
    with Ticker() as ticker:
        start = time.perf_counter()
        task = asyncio.ensure_future(run)
        n = 0
        while not task.done():
            n += 1
            t0 = time.perf_counter()
            await storage.update_data(f"w{n % 10}", n=n)
            writes.append(time.perf_counter() - t0)
        await task
        took = time.perf_counter() - start
    await storage.close()
    return ticker, took, max(writes), len(writes)


async def growth(directory: Path) -> tuple[int, int]:
    # a version with a per-record size limit must let a 10 MB value through for this
    limit = inspect.signature(FileStateStorage).parameters.get("max_record_bytes")
    big: dict[str, Any] = {} if limit is None else {"max_record_bytes": 64 << 20}
    path = directory / "growth-10mb.jsonl"
    storage = FileStateStorage(path, **big)
    await storage.set_data(1, {"big": "b" * 10_000_000})
    await storage.update_data(1, small=1)
    await storage.close()
    ten_mb = path.stat().st_size

    path = directory / "growth-1mb.jsonl"
    storage = FileStateStorage(path, **big)
    await storage.set_data(1, {"big": "b" * 1_000_000})
    before = path.stat().st_size
    for i in range(10):
        await storage.update_data(1, {f"small{i}": i})
    await storage.close()
    return ten_mb, path.stat().st_size - before


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1, help="load and compaction runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        write = await one_write(directory / "one-write.jsonl")
        print(f"one fsync'ed update_data: {write * 1e3:.2f} ms (median of 200)")
        print(f"idle loop, 1 s: {await idle_stall()}")

        path = directory / "big.jsonl"
        build_journal(path, args.records)
        size = path.stat().st_size
        print(f"journal of {args.records:,} records: {size / 1e6:.1f} MB")
        for _ in range(args.repeat):
            ticker, took, held = await load_stall(path)
            print(
                f"load:       {ticker}; load took {took:.2f} s; "
                f"{held:,} more objects tracked by the GC"
            )
        for _ in range(args.repeat):
            gc.collect()
            ticker, took, worst_write, n = await compaction_stall(path)
            print(
                f"compaction: {ticker}; compaction took {took:.2f} s, {n} writes meanwhile, "
                f"slowest {worst_write * 1e3:.1f} ms"
            )

        ten_mb, small = await growth(directory)
        print(f"growth: one 10 MB value + one small update_data: {ten_mb / 1e6:.2f} MB journal")
        print(f"growth: ten small update_data next to a 1 MB value: +{small:,} bytes")

        if args.kills and hasattr(FileStateStorage, "compact"):
            sys.path.insert(0, str(TESTS))
            from kills import kill_many

            start = time.perf_counter()
            report = await kill_many(directory / "killed.jsonl", args.kills, seed=2026)
            print(
                f"kill -9: {report.kills} kills ({report.mid_compaction} mid-compaction), "
                f"{report.acknowledged:,} acknowledged writes checked, none lost "
                f"({time.perf_counter() - start:.0f} s)"
            )


if __name__ == "__main__":
    asyncio.run(main())
