"""Timeouts and reminders: per wizard and per step, an on_timeout that goes on, own texts."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Texts, Wizard, step, v


# --8<-- [start:wizard]
class Table(Wizard, name="docs-table"):
    remind_after = 60  # seconds, or a timedelta; a list for several reminders
    timeout = timedelta(minutes=5)  # counted from the prompt; an answer starts it again
    texts = Texts(
        reminder="Still there?",  # sent above the prompt, which is asked again
        timed_out="No answer, so I dropped the booking. /table starts again.",
    )

    class State(Enum):
        DAY = auto()
        GUESTS = auto()
        CONFIRM = auto()

    @step(State.DAY, prompt="Which day?")
    async def day(self, value: str) -> None:
        self.data["day"] = value

    @step(
        State.GUESTS,
        prompt="For how many people?",
        validate=v.integer(min=1, max=12),
        remind_after=(30, 90),  # this step reminds twice...
        reminder="Just a number, please.",  # ...in its own words
    )
    async def guests(self, value: int) -> None:
        self.data["guests"] = value

    @step(State.CONFIRM, prompt="{guests} on {day}. Book it?", choices=["yes", "no"], timeout=120)
    async def confirm(self, value: str) -> Any:
        return self.finish(value == "yes")

    async def on_timeout(self) -> Any:
        if self.state is self.State.CONFIRM:
            return self.finish(True)  # no answer to "Book it?" books it
        return None  # cancel with texts.timed_out

    async def on_finish(self) -> None:
        await self.answer("Booked." if self.result else "Not booked.")


# --8<-- [end:wizard]


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Table.setup(dp, entry=Command("table"), storage=storage)
    return dp
