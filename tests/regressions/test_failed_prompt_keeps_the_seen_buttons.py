"""When the next prompt cannot be sent, the conversation goes back to the step whose prompt the
user saw, and "the user's next message answers the question they saw". Its buttons did not:
the rollback gave that step a new nonce, so every button on the prompt on screen answered
"This button is no longer active." (one-message mode kept the pressed message's buttons, and a
typed answer left them in place). The step keeps the nonce its buttons carry, and the press
that led to the failure is answered."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import ErrorEvent

from aiostep_dialogs import Finish, Wizard, step
from aiostep_dialogs.running import Call

if TYPE_CHECKING:
    from conftest import Backend


class Cup(Wizard, name="t_seen_buttons_cup"):
    class State(Enum):
        SIZE = auto()
        NAME = auto()

    @step(State.SIZE, prompt="Size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.NAME, prompt="Name for the cup?")
    async def name(self, value: str) -> None:
        self.data["name"] = value


class EditCup(Cup, name="t_seen_buttons_edit_cup"):
    ui = "edit"


errors: list[str] = []


def bot(dp: Dispatcher, storage: object) -> None:
    Cup.setup(dp, entry=Command("cup"), storage=storage)
    EditCup.setup(dp, entry=Command("editcup"), storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(type(event.exception).__name__)
        return True


def refuse_name_prompt(sim: Any) -> None:
    """Telegram refuses the name prompt, sent or edited in."""

    def refuse(method: SendMessage) -> Any:
        if "Name for the cup" in method.text:
            raise TelegramBadRequest(method, "Bad Request: chat not found")
        return sim.session._send(sim.bot, method)

    def refuse_edit(method: EditMessageText) -> Any:
        if "Name for the cup" in method.text:
            raise TelegramBadRequest(method, "Bad Request: chat not found")
        return sim.session._edit_text(sim.bot, method)

    sim.session.respond("sendMessage", refuse)
    sim.session.respond("editMessageText", refuse_edit)


def accept_prompts(sim: Any) -> None:
    sim.session.respond("sendMessage", None)
    sim.session.respond("editMessageText", None)


async def test_after_a_failed_prompt_the_seen_prompts_buttons_still_answer(
    backend: Backend,
) -> None:
    errors.clear()
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/cup")
    refuse_name_prompt(sim)
    await talk.send("Large")  # a typed label answers; its buttons stay on the prompt
    assert errors == ["TelegramBadRequest"]
    accept_prompts(sim)
    await talk.click("Small")
    assert talk.toasts == []
    talk.assert_last("Name for the cup?")


async def test_in_one_message_mode_the_pressed_prompt_answers_again(backend: Backend) -> None:
    errors.clear()
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/editcup")
    refuse_name_prompt(sim)
    await talk.click("Large")
    assert errors == ["TelegramBadRequest"]
    assert sim.session.unanswered_callbacks() == []
    accept_prompts(sim)
    await talk.click("Small")
    assert "This button is no longer active." not in talk.toasts
    assert talk.last == "Name for the cup?"


class Name(Wizard, name="t_seen_buttons_name"):
    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt="Name for the cup?")
    async def name(self, value: str) -> Finish:
        return self.finish(value)


class CallingCup(Wizard, name="t_seen_buttons_calling_cup"):
    class State(Enum):
        SIZE = auto()

    @step(State.SIZE, prompt="Size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> Call:
        self.data["size"] = value
        return self.call(Name)


def calling_bot(dp: Dispatcher, storage: object) -> None:
    CallingCup.setup(dp, entry=Command("cup"), storage=storage)
    Name.setup(dp, storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(type(event.exception).__name__)
        return True


async def test_after_a_called_wizards_failed_prompt_the_callers_buttons_answer(
    backend: Backend,
) -> None:
    errors.clear()
    sim = backend.simulator(calling_bot)
    talk = sim.chat()
    await talk.send("/cup")
    refuse_name_prompt(sim)
    await talk.send("Large")  # typed: the caller's buttons stay on its prompt
    assert errors == ["TelegramBadRequest"]
    accept_prompts(sim)
    await talk.click("Small")
    assert talk.toasts == []
    talk.assert_last("Name for the cup?")
