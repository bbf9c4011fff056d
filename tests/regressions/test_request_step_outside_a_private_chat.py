"""Request buttons (contact, location, poll, users, chat) work in private chats only (Telegram's
`KeyboardButton` docs). A wizard that reached a request step in a group showed the button
anyway, and the test kit pressed it as if it worked: the bot's tests passed, and in Telegram the
user was stuck on a step they could not answer ("Please use the button below" forever). Now the
step is refused before its prompt is sent: the user is told to continue in a private chat, the
developer gets `PrivateChatOnlyError` (naming the step and the fix) in ``dp.errors``, and the
conversation in that group ends (every way on leads back to that step; a button press that led
there is answered). The test kit refuses to press such a button outside a private chat, as the
user's app cannot."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import ErrorEvent, KeyboardButton, Message, ReplyKeyboardMarkup

from aiostep_dialogs import Finish, PrivateChatOnlyError, Wizard, step
from aiostep_dialogs.running import Call

if TYPE_CHECKING:
    from conftest import Backend


class Delivery(Wizard, name="t_private_only_delivery"):
    class State(Enum):
        NAME = auto()
        PHONE = auto()

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.PHONE, prompt="Your phone?", request="contact")
    async def phone(self, value: dict[str, object]) -> None:
        self.data["phone"] = value["phone_number"]


class Locate(Wizard, name="t_private_only_locate"):
    class State(Enum):
        WHERE = auto()

    @step(State.WHERE, prompt="Where are you?", request="location")
    async def where(self, value: dict[str, float]) -> None:
        self.data["where"] = value


errors: list[BaseException] = []


def bot(dp: Dispatcher, storage: object) -> None:
    Delivery.setup(dp, entry=Command("order"), storage=storage)
    Locate.setup(dp, entry=Command("where"), storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(event.exception)
        return True


async def test_a_request_step_in_a_group_tells_the_user_and_the_developer(
    backend: Backend,
) -> None:
    errors.clear()
    sim = backend.simulator(bot)
    talk = sim.chat(chat=sim.group())
    await talk.send("/order")
    await talk.send("Ann")
    assert talk.keyboard is None  # no button that cannot work in a group
    assert talk.last == "This step works only in a private chat with me."
    assert len(errors) == 1 and isinstance(errors[0], PrivateChatOnlyError)
    assert "Delivery.phone" in str(errors[0]) and "private" in str(errors[0])
    assert await backend.record(talk) is None  # ended: it could never get past that step
    await talk.send("Bob")  # no longer a step's answer
    assert talk.last == "This step works only in a private chat with me."


class Cup(Wizard, name="t_private_only_cup"):
    ui = "edit"

    class State(Enum):
        SIZE = auto()
        PHONE = auto()

    @step(State.SIZE, prompt="Size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.PHONE, prompt="Phone?", request="contact")
    async def phone(self, value: dict[str, object]) -> None:
        self.data["phone"] = value["phone_number"]


def cup_bot(dp: Dispatcher, storage: object) -> None:
    Cup.setup(dp, entry=Command("cup"), storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(event.exception)
        return True


async def test_a_press_that_leads_to_a_request_step_in_a_group_is_answered(
    backend: Backend,
) -> None:
    errors.clear()
    sim = backend.simulator(cup_bot)
    talk = sim.chat(chat=sim.group())
    await talk.send("/cup")
    await talk.click("Large")
    assert sim.session.unanswered_callbacks() == []  # no spinner left in the user's app
    assert talk.last == "This step works only in a private chat with me."
    assert [type(e) for e in errors] == [PrivateChatOnlyError]
    assert await backend.record(talk) is None


async def test_a_first_step_that_asks_for_a_button_in_a_group_starts_nothing(
    backend: Backend,
) -> None:
    errors.clear()
    sim = backend.simulator(bot)
    talk = sim.chat(chat=sim.group())
    await talk.send("/where")
    assert talk.last == "This step works only in a private chat with me."
    assert [type(e) for e in errors] == [PrivateChatOnlyError]
    assert await backend.record(talk) is None


async def test_a_request_step_in_a_private_chat_still_shows_its_button(backend: Backend) -> None:
    sim = backend.simulator(bot)
    talk = sim.chat()
    await talk.send("/where")
    assert talk.keyboard == [["Send my location"]]


async def test_the_test_kit_cannot_press_a_request_button_in_a_group() -> None:
    from aiostep.testing import BotSimulator

    def raw() -> Dispatcher:
        dp = Dispatcher()

        @dp.message(Command("phone"))
        async def ask(message: Message) -> None:
            button = KeyboardButton(text="Share", request_contact=True)
            await message.answer("Phone?", reply_markup=ReplyKeyboardMarkup(keyboard=[[button]]))

        return dp

    async with BotSimulator(raw) as sim:
        talk = sim.chat(chat=sim.group())
        await talk.send("/phone")
        with pytest.raises(AssertionError, match="private chats only"):
            await talk.press("Share")


class Phone(Wizard, name="t_private_only_phone"):
    class State(Enum):
        PHONE = auto()

    @step(State.PHONE, prompt="Phone?", request="contact")
    async def phone(self, value: dict[str, object]) -> Finish:
        return self.finish(value["phone_number"])


class Member(Wizard, name="t_private_only_member"):
    class State(Enum):
        NAME = auto()
        DONE = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> Call:
        self.data["name"] = value
        return self.call(Phone)

    @step(State.DONE, prompt="Anything else?")
    async def done(self, value: str) -> Finish:
        return self.finish()


def member_bot(dp: Dispatcher, storage: object) -> None:
    Member.setup(dp, entry=Command("join"), storage=storage)
    Phone.setup(dp, storage=storage)

    @dp.errors()
    async def on_error(event: ErrorEvent) -> bool:
        errors.append(event.exception)
        return True


async def test_a_called_wizard_that_asks_for_a_button_in_a_group_ends_the_conversation(
    backend: Backend,
) -> None:
    errors.clear()
    sim = backend.simulator(member_bot)
    talk = sim.chat(chat=sim.group())
    await talk.send("/join")
    await talk.send("Ann")
    assert talk.last == "This step works only in a private chat with me."
    assert [type(e) for e in errors] == [PrivateChatOnlyError]
    assert await backend.record(talk) is None  # not back at Name?, to be refused again
