"""A step whose last statement is an ``if``/``elif`` without an ``else`` (each branch returning
a state) falls through to the next step when no condition holds, but the flowchart drew only
its branches: the "every path returns" check took any trailing ``if`` as returning. The
declaration-order edge is drawn unless every path ends in a ``return`` (or a ``raise``)."""

from __future__ import annotations

from enum import Enum, auto

from aiostep_dialogs import Finish, Wizard, step


class Triage(Wizard):
    """FIRST may branch or fall through; SECOND always branches."""

    class State(Enum):
        FIRST = auto()
        SECOND = auto()
        THIRD = auto()
        FOURTH = auto()

    @step(State.FIRST, prompt="First?")
    async def first(self, text: str) -> State | None:  # type: ignore[return]  # falls through
        if text == "3":
            return self.State.THIRD
        elif text == "2":
            return self.State.SECOND

    @step(State.SECOND, prompt="Second?")
    async def second(self, text: str) -> State | Finish:
        if text == "1":
            return self.State.FIRST
        elif text == "x":
            raise ValueError(text)
        else:
            return self.finish()

    @step(State.THIRD, prompt="Third?")
    async def third(self, text: str) -> State | None:
        return self.State.FIRST if text == "again" else None

    @step(State.FOURTH, prompt="Fourth?")
    async def fourth(self, text: str) -> None: ...


def test_a_step_whose_trailing_if_can_fall_through_keeps_its_next_step_edge() -> None:
    lines = [line.strip() for line in Triage.to_mermaid().splitlines()]
    assert "FIRST -.->|branch| THIRD" in lines
    assert "FIRST --> SECOND" in lines  # no condition held: the next step
    assert "SECOND -.->|branch| FIRST" in lines
    assert not any(line.startswith("SECOND -->") for line in lines)  # every path returns
    # a conditional expression that may give None goes on to the next step too
    assert "THIRD -.->|branch| FIRST" in lines
    assert "THIRD --> FOURTH" in lines


class Lenient(Wizard):
    """``on_timeout`` goes back to FIRST from SECOND, else falls through (None: timed out)."""

    timeout = 60

    class State(Enum):
        FIRST = auto()
        SECOND = auto()

    @step(State.FIRST, prompt="First?")
    async def first(self, text: str) -> None: ...

    @step(State.SECOND, prompt="Second?")
    async def second(self, text: str) -> None: ...

    async def on_timeout(self) -> State | None:  # type: ignore[return]  # falls through
        if self.state is self.State.SECOND:
            return self.State.FIRST


def test_an_on_timeout_that_can_fall_through_still_leads_to_timed_out() -> None:
    lines = [line.strip() for line in Lenient.to_mermaid().splitlines()]
    assert "SECOND -.->|timeout 1m| FIRST" in lines
    assert "SECOND -.->|timeout 1m| timed_out" in lines  # None: cancelled, timed out
    assert "timed_out((timed out))" in lines
