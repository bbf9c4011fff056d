"""``@step(choices=...)`` with int values (``choices=[1, 2, 3, 4, 5]`` for a rating,
``{1: "One"}``): the check of a fixed list says each value must be "a str ... or an int", and
the step method gets the int, whether the user pressed its button or typed it. Before, the
first prompt failed (a number label could not be said) and a press or a typed answer raised
``AttributeError`` in the choice validator. A value that is neither is refused where it is
declared, naming it, rather than when the first user answers."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import ChoicesError, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Rating(Wizard, name="t_number_choices_rating"):
    class State(Enum):
        STARS = auto()
        SIZE = auto()
        EXTRAS = auto()

    @step(State.STARS, prompt="How many stars?", choices=[1, 2, 3, 4, 5])
    async def stars(self, value: int) -> None:
        self.data["stars"] = value

    @step(State.SIZE, prompt="Which size?", choices={30: "Small", 40: "Large"})
    async def size(self, value: int) -> None:
        self.data["size"] = value

    @step(State.EXTRAS, prompt="Extras?", choices={1: "Cheese", 2: "Ham", 3: "Olives"}, multi=True)
    async def extras(self, value: list[int]) -> None:
        self.data["extras"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Got {self.data!r}")


def bot(dp: Dispatcher, storage: object) -> None:
    Rating.setup(dp, entry=Command("rate"), storage=storage)


async def test_int_choice_values_reach_the_step_as_ints_pressed_or_typed(
    backend: Backend,
) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/rate")
    talk.assert_last("How many stars?", buttons=[["1"], ["2"], ["3"], ["4"], ["5"]])
    await talk.click("4")
    talk.assert_last("Which size?", buttons=[["Small", "Large"]])
    await talk.send("large")  # a typed label
    await talk.click("Cheese")
    await talk.click("Olives")
    await talk.click("Done")
    talk.assert_last("Got {'stars': 4, 'size': 40, 'extras': [1, 3]}")

    await talk.send("/rate")
    await talk.send("5")  # a typed value
    record = await backend.record(talk)
    assert record is not None and record.data == {"stars": 5}


def test_v_choice_matches_int_values_typed_or_given() -> None:
    pick = v.choice({30: "Small", 40: "Large"})
    assert pick("40") == 40
    assert pick("small") == 30
    assert pick(30) == 30


@pytest.mark.parametrize("value", [1.5, None, True, ("a", 1)])
def test_a_choice_value_that_is_not_a_str_or_an_int_is_refused_where_declared(
    value: Any,
) -> None:
    with pytest.raises(ChoicesError, match="must be a str or an int"):

        @step(Rating.State.STARS, prompt="?", choices={value: "label"})
        async def stars(self: Any, value: Any) -> None: ...
