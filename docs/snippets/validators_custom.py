"""Validators: built-ins, chains, your own (sync and async), and rejecting from a step."""

from __future__ import annotations

import datetime as dt
from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import ValidationError, Wizard, step, v

TAKEN = {"admin", "root"}


# --8<-- [start:custom]
def no_digits(value: str) -> str:
    """A sync validator: gets the previous validator's result, returns the new value."""
    if any(ch.isdigit() for ch in value):
        raise ValidationError("Names have no digits.")
    return value.title()


async def available(value: str) -> str:
    """An async validator: awaited like the rest (e.g. a database look-up)."""
    if value.lower() in TAKEN:
        raise ValidationError(f"{value} is taken, try another one.")
    return value.lower()


# --8<-- [end:custom]


class Profile(Wizard, name="docs-validators"):
    class State(Enum):
        NAME = auto()
        LOGIN = auto()
        BIRTHDAY = auto()
        PHOTO = auto()
        HEIGHT = auto()

    # --8<-- [start:steps]
    @step(State.NAME, prompt="Your name?", validate=[v.text(min_len=2), no_digits])
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.LOGIN,
        prompt="Pick a login (letters only):",
        validate=v.chain(
            v.text(regex=r"[A-Za-z]{3,16}", error="3 to 16 latin letters, please."),
            available,
        ),
    )
    async def login(self, value: str) -> None:
        self.data["login"] = value

    @step(
        State.BIRTHDAY,
        prompt="Your birthday?",
        validate=v.date(min=dt.date(1900, 1, 1), max=dt.date(2015, 12, 31)),
    )
    async def birthday(self, value: dt.date) -> None:
        self.data["birthday"] = value.isoformat()  # data is JSON: store dates as text

    @step(State.PHOTO, prompt="Send a photo of yourself.", validate=v.photo())
    async def photo(self, file_id: str) -> None:
        self.data["photo"] = file_id

    @step(State.HEIGHT, prompt="Height in metres?", validate=v.number(min=0.5, max=2.5))
    async def height(self, value: float) -> None:
        if value > 2.2 and self.data["birthday"] > "2010":
            raise ValidationError("That seems tall for your age; check the number.")
        self.data["height"] = value

    # --8<-- [end:steps]

    async def on_finish(self) -> None:
        await self.answer(f"Saved {self.data['login']}.")


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Profile.setup(dp, entry=Command("start"), storage=storage)
    return dp
