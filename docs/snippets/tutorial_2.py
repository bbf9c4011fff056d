"""Tutorial, part 2: a friendlier error, a confirmation with buttons, and a branch back.

python -m aiostep_dialogs play docs/snippets/tutorial_2.py
"""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step, v


class Signup(Wizard, name="signup-v2"):
    class State(Enum):
        NAME = auto()
        AGE = auto()
        CONFIRM = auto()  # new

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2, max_len=50))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    # --8<-- [start:age]
    @step(
        State.AGE,
        prompt="How old are you?",
        validate=v.integer(min=1, max=120),
        error="Please send a whole number from 1 to 120.",
    )
    async def age(self, value: int) -> None:
        self.data["age"] = value

    # --8<-- [end:age]

    # --8<-- [start:confirm]
    @step(State.CONFIRM, prompt="{name}, {age}. Correct?", choices={"yes": "Yes", "no": "No"})
    async def confirm(self, value: str) -> Signup.State | Finish:
        if value == "no":
            return self.State.NAME  # go back to any state
        return self.finish()

    async def on_finish(self) -> None:
        await self.answer(f"Welcome, {self.data['name']}!")

    # --8<-- [end:confirm]


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("start", "signup"), storage=storage)
    return dp
