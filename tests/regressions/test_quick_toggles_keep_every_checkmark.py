"""Two options of a multi-select pressed in quick succession: each press carries the message
as Telegram had it when it was pressed, so the second one's copy has no checkmark on the
first. The keyboard was redrawn from that copy, and the first pick, though stored, lost its
checkmark (a user who then pressed it again to pick it unpicked it). The checkmarks are now
drawn from the picks the conversation holds."""

from __future__ import annotations

import asyncio
from enum import Enum, auto
from typing import TYPE_CHECKING

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Toppings(Wizard, name="t_quick_toggles"):
    class State(Enum):
        PICK = auto()

    @step(
        State.PICK,
        prompt="Toppings?",
        choices={"ham": "Ham", "olive": "Olive", "corn": "Corn"},
        multi=True,
        columns=3,
    )
    async def pick(self, value: list[str]) -> None:
        self.data["toppings"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Toppings: {', '.join(self.data['toppings'])}")


def bot(dp: Dispatcher, storage: object) -> None:
    Toppings.setup(dp, entry=Command("pizza"), storage=storage)


async def test_quick_presses_on_one_keyboard_keep_every_checkmark(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/pizza")
    prompt = talk.last_message
    await asyncio.gather(talk.click("Ham", message=prompt), talk.click("Corn", message=prompt))
    talk.assert_last("Toppings?", buttons=[["✅ Ham", "Olive", "✅ Corn"], ["Done"]])
    # both are picked, and a press on a checkmarked one unpicks it
    await talk.click("✅ Ham")
    talk.assert_last("Toppings?", buttons=[["Ham", "Olive", "✅ Corn"], ["Done"]])
    await talk.click("Done")
    talk.assert_last("Toppings: corn")
