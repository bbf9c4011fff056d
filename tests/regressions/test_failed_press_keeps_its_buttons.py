"""A button press whose step method fails (a database that is down) reaches ``dp.errors`` and
the step stays as it was, so the user can answer again: with the buttons too. The press took
the keyboard off the prompt before the step method ran, and the failure left the prompt with
none, so the user had nothing to press (one-message mode already left the message as it
was). The keyboard is put back."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import ErrorEvent

from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Booking(Wizard, name="t_failed_press_booking"):
    down = True  # the database the step writes to

    class State(Enum):
        DAY = auto()
        TIME = auto()

    @step(State.DAY, prompt="Which day?", choices={"sat": "Saturday", "sun": "Sunday"})
    async def day(self, value: str) -> None:
        if Booking.down:
            raise ConnectionError("the database is down")
        self.data["day"] = value

    @step(State.TIME, prompt="What time?")
    async def time(self, value: str) -> None:
        self.data["time"] = value


def bot(dp: Dispatcher, storage: object) -> None:
    Booking.setup(dp, entry=Command("book"), storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        return True  # logged elsewhere; the user can press again


async def test_a_press_whose_step_failed_leaves_the_buttons_to_press_again(
    backend: Backend, monkeypatch: Any
) -> None:
    monkeypatch.setattr(Booking, "down", True)
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/book")
    await talk.click("Sunday")
    talk.assert_last("Which day?", buttons=[["Saturday", "Sunday"]])
    assert sim.session.unanswered_callbacks() == []
    monkeypatch.setattr(Booking, "down", False)
    await talk.click("Sunday")
    talk.assert_last("What time?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"day": "sun"}
