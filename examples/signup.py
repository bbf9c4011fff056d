"""A signup wizard: name, age, confirm. Run it as a bot (BOT_TOKEN) or in the terminal:

python -m aiostep_dialogs play examples/signup.py
"""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from aiostep_dialogs import Finish, Wizard, step, v


class Signup(Wizard, name="signup"):
    """Ask for a name and an age, then confirm."""

    class State(Enum):
        NAME = auto()
        AGE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="What is your name?", validate=v.text(min_len=2, max_len=50))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.AGE,
        prompt="How old are you?",
        validate=v.integer(min=1, max=120),
        error="Please send a whole number from 1 to 120.",
    )
    async def age(self, value: int) -> None:
        self.data["age"] = value

    @step(
        State.CONFIRM, prompt="{name}, {age}. Correct?", choices={"yes": "Yes", "no": "Start over"}
    )
    async def confirm(self, value: str) -> Signup.State | Finish:
        if value == "no":
            return self.State.NAME  # branch: go to any state
        return self.finish()

    async def on_finish(self) -> None:
        await self.answer(f"Welcome, {self.data['name']}!")


def build(storage: object = None) -> Dispatcher:
    """The bot's Dispatcher: /start or /signup starts the wizard."""
    dp = Dispatcher()
    Signup.setup(dp, entry=[Command("signup")], storage=storage)

    @dp.message(CommandStart())
    async def hello(message: Message) -> None:
        await Signup.start(message)

    return dp


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script
    from examples._run import run_bot

    run_bot(build)
