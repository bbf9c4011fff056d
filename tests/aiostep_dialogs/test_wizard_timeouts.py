"""Wizard timeouts and reminders: they fire with no message from the user, on every storage,
after a restart, and cost nothing to a wizard that has none."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.utils.formatting import Text

from aiostep.testing import Conversation, FakeClock
from aiostep_dialogs import Texts, Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Order(Wizard, name="t_timeouts_order"):
    """Reminds after 60 s and 120 s, times out after 300 s (the wizard's defaults); the
    address step has its own, shorter timeout and its own reminder text."""

    timeout = 300
    remind_after = (60, 120)

    class State(Enum):
        NAME = auto()
        ADDRESS = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.ADDRESS,
        prompt="Where to?",
        timeout=timedelta(seconds=100),
        remind_after=30,
        reminder="Hello? We need an address.",
    )
    async def address(self, value: str) -> None:
        self.data["address"] = value

    @step(State.CONFIRM, prompt="Confirm?", choices=["yes", "no"])
    async def confirm(self, value: str) -> Any:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer("Ordered.")


class Patient(Wizard, name="t_timeouts_patient"):
    """``on_timeout`` goes back to the first step once, then finishes."""

    timeout = 50

    class State(Enum):
        ASK = auto()
        NEXT = auto()

    @step(State.ASK, prompt="Ready?")
    async def ask(self, value: str) -> None:
        self.data["ready"] = value

    @step(State.NEXT, prompt="And now?")
    async def next(self, value: str) -> Any:
        return self.finish(value)

    async def on_timeout(self) -> Any:
        if self.state is self.State.NEXT:
            self.data["timed_out_at"] = "NEXT"
            return self.State.ASK
        return self.finish("gave up waiting")

    async def on_finish(self) -> None:
        await self.answer(f"Finished: {self.result}")


class Plain(Wizard, name="t_timeouts_plain"):
    texts = Texts(timed_out="unused")

    class State(Enum):
        ONLY = auto()

    @step(State.ONLY, prompt="Anything?")
    async def only(self, value: str) -> None:
        self.data["only"] = value


def sent(talk: Conversation) -> list[str | None]:
    """The texts the bot sent in ``talk``, oldest first."""
    return [m.message.text for m in talk.messages if m.from_bot]


def setup(dp: Dispatcher, storage: object) -> None:
    Order.setup(dp, entry=Command("order"), storage=storage)
    Patient.setup(dp, entry=Command("patient"), storage=storage)
    Plain.setup(dp, entry=Command("plain"), storage=storage)


async def test_a_reminder_re_asks_the_prompt_while_the_user_is_idle(backend: Backend) -> None:
    sim = backend.simulator(setup)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/order")
    await clock.advance(59)
    talk.assert_last("What is your name?")
    await clock.advance(1)
    talk.assert_last("Still there?\n\nWhat is your name?")
    await clock.advance(60)
    talk.assert_last("Still there?\n\nWhat is your name?")
    assert sent(talk).count("Still there?\n\nWhat is your name?") == 2


async def test_reminders_do_not_move_the_timeout(backend: Backend) -> None:
    sim = backend.simulator(setup)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/order")
    await clock.advance(299)
    assert sent(talk).count("Still there?\n\nWhat is your name?") == 2
    assert await backend.record(talk) is not None
    await clock.advance(1)
    talk.assert_last(Texts().timed_out)
    assert await backend.record(talk) is None  # cancelled: the conversation is gone
    await talk.send("Alice")  # no wizard takes it any more
    talk.assert_last(Texts().timed_out)


async def test_an_answer_resets_the_reminders_and_the_timeout(backend: Backend) -> None:
    sim = backend.simulator(setup)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/order")
    await clock.advance(250)
    await talk.send("Alice")
    talk.assert_last("Where to?")
    await clock.advance(29)
    talk.assert_last("Where to?")
    await clock.advance(1)  # the step's own reminder and text
    talk.assert_last("Hello? We need an address.\n\nWhere to?")
    await talk.send("Main St")
    talk.assert_last("Confirm?", buttons=[["yes", "no"]])
    await clock.advance(120)  # the wizard's reminders again, counted from this prompt
    assert sent(talk).count("Still there?\n\nConfirm?") == 2
    await talk.click("yes")
    talk.assert_last("Ordered.")
    await clock.advance(1000)
    talk.assert_last("Ordered.")


async def test_the_record_holds_one_deadline_and_the_reminders_sent(backend: Backend) -> None:
    sim = backend.simulator(setup)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/order")
    start = clock.now()
    record = await backend.record(talk)
    assert record is not None
    assert record.deadline == start + 60
    assert record.kwargs["t0"] == start and record.kwargs["r"] == 0
    await clock.advance(60)
    record = await backend.record(talk)
    assert record is not None
    assert record.deadline == start + 120
    assert record.kwargs["t0"] == start and record.kwargs["r"] == 1
    await clock.advance(60)
    record = await backend.record(talk)
    assert record is not None
    assert record.deadline == start + 300
    assert record.kwargs["r"] == 2


async def test_on_timeout_may_go_to_a_state_or_finish(backend: Backend) -> None:
    sim = backend.simulator(setup)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/patient")
    await talk.send("yes")
    talk.assert_last("And now?")
    await clock.advance(50)
    talk.assert_last("Ready?")  # on_timeout returned State.ASK: its prompt is sent
    record = await backend.record(talk)
    assert record is not None and record.data["timed_out_at"] == "NEXT"
    await clock.advance(50)
    talk.assert_last("Finished: gave up waiting")
    assert await backend.record(talk) is None


async def test_a_wizard_without_timeouts_stores_no_deadline(backend: Backend) -> None:
    sim = backend.simulator(setup)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/plain")
    record = await backend.record(talk)
    assert record is not None
    assert record.deadline is None and record.on_timeout is None
    assert "t0" not in record.kwargs and "r" not in record.kwargs
    await clock.advance(10_000)
    talk.assert_last("Anything?")


async def test_a_reminder_and_the_timeout_fire_after_a_restart(
    persistent_backend: Backend, fake_clock: FakeClock
) -> None:
    sim = persistent_backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    await sim.restart()
    await fake_clock.advance(60)
    talk.assert_last("Still there?\n\nWhat is your name?")
    await sim.restart()
    await fake_clock.advance(240)
    talk.assert_last(Texts().timed_out)
    assert await persistent_backend.record(talk) is None


async def test_an_answer_just_past_a_reminder_is_taken_without_the_reminder(
    persistent_backend: Backend, fake_clock: FakeClock
) -> None:
    """The bot was down when the reminder came due; the user's answer arrives before the
    scheduler has fired it: the answer is taken, and no reminder is sent."""
    sim = persistent_backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    listen = sim.dispatcher.message.outer_middleware[0]
    await listen.scheduler.stop()  # down: nothing fires
    await fake_clock.advance(61)
    await talk.send("Alice")
    talk.assert_last("Where to?")
    assert not any("Still there?" in (text or "") for text in sent(talk))


def test_a_reminder_after_the_timeout_is_refused_at_class_definition() -> None:
    with pytest.raises(ValueError, match=r"remind_after=300s is not before timeout=300s"):

        class Late(Wizard, name="t_timeouts_late"):
            class State(Enum):
                A = auto()

            @step(State.A, prompt="?", timeout=300, remind_after=300)
            async def a(self, value: str) -> None: ...


def test_a_timeout_that_is_not_a_duration_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"Bad: timeout must be seconds or a timedelta.*'5m'"):

        class Bad(Wizard, name="t_timeouts_bad"):
            timeout = "5m"  # type: ignore[assignment]

            class State(Enum):
                A = auto()

            @step(State.A, prompt="?")
            async def a(self, value: str) -> None: ...


async def test_a_late_answer_that_times_the_step_out_does_not_answer_the_next_question(
    persistent_backend: Backend, fake_clock: FakeClock
) -> None:
    """The timeout was due before the scheduler fired it; the late message fires it, and
    on_timeout moves to another step: that message is not taken as its answer."""
    sim = persistent_backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/patient")
    await talk.send("yes")
    talk.assert_last("And now?")
    listen = sim.dispatcher.message.outer_middleware[0]
    await listen.scheduler.stop()  # down: nothing fires
    await fake_clock.advance(51)
    await talk.send("late")
    talk.assert_last("Ready?")  # on_timeout went back to ASK, which waits for its answer
    record = await persistent_backend.record(talk)
    assert record is not None and record.current_state is not None
    assert record.current_state.endswith("ASK") and record.data["ready"] == "yes"


def test_a_step_timeout_shorter_than_the_wizards_reminders_keeps_only_those_before_it() -> None:
    class Quick(Wizard, name="t_timeouts_quick"):
        remind_after = (60, 120)
        timeout = 300

        class State(Enum):
            A = auto()
            B = auto()

        @step(State.A, prompt="?", timeout=90)
        async def a(self, value: str) -> None: ...

        @step(State.B, prompt="?", remind_after=10)
        async def b(self, value: str) -> None: ...

    assert Quick._timing["A"].reminders == (60.0,) and Quick._timing["A"].timeout == 90
    assert Quick._timing["B"].reminders == (10.0,) and Quick._timing["B"].timeout == 300


class Signed(Wizard, name="t_timeouts_signed"):
    """Overrides ``answer_in_place``: every closing text is signed."""

    timeout = 30

    class State(Enum):
        ONLY = auto()

    @step(State.ONLY, prompt="Anything?")
    async def only(self, value: str) -> None:
        self.data["only"] = value

    async def answer_in_place(self, text: str | Text) -> None:
        await self.answer(f"{text} (the bot)")


async def test_a_timeout_closes_through_the_wizards_own_answer_in_place(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Signed.setup(dp, entry=Command("signed"), storage=storage)
    )
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/signed")
    await clock.advance(30)
    talk.assert_last(f"{Texts().timed_out} (the bot)")
    assert await backend.record(talk) is None
