"""Tutorial, part 1: a wizard that asks two questions.

python -m aiostep_dialogs play docs/snippets/tutorial_1.py
"""

from __future__ import annotations

# --8<-- [start:imports]
from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step, v

# --8<-- [end:imports]


# --8<-- [start:wizard]
class Signup(Wizard, name="signup-v1"):
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2, max_len=50))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Welcome, {self.data['name']} ({self.data['age']})!")


# --8<-- [end:wizard]


# --8<-- [start:build]
def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("start", "signup"), storage=storage)
    return dp


# --8<-- [end:build]
