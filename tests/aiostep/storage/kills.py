"""Kill a journal writer with SIGKILL at random moments and check every acknowledged write.

Shared by the kill test and ``benchmarks/bench_file_storage.py`` (its 100-kill run).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from asyncio.subprocess import PIPE
from dataclasses import dataclass
from pathlib import Path

from aiostep.storage.file import FileStateStorage

WRITER = Path(__file__).with_name("journal_writer.py")


@dataclass
class KillReport:
    kills: int = 0
    mid_compaction: int = 0  # kills that left <journal>.compact behind (a rewrite under way)
    acknowledged: int = 0  # acknowledged writes checked


async def kill_round(
    path: Path, rng: random.Random, threshold: int, during_compaction: bool
) -> tuple[int, bool]:
    """Run the writer, ``kill -9`` it, then check the journal: ``(acknowledged, mid-compaction)``.

    Raises:
        AssertionError: an acknowledged write is missing, or a key holds a value never written.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(path), str(rng.randrange(1 << 30)), str(threshold),
        stdout=PIPE, env=env,
    )  # fmt: skip
    assert writer.stdout is not None
    acked: dict[str, int] = {}
    intended: dict[str, int] = {}

    def note(line: bytes) -> None:
        parts = line.split()
        if len(parts) == 3 and parts[0] in (b"W", b"A"):
            key, n = parts[1].decode(), int(parts[2])
            (intended if parts[0] == b"W" else acked)[key] = n

    try:
        assert await asyncio.wait_for(writer.stdout.readline(), 60) == b"ready\n"
        budget = rng.randint(20, 600)  # acknowledged writes before the kill
        while True:
            line = await asyncio.wait_for(writer.stdout.readline(), 60)
            assert line, "the writer exited on its own"
            note(line)
            if during_compaction and line.startswith(b"LOG ") and b": compacting " in line:
                # let it get into the rewrite, then kill
                for _ in range(rng.randint(0, 30)):
                    note(await writer.stdout.readline())
                break
            if not during_compaction and line.startswith(b"A "):
                budget -= 1
                if budget == 0:
                    break
    finally:
        if writer.returncode is None:
            writer.kill()
        await writer.wait()
    for line in (await writer.stdout.read()).splitlines():  # printed before it died
        note(line)
    mid_compaction = _exists(Path(f"{path}.compact"))

    storage = FileStateStorage(path, fsync=False)
    try:
        for key, n in intended.items():
            data = await storage.get_data(key)
            got = data.get("n", 0)
            low = acked.get(key, 0)
            assert low <= got <= n, f"{key}: acknowledged {low}, last attempted {n}, found {got}"
            assert "pad" in data, f"{key}: lost the rest of its data"
    finally:
        await storage.close()
    return len(acked), mid_compaction


async def kill_many(
    path: Path, kills: int, *, seed: int, threshold: int = 50, min_mid_compaction: int = 1
) -> KillReport:
    """``kills`` rounds (more if needed to hit ``min_mid_compaction`` compactions, up to 3x)."""
    rng = random.Random(seed)
    report = KillReport()
    while report.kills < kills or (
        report.mid_compaction < min_mid_compaction and report.kills < 3 * kills
    ):
        # every other round aims at a compaction; the rest die at a random write
        during = report.kills % 2 == 0 or report.mid_compaction < min_mid_compaction
        acked, mid = await kill_round(path, rng, threshold, during)
        report.kills += 1
        report.mid_compaction += mid
        report.acknowledged += acked
    return report


def _exists(path: Path) -> bool:
    return path.exists()
