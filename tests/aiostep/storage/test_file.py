"""FileStateStorage: durability, the journal format on disk, compaction and damaged lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiofiles.os
import pytest

from aiostep.clock import set_clock
from aiostep.exceptions import StorageCorruptedError
from aiostep.storage.base import Patch
from aiostep.storage.file import HEADER, HEADER_V1, FileStateStorage

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


def payload_of(line: bytes) -> dict[str, Any]:
    """The JSON payload of one journal line, after checking both of its checksums."""
    key_crc, crc, payload, key_crc_again = (
        line.split(b" ", 1)[0],
        line[9:17],
        line[18:-9],
        line[-8:],
    )
    assert int(crc, 16) == zlib.crc32(payload)
    obj: dict[str, Any] = json.loads(payload)
    assert key_crc == key_crc_again == b"%08x" % zlib.crc32(obj["key"].encode())
    return obj


def lines_of(path: Path) -> list[dict[str, Any]]:
    """The payloads of the journal's record lines (after its header line)."""
    raw = path.read_bytes()
    assert raw.startswith(HEADER)
    return [payload_of(line) for line in raw[len(HEADER) :].splitlines()]


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


def quarantine_file(path: Path) -> Path:
    return Path(f"{path}.quarantine")


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
    assert payload_of(added.rstrip(b"\n")) == {
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
    await storage._compaction_finished()  # it runs in the background
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
    await storage._compaction_finished()  # it runs in the background
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


def a_line(key: str, payload: bytes) -> bytes:
    """A journal line with good checksums around ``payload`` (whatever it holds)."""
    kc = b"%08x" % zlib.crc32(key.encode())
    return b"%s %08x %s %s" % (kc, zlib.crc32(payload), payload, kc)


CORRUPT_LINES = [
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b"", id="empty-line"),
    pytest.param(b"\xff\xfe{}", id="not-utf8"),
    pytest.param(b"[1, 2]", id="not-an-object"),
    pytest.param(b'{"record": {}}', id="no-key"),
    pytest.param(b'{"key": "2"}', id="no-record"),
    pytest.param(b'{"key": "2", "record": {"data": [1]}}', id="data-not-a-dict"),
    pytest.param(b'{"key": "2", "record": {"current_state": 5}}', id="state-not-a-string"),
    pytest.param(b'{"key": "2", "record": {}, "expires_at": "soon"}', id="bad-expiry"),
    pytest.param(b'{"key": "2", "record": {"deadline": NaN}}', id="nan"),
    # the same mistakes behind good checksums: only the content check catches them
    pytest.param(a_line("2", b'{"key":"2","record":{"data":[1]}}'), id="checksummed-bad-type"),
    pytest.param(a_line("2", b'{"key":"2","change":{"set":{"chat_id":[]}}}'), id="bad-change"),
    pytest.param(b"flip", id="one-byte-flipped"),  # the key-2 line with one byte changed
]


@pytest.mark.parametrize("bad", CORRUPT_LINES)
async def test_a_corrupt_line_is_quarantined_and_only_its_conversation_starts_fresh(
    path: Path, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # Until 0.5 one such line made every call raise StorageCorruptedError (the bot was down).
    storage = FileStateStorage(path)
    await storage.set_state(1, "one")
    await storage.set_state(2, "two")
    await storage.set_state(3, "three")
    await storage.close()
    lines = disk(path).splitlines(keepends=True)
    if bad == b"flip":
        bad = lines[2][:30] + bytes([lines[2][30] ^ 0x01]) + lines[2][31:-1]
    content = lines[0] + lines[1] + bad + b"\n" + lines[3]
    offset = len(lines[0]) + len(lines[1])
    put(path, content)
    put(compact_file(path), b"left by a crash")

    reopened = FileStateStorage(path)
    with caplog.at_level(logging.ERROR, logger="aiostep"):
        assert (await reopened.get_state(1)).current_state == "one"
    assert (await reopened.get_state(3)).current_state == "three"
    assert await reopened.get_state(2) is None  # its conversation starts fresh
    await reopened.set_state(4, "four")  # and writes work

    quarantined = [json.loads(line) for line in disk(quarantine_file(path)).splitlines()]
    assert len(quarantined) == 1
    assert quarantined[0]["journal"] == str(path)
    assert quarantined[0]["offset"] == offset
    assert quarantined[0]["line"].encode("latin-1") == bad  # the raw bytes, kept aside
    assert mode_of(quarantine_file(path)) == 0o600
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert str(path) in errors[0]
    assert f"offset {offset}" in errors[0]
    if b'"2"' in bad and b"NaN" not in bad:  # the line still tells its key or key checksum
        assert (
            "conversation '2' starts fresh" in errors[0]
            or f"key checksum {zlib.crc32(b'2'):08x}" in errors[0]
        )
    # the journal was rewritten without the damaged line, so the next load is clean (in any
    # order of keys: records are held in shards by key hash)
    assert sorted(line["key"] for line in lines_of(path)) == ["1", "3", "4"]
    assert not exists(compact_file(path))
    await reopened.close()
    again = FileStateStorage(path)
    assert (await again.get_state(4)).current_state == "four"
    await again.close()
    assert len(disk(quarantine_file(path)).splitlines()) == 1


async def test_change_lines_apply_to_records_written_with_null_fields(path: Path) -> None:
    # A record's line as another writer may put it: fields at their default spelled as null.
    put(
        path,
        HEADER
        + a_line("1", b'{"key":"1","record":{"current_state":"s","data":null},"expires_at":null}')
        + b"\n"
        + a_line("1", b'{"key":"1","change":{"data":{"a":1}},"expires_at":null}')
        + b"\n",
    )
    storage = FileStateStorage(path)
    assert await storage.get_data(1) == {"a": 1}
    assert (await storage.get_state(1)).current_state == "s"
    assert not exists(quarantine_file(path))
    await storage.close()


async def test_a_corrupt_last_complete_line_is_quarantined_not_treated_as_torn(
    path: Path,
) -> None:
    storage = FileStateStorage(path)
    await storage.set_state(1, "one")
    await storage.close()
    first = disk(path)
    put(path, first + b'{"key": "2", "record": \n')

    reopened = FileStateStorage(path)
    assert (await reopened.get_state(1)).current_state == "one"
    (quarantined,) = [json.loads(line) for line in disk(quarantine_file(path)).splitlines()]
    assert quarantined["offset"] == len(first)
    assert quarantined["line"] == '{"key": "2", "record": '
    await reopened.close()


async def test_a_journal_of_version_1_is_read_and_rewritten_with_checksums(path: Path) -> None:
    put(
        path,
        HEADER_V1
        + b'{"key":"1","record":{"current_state":"s","data":{"a":1}},"expires_at":null}\n'
        + b'{"key":"2","record":{"current_state":"t"},"expires_at":null}\n'
        + b'{"key":"2","deleted":true}\n',
    )
    storage = FileStateStorage(path)
    record = await storage.get_state(1)
    assert (record.current_state, record.data) == ("s", {"a": 1})
    assert await storage.get_state(2) is None
    assert lines_of(path) == [  # version 2 now: checked by lines_of
        {"key": "1", "record": {"current_state": "s", "data": {"a": 1}}, "expires_at": None}
    ]
    await storage.update_data(1, b=2)
    await storage.close()
    reopened = FileStateStorage(path)
    assert await reopened.get_data(1) == {"a": 1, "b": 2}
    await reopened.close()
    assert not exists(quarantine_file(path))


async def test_a_damaged_line_of_a_version_1_journal_is_quarantined(path: Path) -> None:
    put(
        path,
        HEADER_V1
        + b'{"key":"1","record":{"current_state":"s"},"expires_at":null}\n'
        + b'{"key":"2","record":{"current_state":"t"},"expires_at":nul}\n',
    )
    storage = FileStateStorage(path)
    assert (await storage.get_state(1)).current_state == "s"
    assert await storage.get_state(2) is None
    assert len(disk(quarantine_file(path)).splitlines()) == 1
    await storage.close()


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
        await storage._compaction_finished()  # it runs in the background
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


async def test_records_read_back_after_reopening_are_the_callers_to_change(path: Path) -> None:
    storage = FileStateStorage(path)
    await storage.set_data(KEY, {"items": [1]})
    await storage.close()
    reopened = FileStateStorage(path)
    record = await reopened.read(KEY)
    assert record is not None
    record.data["items"].append(2)
    claim = await reopened.claim(KEY, now=time.time(), kind="message", is_command=False)
    assert claim.record is not None
    claim.record.data["items"].append(3)
    assert await reopened.get_data(KEY) == {"items": [1]}
    await reopened.close()
