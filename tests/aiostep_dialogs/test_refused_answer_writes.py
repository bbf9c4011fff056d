"""What a refused answer writes: its step put back with the attempt counted, and the state
and data the record holds kept as they are, unless this deploy restored them changed (a
renamed state, migrated data), which the refusal's write then stores."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any, ClassVar

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Seats(Wizard, name="t_refused_seats"):
    class State(Enum):
        NAME = auto()
        SEATS = auto()

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.SEATS, prompt="Seats?", validate=v.integer(min=1), error="A number, please.")
    async def seats(self, value: int) -> Finish:
        return self.finish()


async def test_a_refused_answer_counts_the_attempt_and_keeps_state_and_data(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Seats.setup(dp, entry=Command("go"), storage=storage)
    )
    talk = sim.chat()
    await talk.send("/go")
    await talk.send("Ann")
    before = await backend.record(talk)
    assert before is not None and "a" not in before.kwargs

    await talk.send("many")
    talk.assert_last("A number, please.\n\nSeats?")
    after = await backend.record(talk)
    assert after is not None
    assert after.kwargs["a"] == 1
    assert (after.current_state, after.data, after.callback) == (
        "SEATS",
        {"name": "Ann"},
        "t_refused_seats:SEATS",
    )
    await talk.send("2")
    assert await backend.record(talk) is None  # finished


class _Deploys:
    def __init__(self, first: type[Wizard]) -> None:
        self.current = first

    def setup(self, dp: Dispatcher, storage: Any) -> None:
        self.current.setup(dp, entry=Command("go"), storage=storage)


def _renamed(version: int) -> type[Wizard]:
    class Cup(Wizard, name="t_refused_renamed"):
        __qualname__ = "Cup"

        State = Enum("State", ["SIZE"] if version == 1 else ["CUP"])  # type: ignore[misc]
        if version == 2:
            locals()["renamed"] = {"SIZE": State["CUP"]}

        @step(State["SIZE" if version == 1 else "CUP"], prompt="Size?", validate=v.integer())
        async def size(self, value: int) -> Finish:
            return self.finish()

    return Cup


async def test_a_refused_answer_at_a_renamed_state_stores_its_new_name(
    persistent_backend: Backend,
) -> None:
    deploys = _Deploys(_renamed(1))
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/go")
    record = await persistent_backend.record(talk)
    assert record is not None and record.current_state == "SIZE"

    deploys.current = _renamed(2)
    await sim.restart()
    await talk.send("large")  # refused: not a number
    talk.assert_last("Please send a whole number.\n\nSize?")
    record = await persistent_backend.record(talk)
    assert record is not None
    assert (record.current_state, record.callback) == ("CUP", "t_refused_renamed:CUP")


def _guest(schema: int) -> type[Wizard]:
    class Guest(Wizard, name="t_refused_schema"):
        __qualname__ = "Guest"
        schema_version: ClassVar[int] = schema

        class State(Enum):
            NAME = auto()
            SEATS = auto()

        @step(State.NAME, prompt="Your name?")
        async def name(self, value: str) -> None:
            self.data["name" if schema == 1 else "full_name"] = value

        @step(State.SEATS, prompt="Seats?", validate=v.integer(min=1))
        async def seats(self, value: int) -> Finish:
            return self.finish()

        @staticmethod
        def migrate(data: dict[str, Any], version: int) -> dict[str, Any]:
            if "name" in data:
                data["full_name"] = data.pop("name")
            return data

    return Guest


async def test_a_refused_answer_after_a_migration_stores_the_migrated_data(
    persistent_backend: Backend,
) -> None:
    deploys = _Deploys(_guest(1))
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/go")
    await talk.send("Ann Lee")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {"name": "Ann Lee"}

    deploys.current = _guest(2)
    await sim.restart()
    await talk.send("none")  # refused
    talk.assert_last("Please send a whole number.\n\nSeats?")
    record = await persistent_backend.record(talk)
    assert record is not None
    assert record.data == {"full_name": "Ann Lee"} and record.kwargs["sv"] == 2
