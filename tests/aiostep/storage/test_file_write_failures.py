"""A FileStateStorage whose disk fails (full, read-only, I/O error): the developer gets an
exception naming the journal and what was lost (nothing acknowledged), and the conversation
resumes where it was once the disk works again."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import FileStateStorage
from aiostep.exceptions import StorageUnavailableError
from aiostep.testing import BotSimulator

Names = Callable[[str], str]
KEY = "1:1"


class Disk:
    """``os.fsync`` that fails with ENOSPC while ``full`` (after ``ok_calls`` more calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.ok_calls = 0
        real = os.fsync

        def fsync(fd: int) -> None:
            if self.full:
                if self.ok_calls <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self.ok_calls -= 1
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Disk]:
    yield Disk(monkeypatch)


async def test_a_full_disk_raises_an_error_naming_the_journal(tmp_path: Path, disk: Disk) -> None:
    path = tmp_path / "steps.jsonl"
    storage = FileStateStorage(path)
    await storage.set_data(KEY, {"n": 1})
    disk.full = True
    with pytest.raises(StorageUnavailableError) as caught:
        await storage.set_data(KEY, {"n": 2})
    message = str(caught.value)
    assert str(path) in message and "No space left on device" in message
    assert "not written" in message
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    disk.full = False
    assert await storage.get_data(KEY) == {"n": 1}
    await storage.close()


def step_bot(storage: FileStateStorage, step_name: Names, log: list[str]) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    async def age(message: Message) -> None:
        log.append(f"age {message.text}")
        await message.answer("Thanks")

    name = step_name("full.age")
    aiostep.registry.register(age, name)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await message.answer("Your age?")
        await aiostep.register_next_step(message.from_user.id, name)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


@pytest.mark.parametrize("ok_calls", [0, 1], ids=["claim-fails", "outcome-fails"])
async def test_an_answer_on_a_full_disk_leaves_the_step_to_answer_again(
    tmp_path: Path, disk: Disk, step_name: Names, ok_calls: int
) -> None:
    log: list[str] = []
    storage = FileStateStorage(tmp_path / "steps.jsonl")
    sim = BotSimulator(step_bot(storage, step_name, log))
    async with sim:
        talk = sim.chat()
        await talk.send("/ask")
        disk.full, disk.ok_calls = True, ok_calls
        with pytest.raises(StorageUnavailableError):
            await talk.send("41")
        disk.full = False
        await talk.send("42")
        assert log[-1] == "age 42"
        talk.assert_last("Thanks")
