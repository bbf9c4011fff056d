"""Inline choices: a press advances once and removes the buttons; stale, foreign and forged
presses get a toast and change nothing. Two users in a group, and bursts of messages."""

from __future__ import annotations

import asyncio
from enum import Enum, auto
from typing import TYPE_CHECKING

import pytest
from aiogram import Dispatcher, F
from aiogram.filters import Command
from aiogram.methods import EditMessageReplyMarkup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from aiostep.storage import StateContext
from aiostep.testing import Conversation, MessageRecord
from aiostep_dialogs import Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Coffee(Wizard, name="t_btn_coffee"):
    """Size by button, a typed count, then a confirmation by button."""

    class State(Enum):
        SIZE = auto()
        COUNT = auto()
        CONFIRM = auto()

    @step(State.SIZE, prompt="Which size?", choices={"s": "Small", "l": "Large"})
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.COUNT, prompt="How many?", validate=v.integer(min=1, max=9))
    async def count(self, value: int) -> None:
        self.data["count"] = value

    @step(State.CONFIRM, prompt="{count} x {size}, OK?", choices={"yes": "OK", "no": "Change"})
    async def confirm(self, value: str) -> Coffee.State | None:
        if value == "no":
            return self.State.SIZE
        return None

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['count']} x {self.data['size']} for {self.key.user_id}.")


def coffee(dp: Dispatcher, storage: object) -> None:
    Coffee.setup(dp, entry=Command("coffee"), storage=storage)


def _same(a: StateContext | None, b: StateContext | None) -> bool:
    """The same wizard position: state, pending step, data and navigation (not the token)."""
    assert a is not None and b is not None
    return (a.current_state, a.callback, a.data, a.kwargs) == (
        b.current_state,
        b.callback,
        b.data,
        b.kwargs,
    )


async def press(talk: Conversation, message: MessageRecord, data: str) -> None:
    """Send a callback query with any ``data`` from ``message``, as a client could forge it."""
    sim = talk.sim
    query = CallbackQuery.model_validate(
        {
            "id": f"forged-{len(sim.session.calls)}-{talk.user.id}",
            "from": talk.user.model_dump(),
            "chat_instance": f"ci{talk.chat.id}",
            "message": message.message.model_dump(by_alias=True),
            "data": data,
        },
        context={"bot": sim.bot},
    )
    sim.session.expect_callback(query.id, talk.chat.id)
    await sim.feed(sim._update(callback_query=query), chat_id=talk.chat.id)


async def test_pressing_a_button_advances_and_removes_the_buttons(backend: Backend) -> None:
    sim = backend.simulator(coffee)
    talk = sim.chat()
    await talk.send("/coffee")
    prompt = talk.last_message
    assert prompt is not None and prompt.buttons == [["Small", "Large"]]

    await talk.click("Large")

    assert prompt.buttons == []  # taken away from the answered prompt
    edits = sim.session.calls_of(EditMessageReplyMarkup)
    assert [(e.chat_id, e.message_id) for e in edits] == [(talk.chat.id, prompt.message_id)]
    assert sim.session.unanswered_callbacks() == []  # the press was answered (no spinner)
    talk.assert_last("How many?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"size": "l"}


async def test_a_button_on_an_outdated_message_is_stale(backend: Backend) -> None:
    sim = backend.simulator(coffee)
    talk = sim.chat()
    await talk.send("/coffee")
    await talk.click("Small")
    await talk.send("2")
    old = talk.last_message
    assert old is not None and old.text == "2 x s, OK?"
    await talk.send("/back")  # COUNT again; the CONFIRM message keeps its buttons
    before = await backend.record(talk)

    await talk.click("OK", message=old)

    assert talk.toasts[-1] == Coffee.texts.stale_button
    assert _same(before, await backend.record(talk))
    await talk.send("3")  # the step still answers
    newest = talk.last_message
    assert newest is not None and newest.text == "3 x s, OK?"

    await talk.click("OK", message=old)  # the same question again, but an older message
    assert talk.toasts[-1] == Coffee.texts.stale_button
    talk.assert_last("3 x s, OK?")
    await talk.click("OK", message=newest)
    talk.assert_last(f"3 x s for {talk.user.id}.")


async def test_a_button_after_the_wizard_ended_is_stale(backend: Backend) -> None:
    sim = backend.simulator(coffee)
    talk = sim.chat()
    await talk.send("/coffee")
    first = talk.last_message
    assert first is not None
    await talk.send("/cancel")
    await talk.click("Small", message=first)
    assert talk.toasts == [Coffee.texts.stale_button]
    assert await backend.record(talk) is None


async def test_a_double_press_advances_once(backend: Backend) -> None:
    sim = backend.simulator(coffee)
    talk = sim.chat()
    await talk.send("/coffee")
    prompt = talk.last_message
    assert prompt is not None
    await asyncio.gather(talk.click("Small", message=prompt), talk.click("Small", message=prompt))
    assert talk.toasts == [Coffee.texts.stale_button]
    assert [m.text for m in talk.messages] == ["Which size?", "How many?"]
    record = await backend.record(talk)
    assert record is not None and record.callback == "t_btn_coffee:COUNT"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda fp, nonce: f"aw:{fp}:{'0' * len(nonce)}:0", id="wrong-nonce"),
        pytest.param(lambda fp, nonce: f"aw:{fp}:{nonce}:7", id="no-such-choice"),
        pytest.param(lambda fp, nonce: f"aw:{fp}:{nonce}:-1", id="negative-index"),
        pytest.param(lambda fp, nonce: f"aw:00000000:{nonce}:0", id="other-wizard"),
        pytest.param(lambda fp, nonce: f"aw:{fp}:{nonce}", id="truncated"),
        pytest.param(lambda fp, nonce: f"aw:{fp}::0", id="empty-nonce"),
        pytest.param(lambda fp, nonce: "aw:", id="prefix-only"),
        pytest.param(lambda fp, nonce: f"aw:{fp}:{nonce}:²", id="unicode-digit-index"),
        pytest.param(lambda fp, nonce: f"aw:{fp}:{nonce}:٣", id="arabic-indic-digit-index"),
        pytest.param(lambda fp, nonce: f"aw:{fp}:{nonce}: 0", id="spaced-index"),
    ],
)
async def test_forged_callback_data_changes_nothing(backend: Backend, forge: object) -> None:
    sim = backend.simulator(coffee)
    talk = sim.chat()
    await talk.send("/coffee")
    prompt = talk.last_message
    assert prompt is not None
    genuine = prompt.inline_keyboard[0][0].callback_data
    assert genuine is not None
    prefix, owner, fingerprint, nonce, index = genuine.split(":")
    assert (prefix, owner, fingerprint, index) == (
        "aw",
        str(talk.user.id),
        Coffee._fingerprint,
        "0",
    )
    before = await backend.record(talk)

    # "fp" stands for the owner and the fingerprint: the forgeries keep the owner
    await press(talk, prompt, forge(f"{owner}:{fingerprint}", nonce))  # type: ignore[operator]

    assert talk.toasts == [Coffee.texts.stale_button]
    assert _same(before, await backend.record(talk))
    assert prompt.buttons == [["Small", "Large"]]  # not answered: the buttons stay
    talk.assert_last("Which size?")
    await talk.click("Large", message=prompt)  # the genuine button still works
    talk.assert_last("How many?")


async def test_a_button_pressed_by_another_user_in_a_group_changes_nothing(
    backend: Backend,
) -> None:
    sim = backend.simulator(coffee)
    group = sim.group()
    alice = sim.chat(sim.user(first_name="Alice"), group)
    bob = sim.chat(sim.user(first_name="Bob"), group)
    await alice.send("/coffee")
    alices = alice.last_message
    assert alices is not None
    before = await backend.record(alice)

    await bob.click("Small", message=alices)  # Bob has no wizard of his own
    assert alice.toasts == [Coffee.texts.not_yours]
    assert _same(before, await backend.record(alice))
    assert await backend.record(bob) is None

    await bob.send("/coffee")  # now Bob has one, at the same step, with his own buttons
    await bob.click("Large", message=alices)
    assert alice.toasts[-1] == Coffee.texts.not_yours
    assert _same(before, await backend.record(alice))
    bobs = await backend.record(bob)
    assert bobs is not None and bobs.data == {}

    await alice.click("Small", message=alices)
    alice_record = await backend.record(alice)
    assert alice_record is not None and alice_record.data == {"size": "s"}


async def test_two_users_in_a_group_run_their_own_wizards_interleaved(
    backend: Backend,
) -> None:
    sim = backend.simulator(coffee)
    group = sim.group()
    alice = sim.chat(sim.user(first_name="Alice"), group)
    bob = sim.chat(sim.user(first_name="Bob"), group)

    await alice.send("/coffee")
    await bob.send("/coffee")
    await alice.click("Large")  # the newest "Large" is Bob's; Alice presses on his
    assert alice.toasts == [Coffee.texts.not_yours]
    alice_prompt = alice.messages[0]
    await alice.click("Large", message=alice_prompt)
    alice.assert_last("How many?")
    bob_prompt = bob.messages[1]
    await bob.click("Small", message=bob_prompt)
    await bob.send("2")
    bob.assert_last("2 x s, OK?")
    bob_confirm = bob.last_message  # (the chat's newest bot message: a group shares them)
    await alice.send("5")
    alice.assert_last("5 x l, OK?")
    await bob.click("OK", message=bob_confirm)
    bob.assert_last(f"2 x s for {bob.user.id}.")
    await alice.send("/back")
    alice.assert_last("How many?")
    await alice.send("4")
    await alice.click("OK", message=alice.last_message)
    alice.assert_last(f"4 x l for {alice.user.id}.")
    assert await backend.record(alice) is None and await backend.record(bob) is None


async def test_a_burst_of_messages_advances_one_step_per_message_in_order(
    backend: Backend,
) -> None:
    sim = backend.simulator(coffee)
    talk = sim.chat()
    await talk.send("/coffee")
    await talk.click("Small")
    await asyncio.gather(talk.send("3"), talk.send("OK"))
    assert [m.text for m in talk.messages] == [
        "Which size?",
        "How many?",
        "3 x s, OK?",
        f"3 x s for {talk.user.id}.",
    ]
    assert await backend.record(talk) is None


async def test_a_burst_with_a_bad_message_first(backend: Backend) -> None:
    sim = backend.simulator(coffee)
    talk = sim.chat()
    await talk.send("/coffee")
    await talk.click("Large")
    await asyncio.gather(talk.send("many"), talk.send("2"), talk.send("Change"))
    assert [m.text for m in talk.messages][2:] == [
        "Please send a whole number.\n\nHow many?",
        "2 x l, OK?",
        "Which size?",
    ]
    record = await backend.record(talk)
    assert record is not None and record.callback == "t_btn_coffee:SIZE"
    assert record.data == {"size": "l", "count": 2}


def coffee_and_posts(dp: Dispatcher, storage: object) -> None:
    coffee(dp, storage)

    @dp.message(Command("post"))
    async def post(message: Message) -> None:
        like = InlineKeyboardButton(text="Like", callback_data="like")
        await message.answer("A post", reply_markup=InlineKeyboardMarkup(inline_keyboard=[[like]]))

    @dp.callback_query(F.data == "like")
    async def liked(query: CallbackQuery) -> None:
        await query.answer("Liked!")


async def test_a_button_that_is_not_the_wizards_goes_to_its_own_handler(
    backend: Backend,
) -> None:
    """The bot's other inline buttons keep working while a wizard runs."""
    sim = backend.simulator(coffee_and_posts)
    talk = sim.chat()
    await talk.send("/post")
    post = talk.last_message
    assert post is not None
    await talk.send("/coffee")
    await talk.click("Small")
    before = await backend.record(talk)

    await talk.click("Like", message=post)

    assert talk.toasts == ["Liked!"]
    assert _same(before, await backend.record(talk))
    await talk.send("2")
    talk.assert_last("2 x s, OK?")


async def test_a_user_runs_separate_wizards_in_two_forum_topics(backend: Backend) -> None:
    sim = backend.simulator(coffee)
    forum = sim.group(forum=True)
    user = sim.user(first_name="Alice")
    news, chat = sim.chat(user, forum, thread_id=10), sim.chat(user, forum, thread_id=20)
    await news.send("/coffee")
    await news.click("Small")
    await chat.send("/coffee")
    news.assert_last("How many?")  # each topic shows its own prompt
    chat.assert_last("Which size?")
    await chat.click("Large")
    await news.send("1")
    await chat.send("2")
    news.assert_last("1 x s, OK?")
    chat.assert_last("2 x l, OK?")
