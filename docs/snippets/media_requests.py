"""A photo prompt, a "Share my phone" button with a typed fallback, and a location button."""

from __future__ import annotations

from enum import Enum, auto
from pathlib import Path

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import ReplyKeyboardRemove

from aiostep_dialogs import Wizard, escape, step, v

# a photo on disk (here the docs' screenshot; yours would be the menu)
MENU = Path(__file__).parents[1] / "assets" / "web-playground.png"


# --8<-- [start:wizard]
class Delivery(Wizard, name="docs-delivery"):
    parse_mode = "HTML"

    class State(Enum):
        DISH = auto()
        PHONE = auto()
        WHERE = auto()

    # the prompt is the photo's caption; a file on disk is uploaded once, then sent by file_id
    @step(
        State.DISH,
        prompt="<b>Today's menu</b>: what would you like?",
        photo=MENU,
        choices={"soup": "Soup", "pie": "Pie"},
    )
    async def dish(self, value: str) -> None:
        self.data["dish"] = value

    # one reply-keyboard button that shares the user's own number; typing it works too
    @step(
        State.PHONE,
        prompt="Your phone number? Tap the button, or type it with its country code.",
        request="contact",
        validate=v.phone(own=True),
    )
    async def phone(self, value: str) -> None:
        self.data["phone"] = value  # "+442079460958"

    # without validate=, a request step takes only the button's answer
    @step(State.WHERE, prompt="Where should we bring it?", request="location")
    async def where(self, value: dict[str, float]) -> None:
        self.data["where"] = value  # {"latitude": ..., "longitude": ...}

    async def on_finish(self) -> None:
        summary = f"{self.data['dish']} for {self.data['phone']}"
        await self.answer(
            f"On its way: {escape(summary, 'HTML')}", reply_markup=ReplyKeyboardRemove()
        )


# --8<-- [end:wizard]


# --8<-- [start:region]
class Callback(Wizard, name="docs-callback"):
    class State(Enum):
        PHONE = auto()

    # needs `pip install 'aiostep[phone]'`: "020 7946 0958" is read as a British number
    @step(State.PHONE, prompt="Which number should we call?", validate=v.phone(region="GB"))
    async def phone(self, value: str) -> None:
        self.data["phone"] = value

    async def on_finish(self) -> None:
        await self.answer(f"We will call {self.data['phone']}.")


# --8<-- [end:region]


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    Delivery.setup(dp, entry=Command("order"), storage=storage)
    Callback.setup(dp, entry=Command("call"), storage=storage)
    return dp
