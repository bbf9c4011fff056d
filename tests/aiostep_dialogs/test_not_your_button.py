"""In a group, a press on a button of another user's wizard gets ``texts.not_yours``, not the
stale-button toast, and changes nobody's conversation; a chat-wide wizard's buttons are
anyone's."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING

from aiogram import Dispatcher
from aiogram.filters import Command
from forged_press import press

from aiostep.keys import ANYONE, ConversationKey, storage_key
from aiostep.storage import StateContext
from aiostep.testing import Conversation
from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Toppings(Wizard, name="t_mine_toppings"):
    class State(Enum):
        PICK = auto()

    @step(State.PICK, prompt="Toppings?", choices=["Ham", "Olives"], multi=True, min=0)
    async def pick(self, value: list[str]) -> None:
        self.data["picked"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.key.user_id}: {value_list(self.data['picked'])}")


def value_list(values: list[str]) -> str:
    return ", ".join(values) or "none"


class Vote(Wizard, name="t_mine_vote"):
    scope = "chat"

    class State(Enum):
        LUNCH = auto()

    @step(State.LUNCH, prompt="Lunch where?", choices={"cafe": "Cafe", "park": "Park"})
    async def lunch(self, value: str) -> None:
        self.data["lunch"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Lunch: {self.data['lunch']}")


def bot(dp: Dispatcher, storage: object) -> None:
    Toppings.setup(dp, entry=Command("toppings"), storage=storage)
    Vote.setup(dp, entry=Command("vote"), storage=storage)


async def _record(backend: Backend, talk: Conversation, user_id: int) -> StateContext | None:
    key = ConversationKey(talk.chat.id, user_id, None, talk.sim.bot.id)
    result: StateContext | None = await backend.storage.read(storage_key(key))
    return result


async def test_a_toggle_on_another_users_multi_select_is_not_theirs(backend: Backend) -> None:
    sim = backend.simulator(bot)
    group = sim.group()
    alice = sim.chat(sim.user(first_name="Alice"), group)
    bob = sim.chat(sim.user(first_name="Bob"), group)
    await alice.send("/toppings")
    alices = alice.last_message
    assert alices is not None
    await bob.send("/toppings")  # Bob's own wizard is at the same step
    alice_before = await backend.record(alice)
    bob_before = await backend.record(bob)

    await bob.click("Ham", message=alices)
    await bob.click("Done", message=alices)

    assert bob.toasts == [Toppings.texts.not_yours] * 2
    assert alices.buttons == [["Ham", "Olives"], ["Done"]]  # no checkmark
    for talk, before in ((alice, alice_before), (bob, bob_before)):
        after = await backend.record(talk)
        assert before is not None and after is not None
        assert (after.kwargs, after.data) == (before.kwargs, before.data)
    await alice.click("Olives", message=alices)
    await alice.click("Done", message=alices)
    alice.assert_last(f"{alice.user.id}: Olives")


async def test_a_press_on_another_users_button_while_a_chat_wide_wizard_runs_is_not_theirs(
    backend: Backend,
) -> None:
    sim = backend.simulator(bot)
    group = sim.group()
    alice = sim.chat(sim.user(first_name="Alice"), group)
    bob = sim.chat(sim.user(first_name="Bob"), group)
    await alice.send("/toppings")
    alices = alice.last_message
    assert alices is not None
    await alice.send("/vote")  # the chat's wizard: Bob's press goes to it, as he has none
    chat_before = await _record(backend, alice, ANYONE)

    await bob.click("Ham", message=alices)

    assert bob.toasts == [Toppings.texts.not_yours]
    chat_after = await _record(backend, alice, ANYONE)
    assert chat_before is not None and chat_after is not None
    assert (chat_after.kwargs, chat_after.data) == (chat_before.kwargs, chat_before.data)
    await bob.click("Park")  # the chat-wide wizard's buttons are anyone's
    bob.assert_last("Lunch: park")


async def test_a_button_sent_before_buttons_named_their_owner_still_answers(
    backend: Backend,
) -> None:
    sim = backend.simulator(bot)
    group = sim.group()
    alice = sim.chat(sim.user(first_name="Alice"), group)
    await alice.send("/vote")
    prompt = alice.last_message
    assert prompt is not None
    genuine = prompt.inline_keyboard[0][1].callback_data
    assert genuine is not None
    prefix, owner, fingerprint, nonce, index = genuine.split(":")
    assert owner == str(ANYONE)

    # the layout of the previous deploy: aw:<fingerprint>:<nonce>:<index>
    await press(alice, prompt, f"{prefix}:{fingerprint}:{nonce}:{index}")

    alice.assert_last("Lunch: park")


async def test_a_chat_wide_wizards_button_reaches_it_while_the_presser_runs_a_wizard_of_their_own(
    backend: Backend,
) -> None:
    sim = backend.simulator(bot)
    group = sim.group()
    alice = sim.chat(sim.user(first_name="Alice"), group)
    bob = sim.chat(sim.user(first_name="Bob"), group)
    await alice.send("/vote")
    votes = alice.last_message
    assert votes is not None
    await bob.send("/toppings")  # Bob's own wizard waits for a press on its own buttons
    bob_before = await backend.record(bob)

    await bob.click("Park", message=votes)

    bob.assert_last("Lunch: park")
    assert bob.toasts == []
    bob_after = await backend.record(bob)
    assert bob_before is not None and bob_after is not None
    assert (bob_after.kwargs, bob_after.data) == (bob_before.kwargs, bob_before.data)
    await bob.click("Olives")
    await bob.click("Done")
    bob.assert_last(f"{bob.user.id}: Olives")
