"""A one-step wizard that reminds quickly and times out soon after: what the playground tests
watch arrive while the user is idle."""

from __future__ import annotations

from enum import Enum, auto

from aiostep_dialogs import Wizard, step


class Patience(Wizard, name="t_playground_patience"):
    remind_after = 0.2
    timeout = 0.6

    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Hello, {self.data['name']}")
