"""`remind_after="30"` (or another value that is not a duration nor a list of them) is refused
naming the whole value: a str was split into its characters ("got str: '3'") and a complex
number raised Python's bare "not iterable", naming no wizard or step."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import pytest

from aiostep_dialogs import Wizard, step


@pytest.mark.parametrize("value", ["30", 5j])
def test_a_wizards_remind_after_that_is_no_duration_is_refused_whole(value: Any) -> None:
    with pytest.raises(TypeError, match=rf"Nag: remind_after must be .*{value!r}"):

        class Nag(Wizard, name="t_rev5_nag"):
            remind_after = value

            class State(Enum):
                A = auto()

            @step(State.A, prompt="?")
            async def a(self, value: str) -> None: ...


@pytest.mark.parametrize("value", ["30", 5j])
def test_a_steps_remind_after_that_is_no_duration_is_refused_whole(value: Any) -> None:
    with pytest.raises(TypeError, match=rf"StepNag.a: remind_after must be .*{value!r}"):

        class StepNag(Wizard, name="t_rev5_step_nag"):
            class State(Enum):
                A = auto()

            @step(State.A, prompt="?", remind_after=value)
            async def a(self, value: str) -> None: ...
