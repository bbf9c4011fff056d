"""A refused button press in one-message mode gets its reason as a toast, and Telegram takes at
most 200 characters there (``MESSAGE_TOO_LONG``). A longer reason (a validator explaining
itself) made the toast fail: the press was never answered, the user's app kept its spinner,
and the reason was lost. The toast now carries the reason cut to 200 characters."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import ValidationError, Wizard, step

if TYPE_CHECKING:
    from conftest import Backend

REASON = "Oat milk is sold out today. " * 10  # 280 characters


def no_oat(value: str) -> str:
    if value == "oat":
        raise ValidationError(REASON)
    return value


class Coffee(Wizard, name="t_long_toast_coffee"):
    ui = "edit"

    class State(Enum):
        MILK = auto()

    @step(State.MILK, prompt="Milk?", choices={"oat": "Oat", "cow": "Cow"}, validate=no_oat)
    async def milk(self, value: str) -> None:
        self.data["milk"] = value


def bot(dp: Dispatcher, storage: object) -> None:
    Coffee.setup(dp, entry=Command("coffee"), storage=storage)


async def test_a_refusal_longer_than_a_toast_is_cut_to_fit(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/coffee")
    await talk.click("Oat")
    assert sim.session.unanswered_callbacks() == []
    (toast,) = talk.toasts
    assert len(toast) == 200 and toast.endswith("…")
    assert REASON.startswith(toast[:-1])
    talk.assert_last("Milk?", buttons=[["Oat", "Cow"]])
