"""A second bot started on a `FileStateStorage` journal another one holds: its startup used
to succeed (the scheduler's first look caught the `StorageLockedError`), so it polled with
every update failing, and logged the same traceback every second. Now the startup fails with
the error naming the journal and its holder, as a file that is not a journal does."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiogram import Dispatcher

import aiostep
from aiostep import FileStateStorage
from aiostep.exceptions import StorageCorruptedError, StorageLockedError
from aiostep.testing import BotSimulator


def bot(path: Path) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=FileStateStorage(path))
    return dp


async def test_a_second_bot_on_a_held_journal_does_not_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "steps.jsonl"
    async with BotSimulator(bot(path)) as first:
        await first.chat().send("hi")
        second = BotSimulator(bot(path))
        try:
            with pytest.raises(StorageLockedError, match="holds this journal"):
                await second.start()
        finally:
            await second.aclose()
    assert "could not read the storage; retrying" not in caplog.text


async def test_a_bot_on_a_file_that_is_not_a_journal_does_not_start(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    sim = BotSimulator(bot(path))
    try:
        with pytest.raises(StorageCorruptedError):
            await sim.start()
    finally:
        await sim.aclose()
    assert path.read_text() == "my notes\n"


async def test_the_bot_starts_once_the_journal_is_free(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    holder = FileStateStorage(path)
    await holder.set_data("1:1", {"n": 1})
    sim = BotSimulator(lambda: bot(path))
    with pytest.raises(StorageLockedError):
        await sim.start()
    await holder.close()
    await sim.restart()  # a new process, now alone on the journal
    await sim.chat().send("hi")
    await sim.aclose()
