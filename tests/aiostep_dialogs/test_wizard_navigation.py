"""/back, /cancel, /skip, renamed commands and texts, other commands mid-way, and starting a
running wizard again."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING

from aiogram import Dispatcher, F, Router
from aiogram.filters import Command
from aiogram.types import Message

from aiostep_dialogs import Commands, Finish, Texts, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Trip(Wizard, name="t_nav_trip"):
    """KIND branches: car -> CAR (next in declaration order) -> NOTE, train -> TRAIN -> NOTE."""

    class State(Enum):
        KIND = auto()
        CAR = auto()
        TRAIN = auto()
        NOTE = auto()
        CONFIRM = auto()

    @step(State.KIND, prompt="Car or train?", validate=v.choice(["car", "train"]))
    async def kind(self, value: str) -> Trip.State | None:
        self.data["kind"] = value
        return self.State.TRAIN if value == "train" else None

    @step(State.CAR, prompt="How many seats?", validate=v.integer(min=1, max=9))
    async def car(self, value: int) -> Trip.State:
        self.data["seats"] = value
        return self.State.NOTE

    @step(State.TRAIN, prompt="Which class?", validate=v.choice(["first", "second"]))
    async def train(self, value: str) -> None:
        self.data["class"] = value

    @step(State.NOTE, prompt="Any note? (/skip)", optional=True, default="-")
    async def note(self, value: str) -> None:
        self.data["note"] = value

    @step(State.CONFIRM, prompt="Book it?", validate=v.yes_no())
    async def confirm(self, value: bool) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        answers = ", ".join(f"{k}={val}" for k, val in sorted(self.data.items()))
        await self.answer(f"Booked={self.result}: {answers}")


class TripAgain(Trip, name="t_nav_trip_again"):
    """The same steps; starting it again mid-way starts over."""

    on_reentry = "restart"


class Renamed(Wizard, name="t_nav_renamed"):
    """Navigation commands and texts of its own."""

    commands = Commands(back="previous", cancel="stop", skip="pass")
    texts = Texts(
        cancelled="Stopped. Bye!",
        cannot_go_back="Nothing before this.",
        cannot_skip="You must answer this one.",
    )

    class State(Enum):
        FIRST = auto()
        SECOND = auto()
        THIRD = auto()

    @step(State.FIRST, prompt="First?")
    async def first(self, value: str) -> None:
        self.data["first"] = value

    @step(State.SECOND, prompt="Second? (optional)", optional=True)
    async def second(self, value: str | None) -> None:
        self.data["second"] = value

    @step(State.THIRD, prompt="Third?")
    async def third(self, value: str) -> None:
        self.data["third"] = value

    async def on_cancel(self) -> None:
        await self.answer(f"{self.texts.cancelled} (you were at {self.state.name})")

    async def on_finish(self) -> None:
        await self.answer(f"Got {self.data}")


def bot(dp: Dispatcher, storage: object) -> None:
    @dp.message(Command("help"))
    async def help_handler(message: Message) -> None:
        await message.answer("Help: answer the question, or /cancel.")

    Trip.setup(dp, entry=Command("trip"), storage=storage)
    TripAgain.setup(dp, entry=Command("again"), storage=storage)
    Renamed.setup(dp, entry=Command("renamed"), storage=storage)
    after = Router(name="after-wizards")

    # plain text and /cancel; any other command stays unhandled
    @after.message(F.text & (~F.text.startswith("/") | (F.text == "/cancel")))
    async def fallback(message: Message) -> None:
        await message.answer(f"(no wizard) {message.text}")

    dp.include_router(after)


def bot_texts(talk: object) -> list[str | None]:
    return [m.text for m in talk.messages]  # type: ignore[attr-defined]


async def test_back_follows_history_not_declaration_order(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("train")
    talk.assert_last("Which class?")
    sent = len(talk.messages)
    await talk.send("/back")  # declaration order would say CAR; history says KIND
    talk.assert_last("Car or train?")
    assert len(talk.messages) == sent + 1  # the previous prompt, at once, and nothing else
    record = await backend.record(talk)
    assert record is not None and record.callback == "t_nav_trip:KIND"

    await talk.send("car")
    await talk.send("3")
    talk.assert_last("Any note? (/skip)")
    await talk.send("/back")  # declaration order would say TRAIN
    talk.assert_last("How many seats?")
    await talk.send("/back")
    talk.assert_last("Car or train?")


async def test_back_undoes_the_answer_given_at_the_step_it_returns_to(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("car")
    await talk.send("3")
    await talk.send("/back")
    record = await backend.record(talk)
    assert record is not None and record.data == {"kind": "car"}
    await talk.send("5")
    await talk.send("/skip")
    await talk.send("yes")
    talk.assert_last("Booked=True: kind=car, note=-, seats=5")


async def test_back_at_the_first_step_cannot_go_back(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    before = await backend.record(talk)
    await talk.send("/back")
    assert Trip.texts.cannot_go_back in bot_texts(talk)[-2:]
    talk.assert_last("Car or train?")
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.callback, after.data, after.kwargs) == (
        before.callback,
        before.data,
        before.kwargs,
    )
    await talk.send("train")
    talk.assert_last("Which class?")


async def test_cancel_ends_with_on_cancel_and_clears_the_record(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("car")
    await talk.send("/cancel")
    talk.assert_last(Trip.texts.cancelled)
    assert Trip.texts.cancelled == "Cancelled."
    assert await backend.record(talk) is None
    await talk.send("4")  # nobody is asking any more
    talk.assert_last("(no wizard) 4")


async def test_cancel_without_a_wizard_is_left_to_the_bot(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/cancel")
    talk.assert_last("(no wizard) /cancel")


async def test_skip_on_an_optional_step_calls_the_method_with_the_default(
    backend: Backend,
) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("train")
    await talk.send("second")
    talk.assert_last("Any note? (/skip)")
    await talk.send("/skip")
    talk.assert_last("Book it?")
    record = await backend.record(talk)
    assert record is not None and record.data["note"] == "-"
    await talk.send("no")
    talk.assert_last("Booked=False: class=second, kind=train, note=-")


async def test_skip_on_a_required_step_says_so_and_asks_again(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("car")
    before = await backend.record(talk)
    await talk.send("/skip")
    assert bot_texts(talk)[-2:] == [Trip.texts.cannot_skip, "How many seats?"]
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.callback, after.data) == (before.callback, before.data)
    await talk.send("2")
    talk.assert_last("Any note? (/skip)")


async def test_commands_and_texts_can_be_renamed(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/renamed")
    await talk.send("/previous")
    assert bot_texts(talk)[-2:] == ["Nothing before this.", "First?"]
    await talk.send("one")
    await talk.send("/pass")  # SECOND is optional: its default is None
    talk.assert_last("Third?")
    await talk.send("/pass")
    assert bot_texts(talk)[-2:] == ["You must answer this one.", "Third?"]
    await talk.send("/previous")
    talk.assert_last("Second? (optional)")
    await talk.send("two")
    await talk.send("/back")  # not a command of this wizard any more: the prompt again
    talk.assert_last("Third?")
    record = await backend.record(talk)
    assert record is not None and record.callback == "t_nav_renamed:THIRD"
    await talk.send("/stop")
    talk.assert_last("Stopped. Bye! (you were at THIRD)")
    assert await backend.record(talk) is None


async def test_a_command_the_bot_handles_wins_and_then_the_prompt_is_sent_again(
    backend: Backend,
) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("car")
    before = await backend.record(talk)
    sent = len(talk.messages)
    await talk.send("/help")
    assert bot_texts(talk)[sent:] == ["Help: answer the question, or /cancel.", "How many seats?"]
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.callback, after.data, after.kwargs) == (
        before.callback,
        before.data,
        before.kwargs,
    )
    await talk.send("2")  # the step still answers
    talk.assert_last("Any note? (/skip)")


async def test_help_without_a_wizard_is_just_help(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/help")
    assert bot_texts(talk) == ["Help: answer the question, or /cancel."]


async def test_an_unhandled_command_sends_the_prompt_again(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/renamed")
    sent = len(talk.messages)
    await talk.send("/whatever")  # no handler takes it, and it is not an answer either
    assert bot_texts(talk)[sent:] == ["First?"]
    await talk.send("one")
    talk.assert_last("Second? (optional)")


async def test_starting_again_mid_way_resumes_by_default(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("car")
    sent = len(talk.messages)
    await talk.send("/trip")
    assert bot_texts(talk)[sent:] == ["How many seats?"]  # the current prompt, once
    record = await backend.record(talk)
    assert record is not None and record.data == {"kind": "car"}
    assert record.callback == "t_nav_trip:CAR"
    await talk.send("2")
    talk.assert_last("Any note? (/skip)")


async def test_starting_again_mid_way_restarts_when_asked(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/again")
    await talk.send("car")
    await talk.send("4")
    sent = len(talk.messages)
    await talk.send("/again")
    assert bot_texts(talk)[sent:] == ["Car or train?"]
    record = await backend.record(talk)
    assert record is not None and record.data == {}
    assert record.callback == "t_nav_trip_again:KIND"
    await talk.send("/back")  # a fresh start has no history
    assert bot_texts(talk)[-2:] == [Trip.texts.cannot_go_back, "Car or train?"]
