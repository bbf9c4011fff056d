"""Choices from data, multi-select and pages: a pizza order over a menu in the Dispatcher's data."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step


# --8<-- [start:source]
class Menu:
    """Stands in for your database."""

    def __init__(self) -> None:
        self.pizzas = {1: "Margherita", 2: "Diavola", 3: "Funghi"}

    async def on_sale(self) -> dict[int, str]:
        return dict(self.pizzas)


# a choices callable gets the wizard, and asks for handler data by name (dp["menu"] here)
async def pizzas_on_sale(wizard: Wizard, menu: Menu) -> dict[int, str]:
    return await menu.on_sale()  # {id: label}: the ids are stored, the labels are shown


# --8<-- [end:source]


# --8<-- [start:wizard]
class PizzaOrder(Wizard, name="docs-pizza-order"):
    class State(Enum):
        PIZZA = auto()
        TOPPINGS = auto()
        ADDRESS = auto()

    @step(State.PIZZA, prompt="Which pizza?", choices=pizzas_on_sale)
    async def pizza(self, value: int) -> None:
        self.data["pizza"] = value  # the id shown on the pressed button

    @step(
        State.TOPPINGS,
        prompt="Toppings? (up to 2)",
        choices={"ham": "Ham", "olives": "Olives", "chili": "Chili"},
        multi=True,
        min=0,
        max=2,
        columns=3,
    )
    async def toppings(self, value: list[str]) -> None:
        self.data["toppings"] = value  # the values picked, in the order picked

    @step(
        State.ADDRESS,
        prompt="Deliver to?",
        choices=[f"Street {n}" for n in range(1, 31)],
        per_page=6,
        columns=2,
    )
    async def address(self, value: str) -> None:
        self.data["address"] = value

    async def on_finish(self) -> None:
        toppings = ", ".join(self.data["toppings"]) or "no toppings"
        await self.answer(f"Pizza #{self.data['pizza']}, {toppings}, to {self.data['address']}.")


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    dp["menu"] = Menu()  # what pizzas_on_sale asks for by name
    PizzaOrder.setup(dp, entry=Command("order"), storage=storage)
    return dp


# --8<-- [end:wizard]
