"""A table booking that speaks English and Russian, asks for a delivery address with a
sub-wizard it calls, reminds an idle user after a minute and gives up after five.

python -m aiostep_dialogs play examples/booking.py
BOOKING_REMIND_AFTER=5 BOOKING_TIMEOUT=15 python -m aiostep_dialogs play examples/booking.py

(the second line shortens the wait, to watch the reminder and the timeout arrive while idle)
"""

from __future__ import annotations

import os
from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Texts, Wizard, step, v

#: seconds before "Still there?", and before the booking is dropped (the issue's 1 and 5 min)
REMIND_AFTER = float(os.environ.get("BOOKING_REMIND_AFTER", 60))
TIMEOUT = float(os.environ.get("BOOKING_TIMEOUT", 300))

DAYS = {
    "fri": {"en": "Friday", "ru": "Пятница"},
    "sat": {"en": "Saturday", "ru": "Суббота"},
    "sun": {"en": "Sunday", "ru": "Воскресенье"},
}


#: what an idle user is told, in Booking and in the Address it calls (a called wizard's own
#: timeouts run while it asks)
TEXTS = Texts(
    reminder={"en": "Still there?", "ru": "Вы ещё здесь?"},
    timed_out={
        "en": "No answer, so I dropped the booking. /book starts again.",
        "ru": "Ответа нет, бронь отменена. /book, чтобы начать снова.",
    },
    cancelled={"en": "Booking cancelled.", "ru": "Бронь отменена."},
)


class Address(Wizard, name="booking-address"):
    """Street and city, handed back to whichever wizard called it."""

    remind_after = REMIND_AFTER
    timeout = TIMEOUT
    texts = TEXTS

    class State(Enum):
        STREET = auto()
        CITY = auto()

    @step(State.STREET, prompt={"en": "Street and number?", "ru": "Улица и дом?"})
    async def street(self, value: str) -> None:
        self.data["street"] = value

    @step(State.CITY, prompt={"en": "City?", "ru": "Город?"})
    async def city(self, value: str) -> Finish:
        return self.finish({"street": self.data["street"], "city": value})


class Booking(Wizard, name="booking"):
    """Day, guests, eat in or delivery (the Address sub-wizard), confirmation."""

    remind_after = REMIND_AFTER
    timeout = TIMEOUT
    texts = TEXTS

    class State(Enum):
        DAY = auto()
        GUESTS = auto()
        WHERE = auto()
        CONFIRM = auto()

    @step(State.DAY, prompt={"en": "Which day?", "ru": "Какой день?"}, choices=DAYS)
    async def day(self, value: str) -> None:
        self.data["day"] = value

    @step(
        State.GUESTS,
        prompt={"en": "For how many people?", "ru": "На сколько человек?"},
        validate=v.integer(min=1, max=12),
    )
    async def guests(self, value: int) -> None:
        self.data["guests"] = value

    @step(
        State.WHERE,
        prompt={"en": "Eat in or delivery?", "ru": "В ресторане или доставка?"},
        choices={
            "in": {"en": "Eat in", "ru": "В ресторане"},
            "out": {"en": "Delivery", "ru": "Доставка"},
        },
    )
    async def where(self, value: str) -> Any:
        if value == "out":
            # Address runs now; its result lands in self.data["address"], then CONFIRM
            return self.call(Address, then=self.State.CONFIRM, key="address")
        self.data["address"] = None
        return self.State.CONFIRM

    @step(
        State.CONFIRM,
        prompt=lambda self: summary(self),
        choices={"yes": {"en": "Book", "ru": "Забронировать"}, "no": {"en": "No", "ru": "Нет"}},
    )
    async def confirm(self, value: str) -> Finish:
        return self.finish(value == "yes")

    async def on_finish(self) -> None:
        if self.result:
            await self.answer({"en": "Booked. See you!", "ru": "Забронировано. Ждём вас!"})
        else:
            await self.answer({"en": "Not booked.", "ru": "Бронь не сделана."})


def summary(wizard: Wizard) -> str:
    ru = wizard.locale == "ru"
    day = DAYS[wizard.data["day"]]["ru" if ru else "en"]
    guests = wizard.data["guests"]
    address = wizard.data.get("address")
    if address:
        where = f"{address['street']}, {address['city']}"
        where = ("доставка: " if ru else "delivery to ") + where
    else:
        where = "в ресторане" if ru else "eat in"
    if ru:
        return f"{day}, гостей: {guests}, {where}. Бронируем?"
    return f"{day}, {guests} guest(s), {where}. Book it?"


def build(storage: object = None) -> Dispatcher:
    """The bot's Dispatcher: /start or /book starts a booking."""
    dp = Dispatcher()
    Booking.setup(dp, entry=Command("start", "book"), storage=storage)
    Address.setup(dp)  # only ever called by Booking: no entry command
    return dp


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script
    from examples._run import run_bot

    run_bot(build)
