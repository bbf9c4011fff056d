"""A pizza order: inline choices, a loop ("add another item?") and a confirmation.

python -m aiostep_dialogs play examples/order.py
"""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

from aiostep_dialogs import Finish, Wizard, step, v

MENU = {"margherita": "Margherita", "pepperoni": "Pepperoni", "veggie": "Veggie"}
PRICES = {"margherita": 8, "pepperoni": 10, "veggie": 9}


def _summary(wizard: Wizard) -> str:
    lines = [f"{item['qty']} x {MENU[item['pizza']]}" for item in wizard.data.get("items", [])]
    total = sum(PRICES[i["pizza"]] * i["qty"] for i in wizard.data.get("items", []))
    return "Your order:\n" + "\n".join(lines) + f"\nTotal: {total} EUR. Place it?"


class Order(Wizard, name="order"):
    """Pick pizzas and quantities, loop until done, confirm."""

    class State(Enum):
        PIZZA = auto()
        QUANTITY = auto()
        MORE = auto()
        CONFIRM = auto()

    @step(State.PIZZA, prompt="Which pizza?", choices=MENU)
    async def pizza(self, value: str) -> None:
        self.data["current"] = value

    @step(
        State.QUANTITY,
        prompt=lambda wizard: f"How many {MENU[wizard.data['current']]}?",
        validate=v.integer(min=1, max=20),
    )
    async def quantity(self, value: int) -> None:
        items = self.data.setdefault("items", [])
        items.append({"pizza": self.data.pop("current"), "qty": value})

    @step(State.MORE, prompt="Add another item?", choices={"yes": "Add more", "no": "That's all"})
    async def more(self, value: str) -> Order.State | None:
        if value == "yes":
            return self.State.PIZZA  # loop
        return None

    @step(State.CONFIRM, prompt=_summary, choices={"yes": "Place order", "no": "Cancel"})
    async def confirm(self, value: str) -> Finish:
        return self.finish(result=value == "yes")

    async def on_finish(self) -> None:
        if self.result:
            await self.answer("Order placed. Enjoy!")
        else:
            await self.answer("Order cancelled.")


def build(storage: object = None) -> Dispatcher:
    """The bot's Dispatcher: /start or /order starts an order."""
    dp = Dispatcher()
    Order.setup(dp, entry=Command("start"), storage=storage)

    @dp.message(Command("order"))
    async def order(message: Message) -> None:
        await Order.start(message)

    return dp


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script
    from examples._run import run_bot

    run_bot(build)
