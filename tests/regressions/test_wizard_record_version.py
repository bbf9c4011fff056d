"""A running wizard's record carries its layout version (``"v"``), and restoring reads it: a
record of a newer version (written by a newer deploy) is not misread but treated as not
running and left as it is, with an error naming the conversation and both versions; a record
of an older known version is read as before."""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message

from aiostep.keys import ConversationKey, storage_key
from aiostep.storage.base import Patch
from aiostep_dialogs import Wizard, step
from aiostep_dialogs.wizard import RECORD_VERSION

if TYPE_CHECKING:
    from conftest import Backend


class Pet(Wizard, name="test-record-version-pet"):
    class State(Enum):
        NAME = auto()
        KIND = auto()

    @step(State.NAME, prompt="Pet's name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.KIND, prompt="What kind of animal is {name}?")
    async def kind(self, value: str) -> None:
        self.data["kind"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['name']} the {self.data['kind']}.")


def setup(log: list[str]) -> Any:
    def install(dp: Dispatcher, storage: Any) -> None:
        Pet.setup(dp, entry=Command("pet"), storage=storage)
        fallback = Router()  # after the wizard's router

        @fallback.message()
        async def normal(message: Message) -> None:
            log.append(f"normal {message.text}")

        dp.include_router(fallback)

    return install


async def _set_version(backend: Backend, key: ConversationKey, version: int) -> None:
    record = await backend.storage.read(storage_key(key))
    assert record is not None and record.kwargs["v"] == RECORD_VERSION
    await backend.storage.write(storage_key(key), Patch(kwargs={**record.kwargs, "v": version}))


async def test_a_record_of_a_newer_version_is_left_alone_and_not_running(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    sim = backend.simulator(setup(log))
    talk = sim.chat()
    await talk.send("/pet")
    await talk.send("Rex")
    talk.assert_last("What kind of animal is Rex?")
    key = ConversationKey(talk.chat.id, talk.user.id, talk.thread_id, sim.bot.id)
    await _set_version(backend, key, RECORD_VERSION + 1)
    before = await backend.record(talk)
    with caplog.at_level(logging.ERROR, logger="aiostep_dialogs"):
        await talk.send("dog")
        await talk.send("/cancel")
    assert log == ["normal dog", "normal /cancel"]  # the normal handlers had both
    after = await backend.record(talk)
    assert before is not None and after is not None
    for field in ("callback", "kwargs", "token", "accepts", "current_state", "data"):
        assert getattr(after, field) == getattr(before, field), field
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and all(str(key) in e for e in errors)
    assert f"version {RECORD_VERSION + 1}" in errors[0]
    assert f"versions 1 to {RECORD_VERSION}" in errors[0]


async def test_a_record_of_an_older_known_version_is_read_as_before(backend: Backend) -> None:
    log: list[str] = []
    sim = backend.simulator(setup(log))
    talk = sim.chat()
    await talk.send("/pet")
    await talk.send("Rex")
    key = ConversationKey(talk.chat.id, talk.user.id, talk.thread_id, sim.bot.id)
    await _set_version(backend, key, 1)
    await talk.send("dog")
    talk.assert_last("Rex the dog.")
    assert log == []


async def test_a_version_3_record_naming_its_wizard_in_w_is_read_as_before(
    backend: Backend,
) -> None:
    """Version 4 stopped storing ``"w"`` (the step's name says it), ``"a"`` at 0 and ``"n"``
    for a prompt without buttons; a record written before, with all three, still runs."""
    log: list[str] = []
    sim = backend.simulator(setup(log))
    talk = sim.chat()
    await talk.send("/pet")
    await talk.send("Rex")
    key = ConversationKey(talk.chat.id, talk.user.id, talk.thread_id, sim.bot.id)
    record = await backend.storage.read(storage_key(key))
    assert record is not None
    assert set(record.kwargs) == {"v", "fp", "h"}  # what version 4 writes here
    old = {**record.kwargs, "v": 3, "w": Pet.wizard_id, "n": "0a1b2c3d", "a": 0}
    await backend.storage.write(storage_key(key), Patch(kwargs=old))
    await talk.send("dog")
    talk.assert_last("Rex the dog.")
    assert log == []
    assert await backend.record(talk) is None
