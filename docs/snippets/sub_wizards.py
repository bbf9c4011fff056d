"""A wizard that calls another one for a value (an address), and one that hands over to
another wizard (``self.goto(Other)``)."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Texts, Wizard, step


# --8<-- [start:address]
class Address(Wizard, name="docs-address"):
    """Asks for an address and hands it back: any wizard can call it."""

    class State(Enum):
        STREET = auto()
        CITY = auto()

    @step(State.STREET, prompt="Street and number?")
    async def street(self, value: str) -> None:
        self.data["street"] = value

    @step(State.CITY, prompt="City?")
    async def city(self, value: str) -> Finish:
        return self.finish({"street": self.data["street"], "city": value})  # the result


# --8<-- [end:address]


# --8<-- [start:booking]
class Reservation(Wizard, name="docs-reservation"):
    texts = Texts(cancelled="Reservation cancelled.")

    class State(Enum):
        NAME = auto()
        DELIVERY = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="Who is the table for?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.DELIVERY, prompt="Eat in or delivery?", choices=["eat in", "delivery"])
    async def delivery(self, value: str) -> Any:
        if value == "delivery":
            # Address runs now; its result lands in self.data["address"], then CONFIRM
            return self.call(Address, then=self.State.CONFIRM, key="address")
        self.data["address"] = None
        return self.State.CONFIRM

    @step(State.CONFIRM, prompt="{name}, shall I book it?", choices=["yes", "no"])
    async def confirm(self, value: str) -> Finish:
        return self.finish(value == "yes")

    async def on_return(self, child: Wizard, result: Any) -> None:
        await self.answer(f"Delivering to {result['street']}, {result['city']}.")

    async def on_finish(self) -> None:
        await self.answer("Booked!" if self.result else "Not booked.")


# --8<-- [end:booking]


# --8<-- [start:goto]
class Help(Wizard, name="docs-help"):
    class State(Enum):
        TOPIC = auto()

    @step(State.TOPIC, prompt="Help with what? (say 'book' to make a booking)")
    async def topic(self, value: str) -> Any:
        if value == "book":
            return self.goto(Reservation)  # Help ends here, Reservation starts
        await self.answer("Our staff will call you.")
        return None

    async def on_leave(self, to: type[Wizard]) -> None:
        await self.answer("Let's book you a table.")


# --8<-- [end:goto]


# --8<-- [start:setup]
def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Reservation.setup(dp, entry=Command("book"), storage=storage)
    Address.setup(dp)  # only ever called: no entry command
    Help.setup(dp, entry=Command("help"))
    return dp


# --8<-- [end:setup]
