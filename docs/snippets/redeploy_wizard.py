"""A wizard redeployed with changes while conversations are mid-way.

The previous deploy asked SIZE, NAME, NOTE and kept the name as one string. This one renamed
SIZE to CUP, inserted MILK, removed NOTE, added PAY, and keeps the name as first and last.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Any, ClassVar

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step


# --8<-- [start:wizard]
class Coffee(Wizard, name="coffee"):  # the id stays: it is in every stored conversation
    class State(Enum):
        CUP = auto()
        MILK = auto()  # inserted: running conversations meet it when they get here
        NAME = auto()
        PAY = auto()

    # a conversation stored at SIZE goes on at CUP (history entries too)
    renamed: ClassVar[dict[str, Enum]] = {"SIZE": State.CUP}
    # one stored at a removed state (NOTE) goes on here; by default: the latest
    # step it answered that still exists (as /back would), else the first step
    fallback = State.PAY
    # bump it when the shape of the data changes, and convert the old shape below
    schema_version = 2

    @staticmethod
    def migrate(data: dict[str, Any], version: int) -> dict[str, Any]:
        if version < 2 and isinstance(data.get("name"), str):
            first, _, last = data["name"].partition(" ")
            data["name"] = {"first": first, "last": last}
        return data

    @step(State.CUP, prompt="Which cup?", choices=["small", "large"])
    async def cup(self, value: str) -> None:
        self.data["cup"] = value

    @step(State.MILK, prompt="Milk?", choices=["yes", "no"])
    async def milk(self, value: str) -> None:
        self.data["milk"] = value == "yes"

    @step(State.NAME, prompt="Your full name?")
    async def name(self, value: str) -> None:
        first, _, last = value.partition(" ")
        self.data["name"] = {"first": first, "last": last}

    @step(State.PAY, prompt="Card or cash?", choices=["card", "cash"])
    async def pay(self, value: str) -> None:
        self.data["pay"] = value

    async def on_finish(self) -> None:
        first = self.data["name"]["first"]
        await self.answer(f"A {self.data['cup']} cup for {first}, paid by {self.data['pay']}.")


# --8<-- [end:wizard]


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Coffee.setup(dp, entry=Command("coffee"), storage=storage)
    return dp
