"""One-message mode: the wizard edits one message in place instead of sending one per step."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step
from aiostep_dialogs.validators import ValidationError


def in_stock(milk: str) -> str:
    if milk == "oat":
        raise ValidationError("Sorry, oat milk is sold out.")
    return milk


# --8<-- [start:wizard]
class Coffee(Wizard, name="docs-one-message"):
    ui = "edit"  # every prompt after a button press replaces the pressed message

    class State(Enum):
        DRINK = auto()
        MILK = auto()
        NAME = auto()
        CONFIRM = auto()

    @step(State.DRINK, prompt="What can I get you?", choices={"esp": "Espresso", "lat": "Latte"})
    async def drink(self, value: str) -> None:
        self.data["drink"] = value

    # a refused press is answered with a toast; the message stays as it is
    @step(State.MILK, prompt="Milk?", choices={"oat": "Oat", "cow": "Cow"}, validate=in_stock)
    async def milk(self, value: str) -> None:
        self.data["milk"] = value

    # a typed answer: the next prompt is a new message, the old one loses its buttons
    @step(State.NAME, prompt="Name for the cup?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.CONFIRM, prompt="{drink} with {milk} for {name}?", choices={"ok": "Order"})
    async def confirm(self, value: str) -> None:
        pass

    async def on_finish(self) -> None:
        # edits the last prompt into the closing text and removes its buttons
        await self.answer_in_place(f"Coming up, {self.data['name']}!")


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Coffee.setup(dp, entry=Command("start"), storage=storage)
    return dp


# --8<-- [end:wizard]
