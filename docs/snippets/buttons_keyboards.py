"""Choices as inline buttons and as a reply keyboard."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step


# --8<-- [start:wizard]
class Coffee(Wizard, name="docs-coffee"):
    class State(Enum):
        DRINK = auto()
        MILK = auto()
        SIZE = auto()

    # {value: label}: the button shows the label, the step method gets the value
    @step(State.DRINK, prompt="What can I get you?", choices={"esp": "Espresso", "lat": "Latte"})
    async def drink(self, value: str) -> None:
        self.data["drink"] = value

    @step(State.MILK, prompt="Milk?", choices={"none": "No milk", "oat": "Oat", "cow": "Cow"})
    async def milk(self, value: str) -> None:
        self.data["milk"] = value

    # a list: each value is its own label; keyboard="reply" replaces the user's keyboard
    @step(State.SIZE, prompt="Size?", choices=["Small", "Large"], keyboard="reply")
    async def size(self, value: str) -> None:
        self.data["size"] = value

    async def on_finish(self) -> None:
        order = f"{self.data['size']} {self.data['drink']}, milk: {self.data['milk']}"
        await self.answer(f"One {order}.")


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Coffee.setup(dp, entry=Command("start"), storage=storage)
    return dp


# --8<-- [end:wizard]
