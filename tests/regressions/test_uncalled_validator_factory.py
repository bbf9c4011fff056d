"""``@step(validate=v.integer)``: the built-in validators are factories (``v.integer()`` makes
the validator), and one passed without calling it was accepted, then raised ``TypeError:
integer() takes 0 positional arguments`` on every answer while the user got no reply. It is
refused where it is declared, naming it and the fix."""

from __future__ import annotations

import re
from enum import Enum, auto
from typing import Any

import pytest

from aiostep_dialogs import step, v


class State(Enum):
    AGE = auto()


@pytest.mark.parametrize(
    ("validate", "named"),
    [
        (v.integer, "v.integer()"),
        ([v.text(), v.yes_no], "v.yes_no()"),
        (v.choice, "v.choice(...)"),
    ],
)
def test_a_built_in_validator_passed_without_calling_it_is_refused_at_step(
    validate: Any, named: str
) -> None:
    with pytest.raises(TypeError, match=re.escape(f"call it: {named}")):

        @step(State.AGE, prompt="Age?", validate=validate)
        async def age(self: Any, value: Any) -> None: ...


class Adult:
    """A validator object that is not hashable (a dataclass-like ``__eq__``)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Adult)

    __hash__ = None  # type: ignore[assignment]

    def __call__(self, value: int) -> int:
        return value


def test_called_built_in_validators_and_own_ones_are_accepted() -> None:
    def positive(value: int) -> int:
        return value

    validate = [v.integer(min=0), positive, Adult(), v.chain(v.text())]

    @step(State.AGE, prompt="Age?", validate=validate)
    async def age(self: Any, value: Any) -> None: ...
