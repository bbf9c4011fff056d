"""A picture that depends on the conversation: the product the user picked, then their own
photo sent back to them by the file_id kept in the wizard's data."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step, v


class Catalog:
    """Stands in for your database: a product's picture (a URL or file_id), or none."""

    def __init__(self) -> None:
        self.pictures: dict[str, str | None] = {
            "lamp": "https://example.com/lamp.jpg",
            "chair": "AgACAgIAAxkBAAIChair",
            "gift card": None,
        }

    async def picture(self, product: str) -> str | None:
        return self.pictures[product]


# --8<-- [start:wizard]
# handler data by name, as in a prompt callable: here `dp["catalog"] = Catalog()`
async def product_picture(wizard: Wizard, catalog: Catalog) -> str | None:
    return await catalog.picture(wizard.data["product"])  # None: the prompt goes as text


class Shop(Wizard, name="docs-shop"):
    class State(Enum):
        PRODUCT = auto()
        COUNT = auto()
        PHOTO = auto()
        CONFIRM = auto()

    @step(State.PRODUCT, prompt="What would you like?", choices=["lamp", "chair", "gift card"])
    async def product(self, value: str) -> None:
        self.data["product"] = value

    # the picture of the product picked, looked up each time the prompt is sent
    @step(State.COUNT, prompt="How many?", photo=product_picture, validate=v.integer(min=1))
    async def count(self, value: int) -> Finish | None:
        self.data["count"] = value
        return None if self.data["product"] == "gift card" else self.finish()

    @step(State.PHOTO, prompt="Send the photo to print on the card.", validate=v.photo())
    async def photo(self, value: str) -> None:
        self.data["photo"] = value  # the file_id of the user's photo

    # the user's own photo, by its file_id: nothing is uploaded
    @step(
        State.CONFIRM,
        prompt="Print this one?",
        photo=lambda self: self.data["photo"],
        choices=["yes", "no"],
    )
    async def confirm(self, value: str) -> Finish | State:
        return self.finish() if value == "yes" else self.State.PHOTO

    async def on_finish(self) -> None:
        await self.answer(f"Ordered: {self.data['count']} x {self.data['product']}.")


# --8<-- [end:wizard]


def build(storage: object = None) -> Dispatcher:
    dp = Dispatcher()
    dp["catalog"] = Catalog()
    Shop.setup(dp, entry=Command("shop"), storage=storage)
    return dp
