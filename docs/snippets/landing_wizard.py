"""The signup wizard of the landing page: three questions, validation, a confirmation."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step, v


# --8<-- [start:wizard]
class Signup(Wizard, name="landing-signup"):
    class State(Enum):
        NAME = auto()
        AGE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2, max_len=50))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    @step(State.CONFIRM, prompt="{name}, {age}. Correct?", choices={"yes": "Yes", "no": "No"})
    async def confirm(self, value: str) -> Signup.State | Finish:
        return self.State.NAME if value == "no" else self.finish()

    async def on_finish(self) -> None:
        await self.answer(f"Welcome, {self.data['name']}!")


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("signup"), storage=storage)  # Memory, File or Redis
    return dp


# --8<-- [end:wizard]
