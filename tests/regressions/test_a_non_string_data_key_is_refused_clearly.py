"""``self.data[1] = ...`` in a step (a key JSON would turn into ``"1"``) failed with
``TypeError: sequence item 0: expected str instance, int found`` from the packing of the
``/back`` history, not with the storage's check that names the key and the fix, as
docs/migration.md promises ("Data must be JSON ... aiostep refuses it on every backend")."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep_dialogs import Finish, Wizard, step


class Scores(Wizard, name="t_reg_int_key"):
    """Stores a score under an int key."""

    class State(Enum):
        SCORE = auto()
        SURE = auto()

    @step(State.SCORE, prompt="Score?")
    async def score(self, text: str) -> None:
        self.data[1] = text  # type: ignore[index]

    @step(State.SURE, prompt="Sure?")
    async def sure(self, text: str) -> Finish:
        return self.finish()


async def test_a_non_string_data_key_is_refused_naming_the_key(bot_simulator: Any) -> None:
    dp = Dispatcher()
    Scores.setup(dp, entry=Command("score"))
    talk = bot_simulator(dp).chat()
    await talk.send("/score")
    with pytest.raises(TypeError, match=r"key 1 of type int: JSON object keys must be plain"):
        await talk.send("10")
