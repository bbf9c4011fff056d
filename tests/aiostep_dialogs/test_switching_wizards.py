"""Starting a wizard while another runs in the same conversation ends the other properly."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.testing import BotSimulator
from aiostep_dialogs import Texts, Wizard, step


class Pizza(Wizard, name="test-switch-pizza"):
    texts = Texts(cancelled="Pizza order dropped.")

    class State(Enum):
        SIZE = auto()

    @step(State.SIZE, prompt="Pizza size?")
    async def size(self, value: str) -> None:
        self.data["size"] = value

    async def on_finish(self) -> None:
        await self.answer(f"pizza {self.data['size']}")


class Taxi(Wizard, name="test-switch-taxi"):
    class State(Enum):
        WHERE = auto()

    @step(State.WHERE, prompt="Taxi to where?")
    async def where(self, value: str) -> None:
        self.data["where"] = value

    async def on_finish(self) -> None:
        await self.answer(f"taxi to {self.data['where']}")


def build() -> Dispatcher:
    dp = Dispatcher()
    Pizza.setup(dp, entry=Command("pizza"))
    Taxi.setup(dp, entry=Command("taxi"))
    return dp


async def test_starting_another_wizard_cancels_the_running_one_with_its_on_cancel() -> None:
    async with BotSimulator(build()) as sim:
        talk = sim.chat()
        await talk.send("/pizza")
        await talk.send("/taxi")
        texts = [m.text for m in talk.messages]
        assert texts == ["Pizza size?", "Pizza order dropped.", "Taxi to where?"]
        await talk.send("airport")
        assert talk.last == "taxi to airport"
        await talk.send("large")  # the pizza wizard is gone: nothing answers as pizza
        assert talk.last == "taxi to airport"
