"""An aiogram filter may give its handler data: ``Command`` gives ``command``,
``F.text.regexp(...).as_("m")`` gives ``m``. A next step is called like the handler it stands
in for, and takes such filters (``filter=`` of an in-process step, ``@persisted_step(filter=)``),
yet a step that asked for that data by name never got it. Now it does (its own kwargs still
win)."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher, F
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

import aiostep

if TYPE_CHECKING:
    from conftest import Backend

DIGITS = F.text.regexp(r"^(\d+)$").as_("digits")


@pytest.mark.parametrize(
    ("backend", "persisted"),
    [("memory", False), ("memory", True), ("file", True), ("redis", True)],
    ids=["in-process", "memory", "file", "redis"],
    indirect=["backend"],
)
async def test_what_a_steps_filter_gives_reaches_the_step_by_name(
    backend: Backend, persisted: bool
) -> None:
    got: list[str] = []
    name = f"test.filter-data.{uuid.uuid4().hex[:8]}"

    async def age(message: Message, digits: re.Match[str], unit: str) -> None:
        got.append(f"{digits.group(1)} {unit}")

    aiostep.registry.register(age, name, filter=DIGITS if persisted else None)

    def setup(dp: Dispatcher, storage: Any) -> None:
        aiostep.setup(dp, storage=storage if persisted else None)

        @dp.message(Command("start"))
        async def start(message: Message, steps: aiostep.Steps) -> None:
            await steps.next_step(
                name, filter=None if persisted else DIGITS, kwargs={"unit": "years"}
            )

        @dp.message()
        async def normal(message: Message) -> None:
            got.append(f"normal {message.text}")

    try:
        sim = backend.simulator(setup)
        talk = sim.chat()
        await talk.send("/start")
        await talk.send("forty")
        await talk.send("42")
    finally:
        aiostep.registry.unregister(name)
    assert got == ["normal forty", "42 years"]


@pytest.mark.parametrize("backend", ["memory"], indirect=True)  # in-process: one is enough
async def test_a_command_filter_gives_an_in_process_step_its_command(backend: Backend) -> None:
    got: list[str] = []

    async def confirmed(message: Message, command: CommandObject) -> None:
        got.append(f"{command.command} {command.args}")

    def setup(dp: Dispatcher, storage: Any) -> None:
        aiostep.setup(dp)

        @dp.message(Command("start"))
        async def start(message: Message, steps: aiostep.Steps) -> None:
            await steps.next_step(confirmed, filter=Command("yes"), allow_commands=True)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/start")
    await talk.send("/yes please")
    assert got == ["yes please"]
