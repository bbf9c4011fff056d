"""A deploy that drops a wizard's timeout: a conversation stored before it with a deadline is
not timed out when that deadline comes (the deploy says this step has no timeout any more);
it was cancelled with `texts.timed_out`, whatever the running class said."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.testing import Conversation, FakeClock
from aiostep_dialogs import Texts, Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


def _v1() -> type[Wizard]:
    class Poll(Wizard, name="t_rev5_poll"):
        __qualname__ = "Poll"
        timeout = 100

        class State(Enum):
            COLOUR = auto()

        @step(State.COLOUR, prompt="Colour?")
        async def colour(self, value: str) -> Any:
            return self.finish(value)

    return Poll


def _v2() -> type[Wizard]:
    class Poll(Wizard, name="t_rev5_poll"):
        __qualname__ = "Poll"

        class State(Enum):
            COLOUR = auto()

        @step(State.COLOUR, prompt="Colour?")
        async def colour(self, value: str) -> Any:
            return self.finish(value)

        async def on_finish(self) -> None:
            await self.answer(f"Noted: {self.result}.")

    return Poll


def sent(talk: Conversation) -> list[str | None]:
    return [m.message.text for m in talk.messages if m.from_bot]


async def test_a_stored_deadline_of_a_timeout_the_new_deploy_dropped_does_not_time_out(
    persistent_backend: Backend, fake_clock: FakeClock
) -> None:
    current = [_v1()]

    def setup(dp: Dispatcher, storage: object) -> None:
        current[0].setup(dp, entry=Command("poll"), storage=storage)

    sim = persistent_backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/poll")
    current[0] = _v2()
    await sim.restart()
    await fake_clock.advance(150)
    assert Texts().timed_out not in sent(talk)
    record = await persistent_backend.record(talk)
    assert record is not None and record.deadline is None
    await talk.send("red")
    talk.assert_last("Noted: red.")


def _reminding(limit: int) -> type[Wizard]:
    class Quiz(Wizard, name="t_rev5_quiz"):
        __qualname__ = "Quiz"
        timeout = limit
        remind_after = 40

        class State(Enum):
            ANSWER = auto()

        @step(State.ANSWER, prompt="Answer?")
        async def answer_(self, value: str) -> Any:
            return self.finish(value)

    return Quiz


async def test_a_stored_deadline_of_a_timeout_the_new_deploy_made_longer_waits_for_it(
    persistent_backend: Backend, fake_clock: FakeClock
) -> None:
    current = [_reminding(100)]

    def setup(dp: Dispatcher, storage: object) -> None:
        current[0].setup(dp, entry=Command("quiz"), storage=storage)

    sim = persistent_backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/quiz")
    await fake_clock.advance(40)
    talk.assert_last("Still there?\n\nAnswer?")
    current[0] = _reminding(300)
    await sim.restart()
    await fake_clock.advance(60)  # the old timeout's deadline
    talk.assert_last("Still there?\n\nAnswer?")
    await fake_clock.advance(200)  # the new one
    talk.assert_last(Texts().timed_out)
