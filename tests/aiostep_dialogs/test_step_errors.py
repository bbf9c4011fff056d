"""A bug in a step method reaches aiogram's error handlers and the wizard stays where it was."""

from __future__ import annotations

from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import ErrorEvent

from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step


class Flaky(Wizard, name="test-step-errors-flaky"):
    class State(Enum):
        ONE = auto()
        TWO = auto()

    @step(State.ONE, prompt="First?")
    async def one(self, value: str) -> None:
        self.data["one"] = value
        if value == "boom":
            raise RuntimeError("a bug in the step method")

    @step(State.TWO, prompt="Second?")
    async def two(self, value: str) -> None:
        self.data["two"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['one']} {self.data['two']}")


async def test_a_failing_step_reaches_error_handlers_and_can_be_answered_again() -> None:
    errors: list[BaseException] = []
    dp = Dispatcher()
    Flaky.setup(dp, entry=Command("go"))

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(event.exception)
        await event.update.message.answer("Sorry, something broke.")  # type: ignore[union-attr]
        return True

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/go")
        await talk.send("boom")
        assert [str(e) for e in errors] == ["a bug in the step method"]
        assert talk.last == "Sorry, something broke."
        await talk.send("fine")  # still at the first step, and "boom" was not kept
        assert talk.last == "Second?"
        await talk.send("two")
        assert talk.last == "fine two"
