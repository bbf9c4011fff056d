"""A Wizard compiles down to aiostep's persisted next steps: registered step names, one record
per conversation (state, data, navigation in the step's kwargs), and it survives restarts."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import IsState, MemoryStateStorage
from aiostep.keys import ConversationKey, storage_key
from aiostep.storage.base import Patch
from aiostep.testing import BotSimulator, Conversation
from aiostep_dialogs import Finish, Wizard, step, v
from aiostep_dialogs.record import stored_wizard_id
from examples.signup import Signup, build

if TYPE_CHECKING:
    from conftest import Backend


class Pets(Wizard, name="t_persist_pets"):
    """Three steps, a branch and a button: enough to see every part of the record."""

    class State(Enum):
        KIND = auto()
        NAME = auto()
        AGE = auto()

    @step(State.KIND, prompt="Cat or dog?", choices={"cat": "Cat", "dog": "Dog"})
    async def kind(self, value: str) -> None:
        self.data["kind"] = value

    @step(State.NAME, prompt="The {kind}'s name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old is {name}?", validate=v.integer(min=0, max=40))
    async def age(self, value: int) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['name']} is {self.result}.")


def pets(dp: Dispatcher, storage: object) -> None:
    Pets.setup(dp, entry=Command("pets"), storage=storage)


async def test_each_step_is_registered_under_wizard_id_and_state_name() -> None:
    dp = Dispatcher()
    pets(dp, MemoryStateStorage())
    Signup.setup(dp)
    listen = next(m for m in dp.message.outer_middleware if isinstance(m, aiostep.Listen))
    registry = listen.registry  # the Dispatcher's own: setup registers there
    for state in Pets.State:
        entry = registry.get(f"t_persist_pets:{state.name}")
        assert entry is not None, state
        assert "message" in entry.updates
        assert any(u.startswith("callback_query") for u in entry.updates)  # its buttons
    for state in Signup.State:
        assert f"signup:{state.name}" in registry


async def test_progress_is_persisted_in_one_record(backend: Backend) -> None:
    sim = backend.simulator(pets)
    talk = sim.chat()
    await talk.send("/pets")
    await talk.click("Dog")
    await talk.send("Rex")

    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_persist_pets:AGE"  # the next step, by registered name
    assert record.current_state is not None and record.current_state.endswith("AGE")
    assert record.data == {"kind": "dog", "name": "Rex"}
    meta = record.kwargs
    # the wizard is named by the step's name, not stored again (record version 4)
    assert "w" not in meta and stored_wizard_id(record) == "t_persist_pets"
    # navigation history: the steps answered, by state name, each with only what /back needs
    # to undo its answer (the names it added, the values it replaced): not the whole data
    # (an answer that only added names is stored as text: "STATE+name")
    assert meta["h"] == ["KIND+kind", "NAME+name"]
    assert meta["fp"] == Pets._fingerprint and len(meta["fp"]) == 8
    assert "a" not in meta  # no answer refused: 0 is not stored
    assert "n" not in meta  # a prompt without buttons needs no nonce

    await talk.send("3")
    talk.assert_last("Rex is 3.")
    assert await backend.record(talk) is None  # a finished wizard leaves nothing behind


async def test_state_is_stored_by_its_enum_name(backend: Backend) -> None:
    """The stored state is the Enum member's name, so ``IsState(Pets.State.NAME)`` sees it."""
    seen: list[bool] = []

    def setup(dp: Dispatcher, storage: object) -> None:
        pets(dp, storage)

        @dp.message(Command("where"), IsState(Pets.State.NAME, storage=storage, key="conversation"))
        async def at_name(message: Message) -> None:
            seen.append(True)
            await message.answer("You are naming your pet.")

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/pets")
    await talk.click("Cat")

    record = await backend.record(talk)
    assert record is not None
    assert record.current_state == "NAME"
    await talk.send("/where")
    assert seen == [True]


async def test_schema_fingerprint_changes_with_the_steps() -> None:
    class Other(Wizard, name="t_persist_other"):
        class State(Enum):
            KIND = auto()
            NAME = auto()

        @step(State.KIND, prompt="?")
        async def kind(self, value: str) -> None: ...

        @step(State.NAME, prompt="?")
        async def name(self, value: str) -> None: ...

    assert Other._fingerprint != Pets._fingerprint


# The signup example's whole flow: a rejected name, /back, an unhandled command, a rejected age,
# the "Start over" branch, and the finish.
SIGNUP_FLOW: list[tuple[str, str]] = [
    ("send", "/start"),
    ("send", "A"),
    ("send", "Alice"),
    ("send", "/back"),
    ("send", "Bob"),
    ("send", "/help"),
    ("send", "abc"),
    ("send", "30"),
    ("click", "Start over"),
    ("send", "Carol"),
    ("send", "31"),
    ("click", "Yes"),
]
SIGNUP_TRANSCRIPT = [
    "user> /start",
    "bot> What is your name?",
    "user> A",
    "bot> Please send at least 2 characters.",
    "     ",
    "     What is your name?",
    "user> Alice",
    "bot> How old are you?",
    "user> /back",
    "bot> What is your name?",
    "user> Bob",
    "bot> How old are you?",
    "user> /help",
    "bot> How old are you?",
    "user> abc",
    "bot> Please send a whole number from 1 to 120.",
    "     ",
    "     How old are you?",
    "user> 30",
    "bot> Bob, 30. Correct?",
    "  [Yes] [Start over]",
    "user clicked [Start over]",
    "bot [edited]> Bob, 30. Correct?",
    "bot> What is your name?",
    "user> Carol",
    "bot> How old are you?",
    "user> 31",
    "bot> Carol, 31. Correct?",
    "  [Yes] [Start over]",
    "user clicked [Yes]",
    "bot [edited]> Carol, 31. Correct?",
    "bot> Welcome, Carol!",
]


async def _act(talk: Conversation, kind: str, arg: str) -> None:
    if kind == "send":
        await talk.send(arg)
    else:
        await talk.click(arg)


def _lines(talk: Conversation) -> list[str]:
    return [line for line in talk.transcript().splitlines()[1:] if line != "--- restart ---"]


async def test_signup_flow_without_restart(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    for kind, arg in SIGNUP_FLOW:
        await _act(talk, kind, arg)
    assert _lines(talk) == SIGNUP_TRANSCRIPT
    assert await backend.record(talk) is None


@pytest.mark.parametrize("position", range(1, len(SIGNUP_FLOW)))
async def test_restart_between_any_two_messages_continues_where_the_user_was(
    persistent_backend: Backend, position: int
) -> None:
    sim = persistent_backend.simulate(build)
    talk = sim.chat()
    for index, (kind, arg) in enumerate(SIGNUP_FLOW):
        if index == position:
            before = await persistent_backend.record(talk)
            await sim.restart()
            assert len(persistent_backend.storages) == 2  # a new storage object, same place
            assert await persistent_backend.record(talk) == before
        await _act(talk, kind, arg)
    assert "--- restart ---" in talk.transcript()
    assert _lines(talk) == SIGNUP_TRANSCRIPT
    assert await persistent_backend.record(talk) is None


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
async def test_memory_storage_forgets_the_conversation_on_restart(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/signup")
    await talk.send("Alice")
    await sim.restart()
    await talk.send("30")  # nobody is waiting for it any more
    talk.assert_last("How old are you?")
    assert await backend.record(talk) is None


class Basket(Wizard, name="t_persist_basket"):
    """Collects answers as data keys, in the order given."""

    class State(Enum):
        ITEM = auto()

    @step(State.ITEM, prompt="An item (or done)?")
    async def item(self, value: str) -> Basket.State | None:
        if value == "done":
            return None
        self.data[value] = len(self.data)
        return self.State.ITEM

    async def on_finish(self) -> None:
        await self.answer(",".join(self.data))


async def test_collected_data_keeps_its_order_on_every_backend(backend: Backend) -> None:
    """A summary built from ``self.data`` reads the same on memory, File and Redis."""
    sim = backend.simulator(
        lambda dp, storage: Basket.setup(dp, entry=Command("basket"), storage=storage)
    )
    talk = sim.chat()
    await talk.send("/basket")
    items = ["milk", "eggs", "bread", "tea", "jam", "rice", "oats", "figs", "kale", "plums"]
    for item in items:
        await talk.send(item)
    record = await backend.record(talk)
    assert record is not None and list(record.data) == items
    await talk.send("done")
    talk.assert_last(",".join(items))


async def test_one_wizard_on_two_dispatchers_keeps_each_bots_conversations() -> None:
    """Two bots in one process (or two test Dispatchers) may share a wizard class; each bot's
    conversations live in its own storage."""
    first, second = MemoryStateStorage(), MemoryStateStorage()
    first_dp, second_dp = Dispatcher(), Dispatcher()
    Pets.setup(first_dp, entry=Command("pets"), storage=first)
    Pets.setup(second_dp, entry=Command("pets"), storage=second)

    async with BotSimulator(first_dp) as sim:
        talk = sim.chat()
        await talk.send("/pets")
        await talk.click("Cat")
        talk.assert_last("The cat's name?")
        await talk.send("Tom")
        talk.assert_last("How old is Tom?")
    assert await first.aio.read("1001:1001@42") is not None  # the simulator bot: 42:TEST
    assert await second.aio.read("1001:1001@42") is None


async def test_back_undoes_answers_stored_by_the_previous_record_layout(backend: Backend) -> None:
    """A conversation stored by 0.4 (record version 2: each history entry holds the whole data
    from before its answer) still goes back correctly after the upgrade."""
    sim = backend.simulator(pets)
    talk = sim.chat()
    await talk.send("/pets")
    await talk.click("Dog")
    await talk.send("Rex")
    record = await backend.record(talk)
    assert record is not None
    old_history = [{"s": "KIND", "d": {}}, {"s": "NAME", "d": {"kind": "dog"}}]
    kwargs = {**record.kwargs, "v": 2, "h": old_history}
    key = storage_key(ConversationKey(talk.chat.id, talk.user.id, None, sim.bot.id))
    await backend.storage.write(key, Patch(kwargs=kwargs))

    await talk.send("/back")
    record = await backend.record(talk)
    assert record is not None and record.data == {"kind": "dog"}
    assert record.current_state is not None and record.current_state.endswith("NAME")
