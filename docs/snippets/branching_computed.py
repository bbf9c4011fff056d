"""Branching to a computed state (declared with branches= for the diagram) and goto()."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step, v


# --8<-- [start:wizard]
class Support(Wizard, name="docs-support"):
    class State(Enum):
        TOPIC = auto()
        ORDER_ID = auto()
        DEVICE = auto()
        DETAILS = auto()

    @step(
        State.TOPIC,
        prompt="What is it about?",
        choices={"billing": "Billing", "app": "The app", "other": "Something else"},
        branches=[State.ORDER_ID, State.DEVICE, State.DETAILS],  # for the flow diagram
    )
    async def topic(self, value: str) -> Support.State:
        self.data["topic"] = value
        following = {"billing": self.State.ORDER_ID, "app": self.State.DEVICE}
        return following.get(value, self.State.DETAILS)  # computed: the graph can't see it

    @step(State.ORDER_ID, prompt="Order number?", validate=v.integer(min=1))
    async def order_id(self, value: int) -> Support.State:
        self.data["order"] = value
        return self.goto(self.State.DETAILS)  # goto() checks the state has a step

    @step(State.DEVICE, prompt="Which phone?", choices=["Android", "iPhone"])
    async def device(self, value: str) -> None:
        self.data["device"] = value  # None: on to the next declared step, DETAILS

    @step(State.DETAILS, prompt="Describe the problem:", validate=v.text(min_len=10))
    async def details(self, value: str) -> None:
        self.data["details"] = value

    async def on_finish(self) -> None:
        fields = ", ".join(f"{key}={value}" for key, value in self.data.items())
        await self.answer(f"Ticket filed: {fields}")


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Support.setup(dp, entry=Command("start"), storage=storage)
    return dp


# --8<-- [end:wizard]
