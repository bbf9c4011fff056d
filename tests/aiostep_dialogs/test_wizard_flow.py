"""Where a wizard goes next (declaration order, a returned State, goto, finish) and what it
says (prompts as strings, format strings, callables; choices as buttons; progress)."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import ReplyKeyboardMarkup, ReplyKeyboardRemove

from aiostep.testing import BotSimulator
from aiostep_dialogs import Finish, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


def _sync_prompt(wizard: Any) -> str:
    return f"C, after {wizard.data['b']}?"


async def _async_prompt(wizard: Any) -> str:
    return f"D, {len(wizard.data)} answers so far?"


class Route(Wizard, name="t_flow_route"):
    """A -> B -> C -> D in declaration order; B can branch to D or goto C; D can finish early."""

    class State(Enum):
        A = auto()
        B = auto()
        C = auto()
        D = auto()

    async def on_start(self) -> None:
        await self.answer("Starting.")

    @step(State.A, prompt="A?")
    async def a(self, value: str) -> None:
        self.data["a"] = value

    @step(State.B, prompt="B, after {a}? ({missing} stays as it is)")
    async def b(self, value: str) -> Route.State | None:
        self.data["b"] = value
        if value == "jump":
            return self.State.D  # a returned State branches
        if value == "goto":
            return self.goto(self.State.C)
        return None  # declaration order: C

    @step(State.C, prompt=_sync_prompt)
    async def c(self, value: str) -> None:
        self.data["c"] = value

    @step(State.D, prompt=_async_prompt)
    async def d(self, value: str) -> Finish | None:
        self.data["d"] = value
        if value == "early":
            return self.finish({"ended": "early"})
        return None  # the last step: the wizard finishes with result None

    async def on_finish(self) -> None:
        answers = ", ".join(f"{k}={v}" for k, v in sorted(self.data.items()))
        await self.answer(f"Done: result={self.result!r} {answers}")


def route(dp: Dispatcher, storage: object) -> None:
    Route.setup(dp, entry=Command("route"), storage=storage)


async def test_declaration_order_gives_the_next_step(backend: Backend) -> None:
    sim = backend.simulator(route)
    talk = sim.chat()
    await talk.send("/route")
    assert [m.text for m in talk.messages] == ["Starting.", "A?"]
    await talk.send("x")
    talk.assert_last("B, after x? ({missing} stays as it is)")
    await talk.send("y")
    talk.assert_last("C, after y?")
    await talk.send("z")
    talk.assert_last("D, 3 answers so far?")
    await talk.send("w")
    talk.assert_last("Done: result=None a=x, b=y, c=z, d=w")
    assert await backend.record(talk) is None


async def test_returning_a_state_branches(backend: Backend) -> None:
    sim = backend.simulator(route)
    talk = sim.chat()
    await talk.send("/route")
    await talk.send("x")
    await talk.send("jump")
    talk.assert_last("D, 2 answers so far?")  # C was skipped
    record = await backend.record(talk)
    assert record is not None and record.callback == "t_flow_route:D"


async def test_goto_moves_to_the_given_state(backend: Backend) -> None:
    sim = backend.simulator(route)
    talk = sim.chat()
    await talk.send("/route")
    await talk.send("x")
    await talk.send("goto")
    talk.assert_last("C, after goto?")


def test_goto_refuses_a_state_without_a_step() -> None:
    class Lonely(Enum):
        ELSEWHERE = auto()

    wizard = Route.__new__(Route)
    try:
        wizard.goto(Lonely.ELSEWHERE)
    except ValueError as exc:
        assert "ELSEWHERE" in str(exc)
    else:
        raise AssertionError("goto accepted a state the wizard has no step for")


async def test_finish_ends_with_a_result_that_on_finish_sees(backend: Backend) -> None:
    sim = backend.simulator(route)
    talk = sim.chat()
    await talk.send("/route")
    await talk.send("x")
    await talk.send("jump")
    await talk.send("early")
    talk.assert_last("Done: result={'ended': 'early'} a=x, b=jump, d=early")
    assert await backend.record(talk) is None
    await talk.send("anything")  # the wizard is over: nothing answers
    assert talk.last is not None and talk.last.startswith("Done:")


class Colors(Wizard, name="t_flow_colors"):
    """Choices as inline buttons, with progress shown."""

    show_progress = True

    class State(Enum):
        COLOR = auto()
        NOTE = auto()
        SIZE = auto()

    @step(State.COLOR, prompt="Pick a color", choices={"r": "Red", "g": "Green"})
    async def color(self, value: str) -> None:
        self.data["color"] = value

    @step(State.NOTE, prompt="A note?", validate=v.text(max_len=20))
    async def note(self, value: str) -> None:
        self.data["note"] = value

    @step(State.SIZE, prompt="Which size?", choices=["S", "M", "L"])
    async def size(self, value: str) -> None:
        self.data["size"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['color']}/{self.data['note']}/{self.data['size']}")


def colors(dp: Dispatcher, storage: object) -> None:
    Colors.setup(dp, entry=Command("colors"), storage=storage)


async def test_choices_are_inline_buttons_and_the_method_gets_the_value(backend: Backend) -> None:
    sim = backend.simulator(colors)
    talk = sim.chat()
    await talk.send("/colors")
    talk.assert_last("Step 1 of 3\nPick a color", buttons=[["Red", "Green"]])
    await talk.click("Green")
    record = await backend.record(talk)
    assert record is not None and record.data == {"color": "g"}
    await talk.send("quick")
    talk.assert_last("Step 3 of 3\nWhich size?", buttons=[["S", "M", "L"]])
    await talk.click("M")
    talk.assert_last("g/quick/M")


async def test_a_typed_label_counts_as_a_choice(backend: Backend) -> None:
    sim = backend.simulator(colors)
    talk = sim.chat()
    await talk.send("/colors")
    await talk.send(" red ")
    record = await backend.record(talk)
    assert record is not None and record.data == {"color": "r"}
    talk.assert_last("Step 2 of 3\nA note?")


async def test_show_progress_prefixes_the_prompt(backend: Backend) -> None:
    sim = backend.simulator(colors)
    talk = sim.chat()
    await talk.send("/colors")
    talk.assert_last("Step 1 of 3\nPick a color")
    await talk.click("Red")
    talk.assert_last("Step 2 of 3\nA note?")


class Sizes(Wizard, name="t_flow_sizes"):
    """Choices as a reply keyboard."""

    class State(Enum):
        SIZE = auto()
        NOTE = auto()

    @step(State.SIZE, prompt="Which size?", choices=["S", "M", "L"], keyboard="reply")
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.NOTE, prompt="A note?")
    async def note(self, value: str) -> None:
        self.data["note"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['size']}/{self.data['note']}")


def sizes(dp: Dispatcher, storage: object) -> None:
    Sizes.setup(dp, entry=Command("sizes"), storage=storage)


def _sent_markup(sim: BotSimulator) -> object:
    sent = sim.session.calls_of(SendMessage)
    assert sent, "the bot sent nothing"
    return sent[-1].reply_markup


async def test_choices_as_a_reply_keyboard(backend: Backend) -> None:
    sim = backend.simulator(sizes)
    talk = sim.chat()
    await talk.send("/sizes")
    talk.assert_last("Which size?", buttons=[])  # no inline buttons
    markup = _sent_markup(sim)
    assert isinstance(markup, ReplyKeyboardMarkup)
    assert [[button.text for button in row] for row in markup.keyboard] == [["S"], ["M"], ["L"]]

    await talk.send("M")  # a reply keyboard sends the label as a text message
    talk.assert_last("A note?")
    # the keyboard is taken away once it is no longer the question
    assert isinstance(_sent_markup(sim), ReplyKeyboardRemove)
    await talk.send("fast")
    talk.assert_last("M/fast")


async def test_a_reply_keyboard_rejects_what_is_not_on_it(backend: Backend) -> None:
    sim = backend.simulator(sizes)
    talk = sim.chat()
    await talk.send("/sizes")
    await talk.send("XXL")
    talk.assert_last("Please choose one of: S, M, L.\n\nWhich size?")
    assert isinstance(_sent_markup(sim), ReplyKeyboardMarkup)
    record = await backend.record(talk)
    assert record is not None and record.data == {}


async def test_cancel_takes_a_reply_keyboard_away(backend: Backend) -> None:
    sim = backend.simulator(sizes)
    talk = sim.chat()
    await talk.send("/sizes")
    await talk.send("/cancel")
    talk.assert_last(Sizes.texts.cancelled)
    assert isinstance(_sent_markup(sim), ReplyKeyboardRemove)
    assert await backend.record(talk) is None
