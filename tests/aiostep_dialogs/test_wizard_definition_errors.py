"""A wizard declared so that it could not run is refused when its class is defined, with a
``TypeError`` naming the class, the method or state, and the fix; and a step that returns a
state without a step says exactly that when it runs."""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import ErrorEvent

from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step


class Two(Enum):
    A = auto()
    B = auto()


@pytest.mark.parametrize(
    "name",
    [
        "start",
        "answer",
        "finish",
        "goto",
        "setup",
        "data",
        "state",
        "key",
        "bot",
        "event",
        "history",
        "nonce",
        "attempts",
        "result",
        "texts",
        "wizard_id",
    ],
)
def test_a_step_named_like_the_wizard_api_is_refused(name: str) -> None:
    async def method(self: Any, value: str) -> None:
        pass

    body = {"State": Two, name: step(Two.A, prompt="A?")(method)}
    with pytest.raises(TypeError) as caught:
        type(f"Clash_{name}", (Wizard,), body, name=f"test-definition-clash-{name}")
    message = str(caught.value)
    assert f"Clash_{name}.{name}" in message
    assert "Two.A" in message
    assert "rename the step method" in message


@pytest.mark.parametrize("hook", ["on_start", "on_finish", "on_cancel", "on_give_up"])
def test_a_step_named_like_a_hook_is_refused_but_the_hook_may_be_overridden(hook: str) -> None:
    async def as_step(self: Any, value: str) -> None:
        pass

    with pytest.raises(TypeError, match=f"HookStep.{hook}: {hook} is a Wizard hook, not a step"):
        type("HookStep", (Wizard,), {"State": Two, hook: step(Two.A, prompt="A?")(as_step)})

    async def a(self: Any, value: str) -> None:
        pass

    async def as_hook(self: Any) -> None:
        pass

    overridden = type(
        "HookOverride",
        (Wizard,),
        {"State": Two, "a": step(Two.A, prompt="A?")(a), hook: as_hook},
        name=f"test-definition-hook-{hook}",
    )
    assert [s.state for s in overridden._steps] == [Two.A]


def test_two_steps_for_one_state_in_one_class_are_refused() -> None:
    with pytest.raises(TypeError) as caught:

        class Twice(Wizard, name="test-definition-twice"):
            State = Two

            @step(Two.A, prompt="A?")
            async def first(self, value: str) -> None:
                pass

            @step(Two.A, prompt="A again?")
            async def second(self, value: str) -> None:
                pass

    message = str(caught.value)
    assert "Twice.second" in message and "two steps for <Two.A: 1>" in message
    assert "(first and second)" in message and "keep one" in message


def test_a_subclass_may_replace_a_parents_step_for_the_same_state() -> None:
    class Parent(Wizard, name="test-definition-parent"):
        State = Two

        @step(Two.A, prompt="A?")
        async def a(self, value: str) -> None:
            pass

    class Child(Parent, name="test-definition-child"):
        @step(Two.A, prompt="Child A?")
        async def child_a(self, value: str) -> None:
            pass

    assert [s.prompt for s in Child._steps] == ["Child A?"]


def test_a_plain_def_step_is_refused() -> None:
    with pytest.raises(TypeError) as caught:

        class Sync(Wizard, name="test-definition-sync"):
            State = Two

            @step(Two.A, prompt="A?")
            def a(self, value: str) -> None:
                pass

    message = str(caught.value)
    assert "Sync.a" in message and "must be `async def`" in message
    assert "async def a(self, value)" in message


def test_branches_naming_a_state_without_a_step_are_refused() -> None:
    with pytest.raises(TypeError) as caught:

        class Branchy(Wizard, name="test-definition-branches"):
            State = Two

            @step(Two.A, prompt="A?", branches=[Two.B])
            async def a(self, value: str) -> Any:
                return getattr(self.State, value)

    message = str(caught.value)
    assert "Branchy.a can go to State.B, which has no @step" in message
    assert "declare a step for State.B" in message


def test_a_returned_state_without_a_step_is_refused() -> None:
    with pytest.raises(TypeError) as caught:

        class Returns(Wizard, name="test-definition-returns"):
            class State(Enum):
                A = auto()
                B = auto()
                C = auto()

            @step(State.A, prompt="A?")
            async def a(self, value: str) -> Any:
                return self.State.B if value == "b" else self.State.C

            @step(State.B, prompt="B?")
            async def b(self, value: str) -> None:
                pass

    assert "Returns.a can go to State.C, which has no @step" in str(caught.value)


class Dynamic(Wizard, name="test-definition-dynamic"):
    """Its return is computed, so no source reading can see it: refused only at run time."""

    State = Two

    @step(Two.A, prompt="A?")
    async def a(self, value: str) -> Any:
        return Two[value]


async def test_a_returned_state_without_a_step_says_so_at_run_time() -> None:
    errors: list[BaseException] = []
    dp = Dispatcher()
    Dynamic.setup(dp, entry=Command("dyn"))

    @dp.errors()
    async def on_error(event: ErrorEvent) -> None:
        errors.append(event.exception)

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/dyn")
        await talk.send("B")
    assert [str(e) for e in errors] == [
        "Dynamic.a returned State.B, which has no @step; declare one or return another state"
    ]
    assert isinstance(errors[0], ValueError)
