"""Request buttons: a step with ``request=`` shows one reply-keyboard button; pressing it
answers the step with what the user's app shares (contact, location, poll, users, chat); a
typed text gets the button's hint and stores nothing; the next prompt removes the keyboard."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import (
    KeyboardButtonPollType,
    KeyboardButtonRequestChat,
    KeyboardButtonRequestUsers,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from aiostep_dialogs import Finish, Texts, Wizard, step, v
from aiostep_dialogs.requests import request_kind

if TYPE_CHECKING:
    from conftest import Backend


class Delivery(Wizard, name="t_req_delivery"):
    """Phone by button (own contact only, or typed), then location, then a name."""

    class State(Enum):
        PHONE = auto()
        WHERE = auto()
        NAME = auto()

    @step(State.PHONE, prompt="Your phone?", request="contact", validate=v.phone(own=True))
    async def phone_step(self, value: str) -> None:
        self.data["phone"] = value

    @step(State.WHERE, prompt="Where to?", request="location", request_label="Here")
    async def where(self, value: dict[str, float]) -> None:
        self.data["where"] = value

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"{self.result}: {self.data['phone']} at {self.data['where']}")


class OnlyShared(Wizard, name="t_req_only_shared"):
    """The default validators of each request kind; labels from Texts."""

    texts = Texts(request_chat="Pick the group")

    class State(Enum):
        OWN = auto()
        POLL = auto()
        QUIZ = auto()
        USERS = auto()
        CHAT = auto()

    @step(State.OWN, prompt="Share your contact", request="contact", validate=v.contact(own=True))
    async def own(self, value: dict[str, Any]) -> None:
        self.data["own"] = value

    @step(State.POLL, prompt="Make a poll", request="poll")
    async def poll_step(self, value: dict[str, Any]) -> None:
        self.data["poll"] = value["options"]

    @step(State.QUIZ, prompt="Make a quiz", request=KeyboardButtonPollType(type="quiz"))
    async def quiz(self, value: dict[str, Any]) -> None:
        self.data["quiz"] = value["type"]

    @step(
        State.USERS,
        prompt="Who?",
        request=KeyboardButtonRequestUsers(request_id=7, max_quantity=2, request_name=True),
    )
    async def users(self, value: list[dict[str, Any]]) -> None:
        self.data["users"] = [u["user_id"] for u in value]

    @step(State.CHAT, prompt="Which group?", request="chat")
    async def chat_step(self, value: dict[str, Any]) -> Finish:
        return self.finish(value["chat_id"])

    async def on_finish(self) -> None:
        await self.answer(f"done: {self.data} chat {self.result}")


def delivery(dp: Dispatcher, storage: object) -> None:
    Delivery.setup(dp, entry=Command("order"), storage=storage)


def only_shared(dp: Dispatcher, storage: object) -> None:
    OnlyShared.setup(dp, entry=Command("share"), storage=storage)


async def test_share_my_phone_button_answers_the_step_and_keyboard_goes(backend: Backend) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/order")
    assert talk.last == "Your phone?"
    assert talk.keyboard == [["Share my phone number"]]
    markup = talk.last_message.markup if talk.last_message else None
    assert isinstance(markup, ReplyKeyboardMarkup)
    assert markup.keyboard[0][0].request_contact is True
    await talk.press("Share my phone number")
    assert talk.last == "Where to?"
    assert talk.keyboard == [["Here"]]
    await talk.press("Here", location=(48.85, 2.35))
    assert talk.last == "Your name?"
    assert talk.keyboard is None  # the next prompt removed the request keyboard
    assert talk.last_message is not None
    assert isinstance(talk.last_message.markup, ReplyKeyboardRemove)
    await talk.send("Ann")
    assert talk.last == "Ann: +15550100000 at {'latitude': 48.85, 'longitude': 2.35}"


async def test_typed_phone_is_the_fallback_when_the_step_accepts_it(backend: Backend) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send("+44 20 7946 0958")
    assert talk.last == "Where to?"
    record = await backend.record(talk)
    assert record is not None and record.data["phone"] == "+442079460958"


async def test_someone_elses_contact_is_refused_on_an_own_phone_step(backend: Backend) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send_contact("+15550199999", first_name="Bob", user_id=4242)
    assert talk.last == (
        "Please share your own contact (the button below shares it), not someone else's."
        "\n\nYour phone?"
    )
    assert talk.keyboard == [["Share my phone number"]]  # shown again with the prompt
    record = await backend.record(talk)
    assert record is not None and "phone" not in record.data


async def test_typed_text_on_a_request_step_gets_the_button_hint(backend: Backend) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/order")
    await talk.press("Share my phone number")
    before = await backend.record(talk)
    await talk.send("Baker Street 221b")
    assert talk.last == 'Please use the "Here" button below.\n\nWhere to?'
    after = await backend.record(talk)
    assert before is not None and after is not None and after.data == before.data


async def test_every_request_kind_answers_with_its_default_validator(backend: Backend) -> None:
    sim = backend.simulator(only_shared)
    talk = sim.chat()
    friend = sim.user(first_name="Bob")
    await talk.send("/share")
    await talk.send_contact("+15550199999", first_name="Bob", user_id=friend.id)
    assert talk.last == (
        "Please share your own contact (the button below shares it), not someone else's."
        "\n\nShare your contact"
    )
    await talk.press("Share my phone number")
    assert talk.keyboard == [["Create a poll"]]
    await talk.press("Create a poll", poll=("Lunch?", "Pizza", "Sushi"))
    markup = talk.last_message.markup if talk.last_message else None
    assert isinstance(markup, ReplyKeyboardMarkup)
    assert markup.keyboard[0][0].request_poll == KeyboardButtonPollType(type="quiz")
    await talk.press("Create a poll")
    assert talk.keyboard == [["Choose a user"]]
    await talk.press("Choose a user", share=[friend, 99])
    assert talk.keyboard == [["Pick the group"]]
    await talk.send("my group")
    assert talk.last == 'Please use the "Pick the group" button below.\n\nWhich group?'
    group = sim.group(title="Team")
    await talk.press("Pick the group", share=group)
    assert talk.last == (
        f"done: {{'own': {{'phone_number': '+15550100000', 'first_name': 'Alice', "
        f"'user_id': {talk.user.id}}}, 'poll': ['Pizza', 'Sushi'], 'quiz': 'quiz', "
        f"'users': [{friend.id}, 99]}} chat {group.id}"
    )


async def test_a_share_from_another_request_button_is_refused(backend: Backend) -> None:
    sim = backend.simulator(only_shared)
    talk = sim.chat()
    await talk.send("/share")
    for _ in range(3):
        await talk.press(talk.keyboard[0][0] if talk.keyboard else "")
    assert talk.last == "Who?"
    await talk.send_users_shared(8, [99])  # not the button of this step (request_id 7)
    assert talk.last == 'Please use the "Choose a user" button below.\n\nWho?'


async def test_request_answer_after_a_restart(persistent_backend: Backend) -> None:
    sim = persistent_backend.simulator(only_shared)
    talk = sim.chat()
    await talk.send("/share")
    for _ in range(4):
        await talk.press(talk.keyboard[0][0] if talk.keyboard else "", share=[5])
    assert talk.last == "Which group?"
    await sim.restart()
    # the chat button's request_id is derived from the step, the same in the new process
    await talk.press("Pick the group", share=-100123)
    assert talk.last is not None and talk.last.endswith("chat -100123")


def test_request_is_checked_at_definition() -> None:
    with pytest.raises(TypeError, match="request='phone': use one of 'contact'"):

        @step(Delivery.State.PHONE, prompt="?", request="phone")  # type: ignore[arg-type]
        async def phone_step(self: Any, value: str) -> None: ...

    with pytest.raises(TypeError, match="cannot be combined with choices="):

        @step(Delivery.State.PHONE, prompt="?", request="contact", choices=["a"])
        async def other(self: Any, value: str) -> None: ...

    assert request_kind(KeyboardButtonRequestChat(request_id=1, chat_is_channel=True)) == "chat"


async def test_pressing_users_or_chat_buttons_without_share_picks_someone_new(
    backend: Backend,
) -> None:
    sim = backend.simulator(only_shared)
    talk = sim.chat()
    await talk.send("/share")
    for _ in range(5):  # as the playground presses them: no share= given
        await talk.press(talk.keyboard[0][0] if talk.keyboard else "")
    assert talk.last is not None and talk.last.startswith("done: ")
    assert "'users': [1002]" in talk.last
