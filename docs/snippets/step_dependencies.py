"""Dependencies: a step asks for the bot's database by parameter name, as a handler would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum, auto
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.filters import Command
from aiogram.types import TelegramObject, User

from aiostep.testing import BotSimulator
from aiostep_dialogs import ValidationError, Wizard, step, v


class Database:
    """Your database (here: a dict of prices and a list of orders)."""

    def __init__(self) -> None:
        self.prices = {"tea": 3, "cake": 5}
        self.orders: list[tuple[int, str, int]] = []


# --8<-- [start:middleware]
class Audit(BaseMiddleware):
    """An inner middleware: what it puts in the data reaches the steps too."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["audit"] = []
        return await handler(event, data)


# --8<-- [end:middleware]


# --8<-- [start:wizard]
async def how_many(wizard: Order, db: Database, event_from_user: User) -> str:
    """A prompt callable asks for what it needs, after the wizard."""
    price = db.prices[wizard.data["item"]]
    return f"{event_from_user.first_name}, how many? ({price} each)"


class Order(Wizard, name="docs-dependencies"):
    class State(Enum):
        ITEM = auto()
        COUNT = auto()

    async def on_start(self, db: Database) -> None:
        await self.answer("Menu: " + ", ".join(sorted(db.prices)))

    @step(State.ITEM, prompt="What would you like?")
    async def item(self, value: str, db: Database, audit: list[str]) -> None:
        if value not in db.prices:
            raise ValidationError(f"We have no {value}.")
        audit.append(f"{self.key.user_id} chose {value}")
        self.data["item"] = value

    @step(State.COUNT, prompt=how_many, validate=v.integer(min=1, max=20))
    async def count(self, value: int) -> None:
        self.data["count"] = value

    async def on_finish(self, db: Database, event_from_user: User) -> None:
        db.orders.append((event_from_user.id, self.data["item"], self.data["count"]))
        await self.answer(f"Ordered {self.data['count']} {self.data['item']}.")


def build(db: Database) -> Dispatcher:
    dp = Dispatcher()
    dp["db"] = db  # or Dispatcher(db=db), or dp.start_polling(bot, db=db)
    dp.message.middleware(Audit())
    Order.setup(dp, entry=Command("order"))
    return dp


# --8<-- [end:wizard]


# --8<-- [start:test]
async def test_an_order_is_saved_in_the_database() -> None:
    db = Database()
    async with BotSimulator(build(db)) as sim:
        talk = sim.chat()
        await talk.send("/order")
        await talk.send("cake")
        talk.assert_last(f"{talk.user.first_name}, how many? (5 each)")
        await talk.send("2")
        talk.assert_last("Ordered 2 cake.")
    assert db.orders == [(talk.user.id, "cake", 2)]


# --8<-- [end:test]
