"""A prompt that cannot be delivered does not strand the user on a question they never saw: the
error reaches dp.errors and the conversation goes back to the step whose prompt they did see,
with the data as it was before their answer."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import ErrorEvent

from aiostep_dialogs import Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Signup(Wizard, name="t_send_fails_signup"):
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="{name}, how old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Done: {self.data['name']}, {self.data['age']}")


errors: list[str] = []


def build(dp: Dispatcher, storage: Any) -> None:
    Signup.setup(dp, entry=Command("signup"), storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> None:
        errors.append(type(event.exception).__name__)


async def test_a_prompt_that_fails_to_send_returns_the_user_to_the_step_they_saw(
    backend: Backend,
) -> None:
    errors.clear()
    sim = backend.simulator(build)
    talk = sim.chat()
    await talk.send("/signup")

    def refuse_age_prompt(method: SendMessage) -> Any:
        if "how old" in method.text:
            raise TelegramBadRequest(method, "Bad Request: chat not found")
        return sim.session._send(sim.bot, method)

    sim.session.respond("sendMessage", refuse_age_prompt)
    await talk.send("Ann")
    assert errors == ["TelegramBadRequest"]
    record = await backend.record(talk)
    assert record is not None and record.current_state == "NAME"  # the question they saw
    assert record.data == {}  # their answer is undone with it

    sim.session.respond("sendMessage", None)
    await talk.send("Bea")  # answers the name question again
    talk.assert_last("Bea, how old are you?")
    await talk.send("30")
    talk.assert_last("Done: Bea, 30")
