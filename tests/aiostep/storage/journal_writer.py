"""A bot-like writer process for the ``kill -9`` tests (and ``benchmarks/bench_file_storage.py``).

    python journal_writer.py JOURNAL SEED COMPACT_THRESHOLD

Four tasks write to their own keys, one write at a time each, forever. Before a write it prints
``W <key> <n>``, once acknowledged ``A <key> <n>`` (flushed), so the parent knows, after killing
it, that the journal must hold each key's counter between its last ``A`` and its last ``W``.
Compaction starts are printed as ``LOG <journal>: compacting ...`` (the storage's debug log), so the
parent can kill in the middle of one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys

from aiostep.storage.file import FileStateStorage

KEYS = [f"k{i}" for i in range(300)]
PAD = "x" * 4000  # makes each compaction write ~1.2 MB: long enough to be killed in


async def main(path: str, seed: int, threshold: int) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("LOG %(message)s"))
    log = logging.getLogger("aiostep")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)

    # fsync=False: a killed process loses nothing the OS already has (a power loss would).
    storage = FileStateStorage(path, fsync=False, compact_threshold=threshold)
    counters = {}
    for key in KEYS:
        data = await storage.get_data(key)
        if "pad" not in data:
            data = await storage.update_data(key, pad=PAD)
        counters[key] = data.get("n", 0)
    print("ready", flush=True)
    rng = random.Random(seed)

    async def worker(own: list[str]) -> None:
        while True:
            key = rng.choice(own)
            counters[key] += 1
            n = counters[key]
            print(f"W {key} {n}", flush=True)
            if rng.random() < 0.1:
                await storage.set_data(key, {"n": n, "pad": PAD[: rng.randint(0, len(PAD))]})
            else:
                await storage.update_data(key, n=n)
            print(f"A {key} {n}", flush=True)

    await asyncio.gather(*(worker(KEYS[i::4]) for i in range(4)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
