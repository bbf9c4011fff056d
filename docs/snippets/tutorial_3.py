"""Tutorial, part 3: the same wizard on a storage that survives restarts.

BOT_TOKEN=123:abc python docs/snippets/tutorial_3.py
python -m aiostep_dialogs play docs/snippets/tutorial_3.py --storage file:signup-state.jsonl
"""

from __future__ import annotations

import asyncio
import os
from enum import Enum, auto

from aiogram import Bot, Dispatcher
from aiogram.filters import Command

from aiostep.storage import FileStateStorage
from aiostep_dialogs import Finish, Wizard, step, v


class Signup(Wizard, name="signup-v3"):
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

    @step(State.CONFIRM, prompt="{name}, {age}. Correct?", choices={"yes": "Yes", "no": "No"})
    async def confirm(self, value: str) -> Signup.State | Finish:
        return self.State.NAME if value == "no" else self.finish()

    async def on_finish(self) -> None:
        await self.answer(f"Welcome, {self.data['name']}!")


# --8<-- [start:build]
def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Signup.setup(dp, entry=Command("start", "signup"), storage=storage)
    return dp


async def main() -> None:
    storage = FileStateStorage("signup-state.jsonl")  # created on first use, mode 0600
    bot = Bot(os.environ["BOT_TOKEN"])
    await build(storage).start_polling(bot)  # on shutdown, the storage is closed too


if __name__ == "__main__":
    asyncio.run(main())
# --8<-- [end:build]
