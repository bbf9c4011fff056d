"""FileStateStorage: durability, the journal format on disk, compaction and corruption."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiofiles.os
import pytest

from aiostep.clock import set_clock
from aiostep.exceptions import StorageCorruptedError
from aiostep.storage.base import Patch
from aiostep.storage.file import HEADER, FileStateStorage

KEY = 12345


class StoppedClock:
    """A clock that moves only when ``now`` is assigned."""

    def __init__(self) -> None:
        self.time = time.time()

    def now(self) -> float:
        return self.time

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError("storage tests need no timers")


@pytest.fixture
def clock() -> Iterator[StoppedClock]:
    fake = StoppedClock()
    set_clock(fake)
    yield fake
    set_clock(None)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "states.jsonl"


def lines_of(path: Path) -> list[dict[str, Any]]:
    """The journal's record lines (after its header line)."""
    raw = path.read_bytes()
    assert raw.startswith(HEADER)
    return [json.loads(line) for line in raw[len(HEADER) :].splitlines()]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# Plain file access for the checks (sync helpers: blocking for a moment is fine in a test).
def disk(path: Path) -> bytes:
    return path.read_bytes()


def put(path: Path, content: bytes, *, append: bool = False) -> None:
    with path.open("ab" if append else "wb") as f:
        f.write(content)


def size_of(path: Path) -> int:
    return path.stat().st_size


def inode_of(path: Path) -> int:
    return path.stat().st_ino


def exists(path: Path) -> bool:
    return path.exists()


def compact_file(path: Path) -> Path:
    return Path(f"{path}.compact")


async def test_records_survive_reopening(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "signup", chat_id=-100)
    await storage.update_data(KEY, name="Ann", tags=["a", "b"])
    await storage.write("conv:1:2", Patch(callback="signup.age", token="t", deadline=1e12))
    await storage.set_data(777, {"gone": True})
    await storage.delete_state(777)
    await storage.close()

    reopened = FileStateStorage(str(path))
    record = await reopened.get_state(str(KEY))
    assert record.current_state == "signup"
    assert record.chat_id == -100
    assert record.data == {"name": "Ann", "tags": ["a", "b"]}
    step = await reopened.read("conv:1:2")
    assert step is not None
    assert (step.callback, step.token, step.deadline) == ("signup.age", "t", 1e12)
    assert await reopened.get_state(777) is None
    await reopened.close()


async def test_journal_is_created_with_mode_0600(path: Path) -> None:
    old_umask = os.umask(0)  # even a permissive umask gets a private file
    try:
        storage = FileStateStorage(path)
        await storage.set_state(KEY, "s")
    finally:
        os.umask(old_umask)
    assert mode_of(path) == 0o600
    await storage.close()


async def test_a_write_appends_one_line_and_does_not_rewrite_the_file(path: Path) -> None:
    storage = FileStateStorage(path)
    for user in range(300):
        await storage.set_state(user, "s")
    before = disk(path)
    inode = inode_of(path)

    await storage.update_data(299, x=1)

    after = disk(path)
    assert inode_of(path) == inode
    assert after.startswith(before)  # nothing already written was touched
    added = after[len(before) :]
    assert added.count(b"\n") == 1
    assert added.endswith(b"\n")
    # one line, of the size of one record, however many users there are
    assert len(added) < 200
    assert json.loads(added) == {
        "key": "299",
        "record": {"current_state": "s", "chat_id": 299, "data": {"x": 1}},
        "expires_at": None,
    }
    await storage.close()


async def test_a_delete_appends_a_delete_marker(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    await storage.delete_state(KEY)
    assert lines_of(path)[-1] == {"key": str(KEY), "deleted": True}
    await storage.close()


async def test_a_write_that_changes_nothing_appends_nothing(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    size = size_of(path)
    await storage.clear_data(KEY)  # there is no data to clear
    await storage.delete_state(54321)  # there is no record
    await storage.claim(KEY, now=time.time(), kind="message", is_command=False)  # no step
    assert size_of(path) == size
    await storage.close()


async def test_compaction_keeps_the_data_and_shrinks_the_file(path: Path) -> None:
    storage = FileStateStorage(path, fsync=False)  # fsync or not, compaction is the same
    await storage.set_state("other", "kept")
    inode = inode_of(path)
    for i in range(1200):
        await storage.update_data(KEY, n=i)
    # 1201 lines were written; past 1000 dead ones the journal was rewritten
    assert inode_of(path) != inode
    assert len(lines_of(path)) < 1000
    assert mode_of(path) == 0o600
    assert not exists(compact_file(path))
    assert await storage.get_data(KEY) == {"n": 1199}
    await storage.update_data(KEY, after=True)  # appends go to the new file
    await storage.close()

    reopened = FileStateStorage(path)
    assert await reopened.get_data(KEY) == {"n": 1199, "after": True}
    assert (await reopened.get_state("other")).current_state == "kept"
    await reopened.close()


async def test_compaction_drops_expired_records(path: Path, clock: StoppedClock) -> None:
    storage = FileStateStorage(path, fsync=False)
    await storage.set_state("short", "s", ex=10)
    clock.time += 20
    for i in range(1100):
        await storage.update_data(KEY, n=i)
    assert all(line["key"] != "short" for line in lines_of(path))
    await storage.close()


async def test_expiry_survives_reopening(path: Path, clock: StoppedClock) -> None:
    storage = FileStateStorage(path, ex=10)
    await storage.set_state(KEY, "s")
    await storage.set_state("forever", "s", ex=None)  # None per call: no expiry
    await storage.close()

    clock.time += 5
    reopened = FileStateStorage(path)
    assert (await reopened.get_state(KEY)).current_state == "s"
    await reopened.close()

    clock.time += 10
    reopened = FileStateStorage(path)
    assert await reopened.get_state(KEY) is None
    assert (await reopened.get_state("forever")).current_state == "s"
    await reopened.close()


async def test_a_torn_last_line_is_dropped_with_a_warning(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    await storage.update_data(KEY, a=1)
    await storage.close()
    good = disk(path)
    # a write that crashed before it was acknowledged
    put(path, b'{"key":"12345","record":{"current_state":"t', append=True)

    reopened = FileStateStorage(path)
    with caplog.at_level(logging.WARNING, logger="aiostep"):
        record = await reopened.get_state(KEY)
    assert record.current_state == "s"
    assert record.data == {"a": 1}
    assert disk(path) == good  # cut away
    warnings = [r for r in caplog.records if r.name == "aiostep" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()
    assert str(len(good)) in warnings[0].getMessage()

    await reopened.update_data(KEY, b=2)  # and later writes work
    await reopened.close()
    again = FileStateStorage(path)
    assert await again.get_data(KEY) == {"a": 1, "b": 2}
    await again.close()


async def test_a_torn_only_line_leaves_an_empty_storage(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put(path, HEADER + b'{"key":"1","rec')
    storage = FileStateStorage(path)
    with caplog.at_level(logging.WARNING, logger="aiostep"):
        assert await storage.get_state(1) is None
    assert disk(path) == HEADER
    assert "incomplete last line" in caplog.text
    await storage.close()


async def test_a_torn_header_of_a_new_journal_starts_it_again(path: Path) -> None:
    put(path, HEADER[:5])  # the process died while creating the journal
    storage = FileStateStorage(path)
    await storage.set_state(1, "s")
    await storage.close()
    assert disk(path).startswith(HEADER)
    assert (await FileStateStorage(path).get_state(1)).current_state == "s"


@pytest.mark.parametrize(
    "foreign", [b"{}", b'{"user": 1}\n', b"some notes, no newline"], ids=["json", "line", "text"]
)
async def test_a_file_that_is_not_a_journal_is_refused_and_left_untouched(
    path: Path, foreign: bytes
) -> None:
    put(path, foreign)
    storage = FileStateStorage(path)
    with pytest.raises(StorageCorruptedError, match="not an aiostep journal") as caught:
        await storage.get_state(1)
    assert caught.value.offset == 0
    assert disk(path) == foreign


CORRUPT_LINES = [
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b"", id="empty-line"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"[1, 2]", id="not-an-object"),
    pytest.param(b'{"record": {}}', id="no-key"),
    pytest.param(b'{"key": "1"}', id="no-record"),
    pytest.param(b'{"key": "1", "record": {"data": [1]}}', id="data-not-a-dict"),
    pytest.param(b'{"key": "1", "record": {"current_state": 5}}', id="state-not-a-string"),
    pytest.param(b'{"key": "1", "record": {}, "expires_at": "soon"}', id="bad-expiry"),
    pytest.param(b'{"key": "1", "record": {"deadline": NaN}}', id="nan"),
]


@pytest.mark.parametrize("bad", CORRUPT_LINES)
async def test_a_corrupt_line_raises_naming_the_file_and_offset(path: Path, bad: bytes) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(1, "one")
    await storage.set_state(2, "two")
    await storage.set_state(3, "three")
    await storage.close()
    lines = disk(path).splitlines(keepends=True)
    content = lines[0] + bad + b"\n" + lines[2]
    put(path, content)
    put(compact_file(path), b"left by a crash")

    reopened = FileStateStorage(path)
    with pytest.raises(StorageCorruptedError) as info:
        await reopened.get_state(1)
    assert info.value.path == str(path)
    assert info.value.offset == len(lines[0])
    assert str(path) in str(info.value)
    assert f"offset {len(lines[0])}" in str(info.value)
    with pytest.raises(StorageCorruptedError):
        await reopened.set_state(4, "four")  # writes refuse too
    assert disk(path) == content  # byte-identical: nothing dropped or repaired
    assert disk(compact_file(path)) == b"left by a crash"
    await reopened.close()


async def test_a_corrupt_last_complete_line_is_not_treated_as_torn(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(1, "one")
    await storage.close()
    first = disk(path)
    put(path, first + b'{"key": "2", "record": \n')

    with pytest.raises(StorageCorruptedError) as info:
        await FileStateStorage(path).get_state(1)
    assert info.value.offset == len(first)
    assert disk(path) == first + b'{"key": "2", "record": \n'


async def test_a_crash_mid_compaction_leaves_a_temp_file_and_loses_nothing(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    await storage.update_data(KEY, a=1)
    await storage.close()
    journal = disk(path)
    leftover = compact_file(path)
    put(leftover, b'{"key":"12345","record":{"current_state":"half-writ')

    reopened = FileStateStorage(path)
    record = await reopened.get_state(KEY)
    assert (record.current_state, record.data) == ("s", {"a": 1})
    assert not exists(leftover)
    assert disk(path) == journal
    await reopened.close()


async def test_a_failed_compaction_keeps_the_journal_and_acknowledged_writes(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash before the rename")

    async def async_crash(src: str, dst: str) -> None:
        crash(src, dst)

    monkeypatch.setattr(aiofiles.os, "replace", async_crash)
    storage = FileStateStorage(path, fsync=False)
    with caplog.at_level(logging.ERROR, logger="aiostep"):
        for i in range(1100):
            await storage.update_data(KEY, n=i)
    assert "compaction failed" in caplog.text
    assert not exists(compact_file(path))
    assert len(lines_of(path)) == 1100  # untouched journal, every write in it
    assert await storage.get_data(KEY) == {"n": 1099}
    await storage.close()

    reopened = FileStateStorage(path)
    assert await reopened.get_data(KEY) == {"n": 1099}
    await reopened.close()


async def test_a_failed_append_is_rolled_back(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    size = size_of(path)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", broken_fsync)
        with pytest.raises(OSError, match="Input/output"):
            await storage.update_data(KEY, lost=True)
    assert size_of(path) == size  # the unacknowledged line is gone
    assert await storage.get_data(KEY) == {}
    await storage.update_data(KEY, kept=True)
    await storage.close()

    reopened = FileStateStorage(path)
    assert await reopened.get_data(KEY) == {"kept": True}
    await reopened.close()


async def test_a_cancelled_write_leaves_memory_and_disk_in_agreement(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    for _ in range(5):
        task = asyncio.ensure_future(storage.update_data(KEY, {"n": 1}))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await storage.update_data(KEY, last=True)  # runs after any write still under way
    in_memory = await storage.get_state(KEY)
    await storage.close()

    reopened = FileStateStorage(path)
    assert await reopened.get_state(KEY) == in_memory
    await reopened.close()


async def test_non_json_kwargs_raise_and_write_nothing(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    size = size_of(path)
    with pytest.raises(TypeError, match="'when'"):
        await storage.write(KEY, Patch(callback="x.y", kwargs={"when": datetime(2024, 1, 1)}))
    assert size_of(path) == size
    assert (await storage.read(KEY)).callback is None  # type: ignore[union-attr]
    await storage.close()


async def test_non_ascii_and_odd_strings_round_trip(path: Path) -> None:
    storage = FileStateStorage(path)
    # (a lone surrogate is refused on every backend: test_hostile_input.py)
    data = {"name": "Аня 👋", "lines": "a\nb\u2028c", "emoji": "\U0001f600", "nul": "\x00"}
    await storage.set_data(KEY, data)
    await storage.close()
    reopened = FileStateStorage(path)
    assert await reopened.get_data(KEY) == data
    await reopened.close()


async def test_a_closed_storage_loads_again_on_next_use(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(KEY, "s")
    await storage.close()
    await storage.close()  # closing twice is harmless
    assert (await storage.get_state(KEY)).current_state == "s"
    await storage.close()
