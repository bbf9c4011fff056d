"""FileStateStorage: one writer per journal file, enforced with an OS lock."""

from __future__ import annotations

import asyncio
import gc
import sys
import textwrap
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest

from aiostep.exceptions import StorageLockedError
from aiostep.storage.file import FileStateStorage

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from aiostep.storage.file import FileStateStorage

    async def main() -> None:
        storage = FileStateStorage(sys.argv[1], fsync=False)
        await storage.set_state(1, "held")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # hold the journal until told to stop
        await storage.close()

    asyncio.run(main())
    """
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "states.jsonl"


@pytest.mark.slow  # the holder is a fresh interpreter
async def test_a_journal_held_by_another_process_is_refused_until_it_exits(path: Path) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path), stdin=PIPE, stdout=PIPE
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert await holder.stdout.readline() == b"ready\n"
        storage = FileStateStorage(path, fsync=False)
        with pytest.raises(StorageLockedError) as caught:
            await storage.get_state(1)
        message = str(caught.value)
        assert str(path) in message
        assert f"another process (pid {holder.pid})" in message
        assert caught.value.holder_pid == holder.pid
        with pytest.raises(StorageLockedError):
            await storage.set_state(2, "mine")  # writes are refused too
        holder.stdin.write(b"stop\n")
        assert await asyncio.wait_for(holder.wait(), 30) == 0
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()

    # the same object works once the other process is gone, and sees its records
    assert (await storage.get_state(1)).current_state == "held"
    await storage.set_state(2, "mine")
    await storage.close()


async def test_a_second_storage_object_in_the_same_process_is_refused(path: Path) -> None:
    first = FileStateStorage(path, fsync=False)
    await first.set_state(1, "first")
    second = FileStateStorage(path, fsync=False)
    with pytest.raises(StorageLockedError) as caught:
        await second.get_state(1)
    assert str(path) in str(caught.value)
    assert "another FileStateStorage object in this process" in str(caught.value)
    await first.close()  # closing releases the lock
    assert (await second.get_state(1)).current_state == "first"
    with pytest.raises(StorageLockedError):
        await first.get_state(1)  # now the second one holds it
    await second.close()


async def test_a_forgotten_storage_releases_its_lock_when_collected(path: Path) -> None:
    forgotten = FileStateStorage(path, fsync=False)
    await forgotten.set_state(1, "s")
    del forgotten  # never closed
    gc.collect()
    storage = FileStateStorage(path, fsync=False)
    assert (await storage.get_state(1)).current_state == "s"
    await storage.close()
