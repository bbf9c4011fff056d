"""/back undoes the answer given at the step it returns to, not just the position."""

from __future__ import annotations

from aiostep.testing import BotSimulator
from examples.order import build


async def test_back_then_a_new_answer_replaces_the_old_one() -> None:
    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.click("Margherita")
        await talk.send("3")
        assert talk.last == "Add another item?"
        await talk.send("/back")
        assert talk.last == "How many Margherita?"
        await talk.send("2")
        await talk.click("That's all")
        assert talk.last is not None
        assert "2 x Margherita" in talk.last
        assert "3 x" not in talk.last
        assert "Total: 16 EUR" in talk.last


async def test_a_rejected_answer_leaves_nested_data_untouched() -> None:
    async with BotSimulator(build) as sim:
        talk = sim.chat()
        await talk.send("/start")
        await talk.click("Veggie")
        await talk.send("0")  # out of range: rejected before anything is stored
        assert talk.last is not None and talk.last.startswith("Please send a number from 1")
        await talk.send("1")
        await talk.click("That's all")
        assert "1 x Veggie" in (talk.last or "")
