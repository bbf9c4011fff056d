"""A timeout fired with no update gets the data given to `start_polling(bot, db=db)` (or
aiogram's webhook `setup_application(app, dp, bot=bot, db=db)`), as an update's handlers do:
docs/guides/dependencies.md lists it with `dp["db"] = db` as what steps and hooks get."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.testing import FakeClock
from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Shop:
    """What a bot passes as `start_polling(bot, db=shop)`."""

    name = "the shop"


class Closing(Wizard, name="t_rev5_closing"):
    timeout = 30

    class State(Enum):
        WANT = auto()

    @step(State.WANT, prompt="Want it?")
    async def want(self, value: str, db: Shop) -> Any:
        return self.finish(value)

    async def on_timeout(self, db: Shop) -> Any:
        await self.answer(f"Closed by {db.name}.")
        return self.finish(None)


def setup(dp: Dispatcher, storage: object) -> None:
    Closing.setup(dp, entry=Command("want"), storage=storage)


async def test_a_timeout_with_no_update_gets_the_start_polling_data(
    persistent_backend: Backend, fake_clock: FakeClock
) -> None:
    shop = Shop()
    sim = persistent_backend.simulator(setup)
    await sim.start()
    dp = sim.dispatcher
    # what start_polling(bot, db=shop) emits at startup (and passes with every update)
    await dp.emit_startup(bot=sim.bot, bots=[sim.bot], dispatcher=dp, db=shop)
    talk = sim.chat()
    await talk.send("/want")
    talk.assert_last("Want it?")
    await fake_clock.advance(30)
    talk.assert_last("Closed by the shop.")
