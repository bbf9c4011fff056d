"""``max_attempts`` (on a step or the wizard) that is not a whole number from 1 is refused
where it is declared. Before, ``max_attempts="3"`` raised ``TypeError`` on the first rejected
answer (the user got no reply, and the rejection was lost), and ``0`` or a negative number
ended the wizard at the first slip, as ``1`` does."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import pytest

from aiostep_dialogs import Wizard, step

BAD = [("3", TypeError), (True, TypeError), (2.5, TypeError), (0, ValueError), (-1, ValueError)]


class State(Enum):
    AGE = auto()


@pytest.mark.parametrize(("value", "error"), BAD)
def test_a_steps_max_attempts_must_be_a_whole_number_from_one(
    value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"@step\(<State.AGE: 1>\): max_attempts must be"):

        @step(State.AGE, prompt="Age?", max_attempts=value)
        async def age(self: Any, value: Any) -> None: ...


@pytest.mark.parametrize(("value", "error"), BAD)
def test_a_wizards_max_attempts_must_be_a_whole_number_from_one(
    value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"Patient\.max_attempts must be"):

        class Patient(Wizard, name="t_max_attempts_checked"):
            max_attempts = value

            class State(Enum):
                AGE = auto()

            @step(State.AGE, prompt="Age?")
            async def age(self, value: str) -> None: ...


def test_one_and_none_are_accepted() -> None:
    @step(State.AGE, prompt="Age?", max_attempts=1)
    async def age(self: Any, value: Any) -> None: ...

    class Patient(Wizard, name="t_max_attempts_checked_ok"):
        max_attempts = None

        class State(Enum):
            AGE = auto()

        @step(State.AGE, prompt="Age?", max_attempts=3)
        async def age(self, value: str) -> None: ...
