"""A wizard with scope = "chat": one per chat, anyone in it may answer."""

from __future__ import annotations

from enum import Enum, auto
from pathlib import Path

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.storage import FileStateStorage
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step, v


class TeamPoll(Wizard, name="test-chat-scope-poll"):
    scope = "chat"

    class State(Enum):
        PLACE = auto()
        TIME = auto()

    @step(State.PLACE, prompt="Where do we meet?", validate=v.text(min_len=2))
    async def place(self, value: str) -> None:
        self.data["place"] = value

    @step(State.TIME, prompt="When, at {place}?", validate=v.text(min_len=2))
    async def time(self, value: str) -> None:
        self.data["time"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Meeting at {self.data['place']}, {self.data['time']}.")


@pytest.mark.parametrize("backend", ["memory", "file"])
async def test_two_members_fill_one_chat_wide_wizard(backend: str, tmp_path: Path) -> None:
    def build() -> Dispatcher:
        dp = Dispatcher()
        storage = FileStateStorage(tmp_path / "s.jsonl") if backend == "file" else None
        TeamPoll.setup(dp, entry=Command("meet"), storage=storage)
        return dp

    async with BotSimulator(build) as sim:
        alice, bob = sim.user(first_name="Alice"), sim.user(first_name="Bob")
        group = sim.group()
        a, b = sim.chat(alice, group), sim.chat(bob, group)
        await a.send("/meet")
        assert a.last == "Where do we meet?"
        await b.send("Cafe")
        assert b.last == "When, at Cafe?"
        if backend == "file":
            await sim.restart()
        await a.send("noon")
        assert a.last == "Meeting at Cafe, noon."
