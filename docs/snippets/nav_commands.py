"""Navigation: renamed commands, own texts, progress, restart on re-entry, giving up."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

from aiostep_dialogs import Commands, Texts, Wizard, step, v


# --8<-- [start:wizard]
class Booking(Wizard, name="docs-booking"):
    commands = Commands(back="undo", cancel="stop", skip="later")  # None turns one off
    texts = Texts(cancelled="Booking dropped.", progress="({index}/{total})")
    show_progress = True
    on_reentry = "restart"  # /book mid-way starts over (default "resume": ask again)
    max_attempts = 3  # for every step; @step(max_attempts=...) overrides it

    class State(Enum):
        GUESTS = auto()
        NOTE = auto()

    @step(State.GUESTS, prompt="How many guests?", validate=v.integer(min=1, max=8))
    async def guests(self, value: int) -> None:
        self.data["guests"] = value

    @step(State.NOTE, prompt="Any wishes? /later to skip", optional=True, default="")
    async def note(self, value: str) -> None:
        self.data["note"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Table for {self.data['guests']}. Note: {self.data['note'] or '-'}")

    async def on_give_up(self) -> None:
        await self.answer("Let's try that another time. /book starts again.")


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Booking.setup(dp, entry=Command("book"), storage=storage)

    @dp.message(Command("help"))  # any other command reaches your handlers as usual
    async def help_(message: Message) -> None:
        await message.answer("I book tables. /stop cancels.")

    return dp


# --8<-- [end:wizard]
