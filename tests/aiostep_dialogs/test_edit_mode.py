"""One-message mode (``ui = "edit"``): a button answer edits the prompt in place, a typed answer
gets a new prompt and the old one loses its buttons, the message id lives in the record (so it
survives a restart), and a message that can no longer be edited is replaced by a new one. A
wizard without ``"edit"`` steps stores and sends exactly what it did before."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.methods import EditMessageText, SendMessage, TelegramMethod
from aiogram.types import CallbackQuery

from aiostep.testing import Conversation, FakeClock, MessageRecord
from aiostep_dialogs import Wizard, step
from aiostep_dialogs.validators import ValidationError

if TYPE_CHECKING:
    from conftest import Backend


def no_oat(value: str) -> str:
    if value == "oat":
        raise ValidationError("Oat milk is sold out.")
    return value


class Order(Wizard, name="t_edit_order"):
    """A coffee order in one message: size, milk (oat is sold out), a typed name, OK."""

    ui = "edit"

    class State(Enum):
        SIZE = auto()
        MILK = auto()
        NAME = auto()
        CONFIRM = auto()

    @step(State.SIZE, prompt="Which size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.MILK, prompt="Milk?", choices={"oat": "Oat", "cow": "Cow"}, validate=no_oat)
    async def milk(self, value: str) -> None:
        self.data["milk"] = value

    @step(State.NAME, prompt="Name for the cup?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.CONFIRM, prompt="{size}, {milk}, for {name}. OK?", choices={"yes": "OK"})
    async def confirm(self, value: str) -> None:
        pass

    async def on_finish(self) -> None:
        await self.answer_in_place(f"Ordered for {self.data['name']}.")


class Mixed(Wizard, name="t_edit_mixed"):
    """A "send" wizard with one "edit" step, and an "edit" step's neighbour set to "send"."""

    class State(Enum):
        SIZE = auto()
        MILK = auto()
        SUGAR = auto()

    @step(State.SIZE, prompt="Which size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.MILK, prompt="Milk?", choices={"oat": "Oat", "cow": "Cow"}, ui="edit")
    async def milk(self, value: str) -> None:
        self.data["milk"] = value

    @step(State.SUGAR, prompt="Sugar?", choices={"y": "Yes", "n": "No"})
    async def sugar(self, value: str) -> None:
        self.data["sugar"] = value

    async def on_finish(self) -> None:
        await self.answer("Done.")


class Plain(Wizard, name="t_edit_plain"):
    """The same questions, default ui ("send")."""

    class State(Enum):
        SIZE = auto()
        NAME = auto()

    @step(State.SIZE, prompt="Which size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.NAME, prompt="Name for the cup?")
    async def name(self, value: str) -> None:
        self.data["name"] = value


def setup(dp: Dispatcher, storage: object) -> None:
    Order.setup(dp, entry=Command("order"), storage=storage)
    Mixed.setup(dp, entry=Command("mixed"))
    Plain.setup(dp, entry=Command("plain"))


async def stored_id(backend: Backend, talk: Conversation) -> Any:
    record = await backend.record(talk)
    assert record is not None
    return record.kwargs.get("m")


def sent(talk: Conversation) -> list[str]:
    """The texts of the bot's messages here, as they read now."""
    return [record.text or "" for record in talk.messages]


async def press_on(talk: Conversation, message: MessageRecord, label: str) -> None:
    """Press ``label`` on ``message`` as the client sent it, whatever happened to it since."""
    button = message.find_button(label)
    assert button is not None
    sim = talk.sim
    query = CallbackQuery.model_validate(
        {
            "id": f"late-{len(sim.session.calls)}",
            "from": talk.user.model_dump(),
            "chat_instance": f"ci{talk.chat.id}",
            "message": message.message.model_dump(by_alias=True),
            "data": button.callback_data,
        },
        context={"bot": sim.bot},
    )
    sim.session.expect_callback(query.id, talk.chat.id)
    await sim.feed(sim._update(callback_query=query), chat_id=talk.chat.id)


async def test_a_button_answer_edits_the_prompt_in_place(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    prompt = talk.last_message
    assert prompt is not None and await stored_id(backend, talk) == prompt.message_id

    await talk.click("Large")

    assert sent(talk) == ["Milk?"]  # the one message, edited
    assert prompt.buttons == [["Oat", "Cow"]]
    assert sim.session.unanswered_callbacks() == []
    assert await stored_id(backend, talk) == prompt.message_id
    await talk.click("Cow")
    talk.assert_last("Name for the cup?", buttons=[])
    assert len(talk.messages) == 1
    assert "bot [edited]> Milk?" in talk.transcript()


async def test_a_typed_answer_sends_a_new_prompt_and_removes_the_old_keyboard(
    backend: Backend,
) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    first = talk.last_message
    assert first is not None

    await talk.send("Large")  # a choice may be typed

    assert sent(talk) == ["Which size?", "Milk?"]
    assert first.buttons == []
    newest = talk.last_message
    assert newest is not None and newest.buttons == [["Oat", "Cow"]]
    assert await stored_id(backend, talk) == newest.message_id


async def test_a_refused_press_gets_a_toast_and_keeps_the_message(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Large")
    calls = len(sim.session.calls)

    await talk.click("Oat")

    assert talk.toasts == ["Oat milk is sold out."]
    talk.assert_last("Milk?", buttons=[["Oat", "Cow"]])
    assert [c.__api_method__ for c in sim.session.calls[calls:]] == ["answerCallbackQuery"]
    record = await backend.record(talk)
    assert record is not None and record.kwargs["a"] == 1 and "milk" not in record.data
    await talk.click("Cow")  # its buttons still answer
    talk.assert_last("Name for the cup?")


async def test_a_refused_typed_answer_gets_a_new_prompt_with_the_reason(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Large")
    old = talk.last_message
    assert old is not None

    await talk.send("Oat")

    talk.assert_last("Oat milk is sold out.\n\nMilk?", buttons=[["Oat", "Cow"]])
    assert old.buttons == [] and old.text == "Milk?"
    await talk.click("Cow")
    talk.assert_last("Name for the cup?")


async def test_back_sends_the_earlier_prompt_as_a_new_message(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Large")
    pressed = talk.last_message
    assert pressed is not None

    await talk.send("/back")  # typed: a new message; the old one keeps no buttons

    talk.assert_last("Which size?", buttons=[["Small", "Large"]])
    assert pressed.text == "Milk?" and pressed.buttons == []
    newest = talk.last_message
    assert newest is not None and await stored_id(backend, talk) == newest.message_id
    await talk.click("Small")
    assert newest.text == "Milk?" and len(talk.messages) == 2


async def test_starting_again_mid_way_moves_the_prompt_to_a_new_message(
    backend: Backend,
) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Large")
    old = talk.last_message
    assert old is not None

    await talk.send("/order")  # resumed: the question is asked again below

    assert sent(talk) == ["Milk?", "Milk?"] and old.buttons == []
    newest = talk.last_message
    assert newest is not None and await stored_id(backend, talk) == newest.message_id
    await talk.click("Cow")
    assert newest.text == "Name for the cup?"


async def test_finish_edits_the_last_message_to_the_closing_text(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Small")
    await talk.click("Cow")
    await talk.send("Ann")
    summary = talk.last_message
    assert summary is not None and summary.text == "s, cow, for Ann. OK?"

    await talk.click("OK")

    assert sent(talk) == ["Name for the cup?", "Ordered for Ann."]
    assert summary.buttons == [] and summary.text == "Ordered for Ann."
    assert sim.session.unanswered_callbacks() == []
    assert await backend.record(talk) is None


async def test_cancel_edits_the_prompt_to_cancelled(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Large")

    await talk.send("/cancel")

    assert sent(talk) == ["Cancelled."]
    assert talk.messages[0].buttons == []
    assert await backend.record(talk) is None


async def test_edit_mode_continues_after_a_restart_with_the_stored_message(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    first = talk.last_message
    assert first is not None
    await sim.restart()

    await talk.send("Large")  # the old prompt is found through the record
    assert first.buttons == []
    second = talk.last_message
    assert second is not None and second is not first
    await sim.restart()

    await talk.click("Cow")  # edits the message it was pressed on
    assert second.text == "Name for the cup?" and len(talk.messages) == 2
    assert await stored_id(persistent_backend, talk) == second.message_id
    await sim.restart()

    await talk.send("Bea")
    await sim.restart()
    await talk.click("OK")
    talk.assert_last("Ordered for Bea.", buttons=[])
    assert sent(talk) == ["Which size?", "Name for the cup?", "Ordered for Bea."]


async def test_a_prompt_too_old_to_edit_is_sent_anew(
    backend: Backend, fake_clock: FakeClock
) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    old = talk.last_message
    assert old is not None
    await fake_clock.advance(49 * 3600)  # Telegram refuses to edit it now

    await talk.click("Large")

    assert sent(talk) == ["Which size?", "Milk?"]
    newest = talk.last_message
    assert newest is not None and newest.buttons == [["Oat", "Cow"]]
    assert await stored_id(backend, talk) == newest.message_id
    assert sim.session.unanswered_callbacks() == []
    await talk.click("Cow")  # the new message is edited from now on
    assert sent(talk) == ["Which size?", "Name for the cup?"]


async def test_a_deleted_prompt_is_sent_anew(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    prompt = talk.last_message
    assert prompt is not None
    talk.delete(prompt)  # the user deleted it (Telegram does not tell the bot)

    await press_on(talk, prompt, "Large")  # a press that was on its way

    newest = talk.last_message
    assert newest is not None and newest is not prompt and newest.text == "Milk?"
    assert await stored_id(backend, talk) == newest.message_id
    talk.delete(newest)
    await talk.send("/cancel")  # the message to close is gone: the text is sent
    talk.assert_last("Cancelled.")
    assert await backend.record(talk) is None
    assert "user deleted message" in talk.transcript()


async def test_an_edit_that_changes_nothing_counts_as_done(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/order")
    prompt = talk.last_message
    assert prompt is not None

    def unchanged(method: TelegramMethod[Any]) -> Any:
        raise TelegramBadRequest(method=method, message="Bad Request: message is not modified")

    sim.session.respond("editMessageText", unchanged)
    await talk.click("Large")

    assert len(talk.messages) == 1 and not sim.session.calls_of(SendMessage)[1:]
    assert await stored_id(backend, talk) == prompt.message_id
    record = await backend.record(talk)
    assert record is not None and record.current_state == "MILK"


async def test_a_step_ui_overrides_the_wizards(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/mixed")
    first = talk.last_message
    assert first is not None

    await talk.click("Large")  # MILK is "edit": its prompt replaces the pressed one
    assert sent(talk) == ["Milk?"]
    await talk.click("Cow")  # SUGAR is "send" (the wizard's): a new message
    assert sent(talk) == ["Milk?", "Sugar?"]
    assert first.buttons == []
    await talk.click("No")
    talk.assert_last("Done.")
    assert len(sim.session.calls_of(EditMessageText)) == 1


async def test_a_send_wizard_stores_and_sends_what_it_did_before(backend: Backend) -> None:
    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/plain")
    await talk.click("Large")

    record = await backend.record(talk)
    assert record is not None
    assert set(record.kwargs) == {"v", "fp", "h"}  # no message id
    assert sent(talk) == ["Which size?", "Name for the cup?"]
    assert not sim.session.calls_of(EditMessageText)
    assert Plain._edits is False and Order._edits is True


def test_an_unknown_ui_is_refused_at_definition() -> None:
    with pytest.raises(ValueError, match=r"Bad\.ui must be 'send' or 'edit', got 'inline'"):

        class Bad(Wizard, name="t_edit_bad"):
            ui = "inline"  # type: ignore[assignment]

            class State(Enum):
                ONE = auto()

            @step(State.ONE, prompt="?")
            async def one(self, value: str) -> None:
                pass

    with pytest.raises(ValueError, match=r"step\(ui=\.\.\.\) must be 'send' or 'edit'"):
        step(Order.State.SIZE, prompt="?", ui="one")  # type: ignore[arg-type]
