"""A step that asks for a name the handler data lacks, next to `**data`, gets the same
`TypeError` naming it and listing the data (docs/guides/dependencies.md) as one without
`**data`: it got Python's bare "missing 1 required keyword-only argument"."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Greedy(Wizard, name="t_rev5_greedy"):
    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str, database: Any, **data: Any) -> Any:
        return self.finish(value)


async def test_a_missing_dependency_next_to_kwargs_names_itself_and_keeps_the_step(
    backend: Backend,
) -> None:
    errors: list[BaseException] = []

    def setup(dp: Dispatcher, storage: object) -> None:
        @dp.errors()
        async def on_error(event: Any) -> bool:
            errors.append(event.exception)
            return True

        Greedy.setup(dp, entry=Command("go"), storage=storage)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/go")
    await talk.send("Ann")
    assert len(errors) == 1 and isinstance(errors[0], TypeError)
    message = str(errors[0])
    assert "Greedy.name asks for 'database'" in message and "The data has: " in message
    record = await backend.record(talk)
    assert record is not None and record.current_state == "NAME"
