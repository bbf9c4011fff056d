"""FileStateStorage under damage, kills, large values and large journals (real files, real
processes, no mocks of the storage)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message
from kills import kill_many

import aiostep
from aiostep.storage import file as file_module
from aiostep.storage.base import Patch, StateContext
from aiostep.storage.file import HEADER, FileStateStorage, _whole_line
from aiostep.testing import BotSimulator


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "states.jsonl"


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Let a worker thread hand the GIL back every millisecond (5 by default), so the ticks
    counted below measure whether the loop is blocked, not the GIL's time slice."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    yield
    sys.setswitchinterval(old)


# Plain file access for the checks (sync helpers: blocking for a moment is fine in a test).
def disk(path: Path) -> bytes:
    return path.read_bytes()


def put(path: Path, content: bytes) -> None:
    path.write_bytes(content)


def size_of(path: Path) -> int:
    return path.stat().st_size


def exists(path: Path) -> bool:
    return path.exists()


def payload_key(line: bytes) -> str:
    key: str = json.loads(line[18:-9])["key"]
    return key


# -- single-byte damage ---------------------------------------------------------------------------


async def write_history(path: Path) -> dict[str, StateContext | None]:
    """A journal of whole-record, change and delete lines for 24 keys; what each key holds."""
    rng = random.Random(7)
    storage = FileStateStorage(path, fsync=False)
    keys = [f"{1000 + i}:{1000 + i}@42" for i in range(24)]
    for step in range(160):
        key = rng.choice(keys)
        action = rng.random()
        if action < 0.15:
            await storage.set_state(key, f"state{step}")
        elif action < 0.55:
            await storage.update_data(key, {f"item{step % 5}": step, "flag": step % 2 == 0})
        elif action < 0.7:
            await storage.write(key, Patch(callback="quiz.answer", token=f"t{step}", kwargs={}))
        elif action < 0.8:
            await storage.claim_token(key, f"t{step - 1}")
        elif action < 0.9:
            await storage.set_data(key, {"big": "y" * rng.randint(0, 300), "n": 1.5})
        else:
            await storage.delete_state(key)
    expected = {key: await storage.read(key) for key in keys}
    await storage.close()
    return expected


@pytest.mark.parametrize("folding", [64, 1], ids=["fold-64", "fold-1"])
async def test_single_byte_damage_never_reads_back_other_data(
    tmp_path: Path, folding: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fold-1: a load holds one changed record decoded at a time (a journal with many changed
    # records), so every change line decodes and re-encodes its record
    monkeypatch.setattr(file_module, "_FOLDING", folding)
    original = tmp_path / "original.jsonl"
    expected = await write_history(original)
    assert sum(record is not None for record in expected.values()) >= 10
    journal = disk(original)
    newlines = [i for i, byte in enumerate(journal) if byte == ord("\n")]
    rng = random.Random(2026)
    lost_somewhere = 0
    for n in range(200):
        damaged = bytearray(journal)
        kind = n % 8
        if kind == 0:  # a line break becomes something else: two lines run together
            at = rng.choice(newlines)
        elif kind == 1:  # something becomes a line break: a line is cut in two
            at = rng.randrange(len(journal))
            damaged[at] = ord("\n")
        elif kind == 2:  # the header
            at = rng.randrange(len(HEADER))
        else:
            at = rng.randrange(len(journal))
        if kind != 1:
            damaged[at] = rng.choice([b for b in range(256) if b != journal[at]])
        if damaged == journal:
            continue
        path = tmp_path / f"damaged-{n}.jsonl"
        put(path, bytes(damaged))

        storage = FileStateStorage(path, fsync=False)  # always opens
        lost = []
        for key, record in expected.items():
            got = await storage.read(key)
            if got != record:
                # never other data: the conversation is intact, or it starts fresh
                assert got is None, f"damage #{n} at byte {at}: {key} reads back {got}"
                lost.append(key)
        await storage.close()
        # a damaged line costs its own conversation (two when two lines ran together)
        assert len(lost) <= 2, f"damage #{n} at byte {at} lost {lost}"
        lost_somewhere += bool(lost)
        # and the journal was repaired: it loads clean, with the same records
        again = FileStateStorage(path, fsync=False)
        for key, record in expected.items():
            assert await again.read(key) == (None if key in lost else record)
        await again.close()
    assert lost_somewhere > 0  # the damage did hit records (the test is not vacuous)


async def test_a_damaged_line_in_a_running_bot_resets_only_its_conversation(
    path: Path, step_name: Any, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("quiz.answer"))
    async def answer(message: Message) -> None:
        log.append(f"answer {message.text}")

    def build() -> Dispatcher:
        dp = Dispatcher()
        aiostep.setup(dp, storage=FileStateStorage(path, fsync=False))

        @dp.message(Command("quiz"))
        async def quiz(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, answer)

        @dp.message()
        async def normal(message: Message) -> None:
            log.append(f"normal {message.text}")

        return dp

    async with BotSimulator(build) as sim:
        alice, bob = sim.chat(), sim.chat()
        await alice.send("/quiz")
        await bob.send("/quiz")
        # one byte of Alice's record goes bad on disk
        journal = bytearray(disk(path))
        lines = bytes(journal).split(b"\n")
        at = len(HEADER)
        for line in lines[1:]:
            if payload_key(line).endswith(f":{alice.user.id}@42"):
                break
            at += len(line) + 1
        journal[at + line.index(b'"callback":"') + 12] ^= 0x20  # a letter changes case
        put(path, bytes(journal))

        with caplog.at_level(logging.ERROR, logger="aiostep"):
            await sim.restart()
            await bob.send("42")  # Bob's step is still there
            await alice.send("7")  # Alice's conversation starts fresh
    assert log == ["answer 42", "normal 7"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert str(path) in errors[0] and f"offset {at}" in errors[0]
    assert f"{alice.user.id}@42" in errors[0]
    assert exists(Path(f"{path}.quarantine"))


# -- the event loop and writers go on during load and compaction -------------------------------


def big_journal(path: Path, records: int) -> None:
    entries = (
        _whole_line(str(i), (StateContext(current_state="s", data={"n": i, "p": "x" * 60}), None))
        for i in range(records)
    )
    put(path, HEADER + b"".join(entries))


class Ticker:
    """Counts how often the event loop gets round to it."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)


@pytest.fixture
async def ticker() -> AsyncIterator[Ticker]:
    ticker = Ticker()
    task = asyncio.ensure_future(ticker.run())
    yield ticker
    task.cancel()


async def test_the_event_loop_keeps_running_while_a_big_journal_loads(
    path: Path, ticker: Ticker, frequent_thread_switches: None
) -> None:
    big_journal(path, 20_000)
    storage = FileStateStorage(path, fsync=False)
    before = ticker.ticks
    assert (await storage.get_data(19_999))["n"] == 19_999
    # Parsed on the loop, the load would leave the ticker a handful of ticks (one per await).
    assert ticker.ticks - before >= 50
    await storage.close()


def tracked_objects() -> int:
    """How many objects CPython's cyclic garbage collector tracks now (after a collection)."""
    gc.collect()
    return len(gc.get_objects())


async def test_a_loaded_journal_gives_the_garbage_collector_no_objects_per_record(
    path: Path,
) -> None:
    # Each record held as objects (a StateContext, its dicts, a tuple) made the collector's full
    # passes, which stop the event loop too, run while a big journal loaded: 0.2 s at 100,000.
    big_journal(path, 20_000)
    storage = FileStateStorage(path, fsync=False)
    before = tracked_objects()
    await storage.read(0)  # loads the journal
    assert tracked_objects() - before < 1_000  # there were 2 for every record
    for i in (0, 7_777, 19_999):  # and they are all there
        assert await storage.get_data(i) == {"n": i, "p": "x" * 60}
    assert tracked_objects() - before < 1_000  # a read decodes a record and lets it go
    await storage.close()


async def test_records_written_are_let_go_by_the_next_compaction(path: Path) -> None:
    storage = FileStateStorage(path, fsync=False)
    for i in range(3_000):
        await storage.update_data(i, n=i)
    before = tracked_objects()
    await storage.compact()
    assert before - tracked_objects() >= 3_000  # held as their lines again
    await storage.update_data(5, n=-5)
    assert await storage.get_data(5) == {"n": -5}
    assert await storage.get_data(2_999) == {"n": 2_999}
    await storage.close()
    reopened = FileStateStorage(path, fsync=False)
    assert await reopened.get_data(5) == {"n": -5}
    assert await reopened.get_data(2_999) == {"n": 2_999}
    await reopened.close()


async def test_writes_go_on_during_a_compaction_and_all_of_them_last(
    path: Path, ticker: Ticker, frequent_thread_switches: None
) -> None:
    big_journal(path, 20_000)
    storage = FileStateStorage(path, fsync=False)
    await storage.read(0)  # loaded
    written: dict[str, int] = {}
    compaction = asyncio.ensure_future(storage.compact())
    before = ticker.ticks
    n = 0
    while not compaction.done():
        n += 1
        key = f"w{n % 50}"
        await storage.update_data(key, n=n)
        written[key] = n
        if n % 7 == 0:
            await storage.update_data(str(n), extra=n)  # records in the snapshot change too
    await compaction
    # Under the lock, as before, the first write would have waited for the whole rewrite.
    assert n >= 5
    assert ticker.ticks - before >= 20
    await storage.close()

    reopened = FileStateStorage(path, fsync=False)
    for key, value in written.items():
        assert await reopened.get_data(key) == {"n": value}
    for m in range(7, n + 1, 7):
        assert (await reopened.get_data(m))["extra"] == m
    assert (await reopened.get_data(19_999))["n"] == 19_999
    await reopened.close()


# -- large values --------------------------------------------------------------------------------


async def test_small_updates_next_to_a_large_value_append_small_lines(path: Path) -> None:
    storage = FileStateStorage(path)
    big = "b" * 1_000_000
    await storage.set_data(1, {"big": big})
    size = size_of(path)
    for i in range(10):
        await storage.update_data(1, {f"small{i}": i})
    await storage.set_state(1, "done")
    await storage.write(1, Patch(callback="x.y", token="t"))
    await storage.claim_token(1, "t")
    # whole records would have added 13 MB; the changes are a few hundred bytes
    assert size_of(path) - size < 2_000
    await storage.close()

    reopened = FileStateStorage(path)
    record = await reopened.get_state(1)
    assert record.data == {"big": big, **{f"small{i}": i for i in range(10)}}
    assert (record.current_state, record.callback) == ("done", None)
    await reopened.close()


async def test_a_change_line_keeps_json_types_that_compare_equal(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_data(1, {"a": 1, "b": [1, 0], "c": 0.0, "keep": "k"})
    await storage.set_data(1, {"a": True, "b": [True, False], "c": -0.0, "keep": "k"})
    await storage.close()
    reopened = FileStateStorage(path)
    data = await reopened.get_data(1)
    assert data == {"a": True, "b": [True, False], "c": -0.0, "keep": "k"}
    assert data["a"] is True and data["b"][0] is True
    assert str(data["c"]) == "-0.0"
    await reopened.close()


# -- kill -9 -------------------------------------------------------------------------------------


@pytest.mark.slow  # writer processes, each a fresh interpreter
async def test_every_acknowledged_write_survives_kill_9_also_mid_compaction(path: Path) -> None:
    report = await kill_many(path, 5, seed=11, threshold=50)
    assert report.kills >= 5
    assert report.mid_compaction >= 1
    assert report.acknowledged > 100
    assert disk(path).startswith(HEADER)


async def test_closing_during_a_compaction_stops_it_and_keeps_the_journal(path: Path) -> None:
    big_journal(path, 20_000)
    storage = FileStateStorage(path, fsync=False)
    await storage.update_data(5, late=True)
    compaction = asyncio.ensure_future(storage.compact())
    await asyncio.sleep(0.01)  # under way
    await storage.close()
    await compaction  # stopped quietly: the storage was closed
    assert not exists(Path(f"{path}.compact"))
    reopened = FileStateStorage(path, fsync=False)
    assert await reopened.get_data(5) == {"n": 5, "p": "x" * 60, "late": True}
    assert (await reopened.get_data(19_999))["n"] == 19_999
    await reopened.close()
