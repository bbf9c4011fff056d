"""A pizza delivery bot: the menu and the user's addresses come from a (fake) database passed
through the Dispatcher's data, toppings are a multi-select, 30 saved addresses are paged, the
phone number comes from a "Share my phone" button, the menu is a photo, and the whole order
happens in one message that is edited in place.

python -m aiostep_dialogs play examples/pizza.py
"""

from __future__ import annotations

from enum import Enum, auto
from pathlib import Path

from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.types import Message

from aiostep_dialogs import Finish, Wizard, step, v

PHOTO = Path(__file__).with_name("pizza.png")


class PizzaDB:
    """Stands in for the bot's database: what a real bot would query with a session."""

    def __init__(self) -> None:
        self.pizzas = {"margherita": ("Margherita", 8), "diavola": ("Diavola", 10)}
        self.pizzas["funghi"] = ("Funghi", 9)
        self.toppings = {"olives": "Olives", "chili": "Chili", "basil": "Basil", "ham": "Ham"}
        self.orders: list[dict[str, object]] = []

    async def menu(self) -> dict[str, str]:
        """What is on sale now: ``{id: label}``."""
        return {key: f"{name} · {price} €" for key, (name, price) in self.pizzas.items()}

    async def addresses(self, user_id: int) -> list[str]:
        """The user's saved addresses (30 of them: a long list to page through)."""
        return [f"{n} Harbour Street, flat {user_id % 7 + 1}" for n in range(1, 31)]

    async def save(self, order: dict[str, object]) -> int:
        self.orders.append(order)
        return len(self.orders)


async def menu(wizard: Wizard, db: PizzaDB) -> dict[str, str]:
    return await db.menu()  # the ids are stored with the prompt, the labels only shown


async def addresses(wizard: Wizard, db: PizzaDB) -> list[str]:
    return await db.addresses(wizard.key.user_id)


def summary(wizard: Wizard, db: PizzaDB) -> str:
    name, price = db.pizzas[wizard.data["pizza"]]
    toppings = ", ".join(db.toppings[t] for t in wizard.data["toppings"]) or "no toppings"
    total = price + len(wizard.data["toppings"])
    return (
        f"{name} with {toppings}\nto {wizard.data['address']}\n"
        f"phone {wizard.data['phone']}\nTotal: {total} €. Order it?"
    )


class Pizza(Wizard, name="pizza"):
    """Pizza, toppings, address, phone, confirmation: one message, edited as the user goes."""

    ui = "edit"  # button answers edit the prompt in place

    class State(Enum):
        PIZZA = auto()
        TOPPINGS = auto()
        ADDRESS = auto()
        PHONE = auto()
        CONFIRM = auto()

    @step(State.PIZZA, prompt="Which pizza would you like?", photo=PHOTO, choices=menu)
    async def pizza(self, value: str) -> None:
        self.data["pizza"] = value

    @step(
        State.TOPPINGS,
        prompt="Extra toppings? (1 € each, up to 3)",
        choices={"olives": "Olives", "chili": "Chili", "basil": "Basil", "ham": "Ham"},
        multi=True,
        min=0,
        max=3,
        columns=2,
    )
    async def toppings(self, value: list[str]) -> None:
        self.data["toppings"] = value

    @step(State.ADDRESS, prompt="Deliver to?", choices=addresses, per_page=5)
    async def address(self, value: str) -> None:
        self.data["address"] = value

    @step(
        State.PHONE,
        prompt="Your phone number, for the courier?",
        request="contact",
        validate=v.phone(own=True),
    )
    async def phone(self, value: str) -> None:
        self.data["phone"] = value

    @step(State.CONFIRM, prompt=summary, choices={"yes": "Order", "no": "Cancel"})
    async def confirm(self, value: str, db: PizzaDB) -> Finish:
        if value == "no":
            return self.finish(None)
        number = await db.save({"user": self.key.user_id, **self.data})
        return self.finish(number)

    async def on_finish(self) -> None:
        if self.result is None:
            await self.answer_in_place("Order cancelled.")
        else:
            await self.answer_in_place(f"Order #{self.result} is on its way!")


def build(storage: object = None, db: PizzaDB | None = None) -> Dispatcher:
    """The bot's Dispatcher: /start or /pizza starts an order."""
    dp = Dispatcher()
    dp["db"] = db if db is not None else PizzaDB()  # what menu() and confirm() ask for
    # private chats only: the phone step's "Share my phone number" button works only there
    Pizza.setup(dp, entry=[Command("start", "pizza"), F.chat.type == "private"], storage=storage)

    @dp.message(Command("orders"))
    async def orders(message: Message, db: PizzaDB) -> None:
        await message.answer(f"{len(db.orders)} order(s) so far.")

    return dp


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script
    from examples._run import run_bot

    run_bot(build)
