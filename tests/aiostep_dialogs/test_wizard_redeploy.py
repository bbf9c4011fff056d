"""A bot redeployed with a changed wizard while conversations are mid-way: a renamed state, a
removed step, an inserted step, a changed data schema, a wizard that is gone. Each test starts
a conversation under one version of a wizard class, "redeploys" (``sim.restart()`` with a
factory that installs the next version) and carries on.

Two versions of one wizard have one id and one qualified name, as the same class in two
deploys does; each restart's Dispatcher sets up the version the factory installs."""

from __future__ import annotations

import logging
from enum import Enum, auto
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.keys import ConversationKey, storage_key
from aiostep.storage.base import Patch
from aiostep.testing import BotSimulator, Conversation
from aiostep_dialogs import Finish, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Deploys:
    """The wizard class the next Dispatcher the factory builds installs."""

    def __init__(self, first: type[Wizard]) -> None:
        self.current = first
        self.normal: list[str] = []

    def setup(self, dp: Dispatcher, storage: Any) -> None:
        self.current.setup(dp, entry=Command("order"), storage=storage)
        fallthrough = Router(name="normal")  # after the wizard's router: what nobody took

        @fallthrough.message()
        async def normal(message: Message) -> None:
            self.normal.append(str(message.text))

        dp.include_router(fallthrough)

    async def redeploy(self, sim: BotSimulator, cls: type[Wizard]) -> None:
        self.current = cls
        await sim.restart()


def _registry(sim: BotSimulator) -> aiostep.StepRegistry:
    """The registry of the simulated Dispatcher's Listen, where its wizards' steps are."""
    dp = sim.dispatcher
    return next(m for m in dp.message.outer_middleware if isinstance(m, aiostep.Listen)).registry


def _record_key(talk: Conversation) -> str:
    return storage_key(ConversationKey(talk.chat.id, talk.user.id, None, talk.sim.bot.id))


# --- a renamed state -------------------------------------------------------------------------


def _coffee_v1() -> type[Wizard]:
    class Coffee(Wizard, name="t_redeploy_renamed"):
        __qualname__ = "Coffee"

        class State(Enum):
            SIZE = auto()
            NAME = auto()
            CONFIRM = auto()

        @step(State.SIZE, prompt="Which size?")
        async def size(self, value: str) -> None:
            self.data["size"] = value

        @step(State.NAME, prompt="Your name?")
        async def name(self, value: str) -> None:
            self.data["name"] = value

        @step(State.CONFIRM, prompt="OK?", choices=["yes"])
        async def confirm(self, value: str) -> Finish:
            return self.finish()

    return Coffee


def _coffee_v2() -> type[Wizard]:
    class Coffee(Wizard, name="t_redeploy_renamed"):
        __qualname__ = "Coffee"

        class State(Enum):
            CUP = auto()
            RECIPIENT = auto()
            CONFIRM = auto()

        renamed: ClassVar[dict[str, Enum]] = {"SIZE": State.CUP, "NAME": State.RECIPIENT}

        @step(State.CUP, prompt="Which cup?")
        async def cup(self, value: str) -> None:
            self.data["size"] = value

        @step(State.RECIPIENT, prompt="Who is it for?")
        async def recipient(self, value: str) -> None:
            self.data["name"] = value

        @step(State.CONFIRM, prompt="{size} for {name}?", choices=["yes"])
        async def confirm(self, value: str) -> Finish:
            return self.finish()

        async def on_finish(self) -> None:
            await self.answer(f"A {self.data['size']} for {self.data['name']}.")

    return Coffee


async def test_a_conversation_at_a_renamed_state_continues_at_the_new_one(
    persistent_backend: Backend,
) -> None:
    deploys = Deploys(_coffee_v1())
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send("large")
    talk.assert_last("Your name?")

    await deploys.redeploy(sim, _coffee_v2())
    assert "t_redeploy_renamed:NAME" in _registry(sim)  # the old step name still resolves
    await talk.send("Ann")
    talk.assert_last("large for Ann?", buttons=[["yes"]])
    # the history names the old states too: /back walks them, undoing each answer
    await talk.send("/back")
    talk.assert_last("Who is it for?")
    await talk.send("/back")
    talk.assert_last("Which cup?")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {}
    assert record.callback == "t_redeploy_renamed:CUP" and record.current_state == "CUP"
    await talk.send("small")
    await talk.send("Bo")
    await talk.click("yes")
    talk.assert_last("A small for Bo.")
    assert deploys.normal == []


# --- a removed step ----------------------------------------------------------------------------


def _tea_v1() -> type[Wizard]:
    class Tea(Wizard, name="t_redeploy_removed"):
        __qualname__ = "Tea"

        class State(Enum):
            KIND = auto()
            NAME = auto()
            NOTE = auto()

        @step(State.KIND, prompt="Which tea?")
        async def kind(self, value: str) -> None:
            self.data["kind"] = value

        @step(State.NAME, prompt="Your name?")
        async def name(self, value: str) -> None:
            self.data["name"] = value

        @step(State.NOTE, prompt="A note for the barista?")
        async def note(self, value: str) -> None:
            self.data["note"] = value

    return Tea


def _tea_v2(fallback: str | None = None, drop: str = "NOTE") -> type[Wizard]:
    """Tea without the step ``drop``; ``fallback`` names the class option's state."""

    class Tea(Wizard, name="t_redeploy_removed"):
        __qualname__ = "Tea"

        State = Enum("State", [s for s in ("KIND", "NAME", "NOTE", "TIP") if s != drop])  # type: ignore[misc]

        if fallback is not None:
            locals()["fallback"] = State[fallback]

        @step(State.KIND, prompt="Which tea?")
        async def kind(self, value: str) -> None:
            self.data["kind"] = value

        if drop != "NAME":

            @step(State.NAME, prompt="Your name?")
            async def name(self, value: str) -> None:
                self.data["name"] = value

        if drop != "NOTE":

            @step(State.NOTE, prompt="A note for the barista?")
            async def note(self, value: str) -> None:
                self.data["note"] = value

        @step(State.TIP, prompt="A tip?", validate=v.integer(min=0))
        async def tip(self, value: int) -> Finish:
            return self.finish()

        async def on_finish(self) -> None:
            await self.answer(", ".join(f"{k}={v}" for k, v in self.data.items()))

    return Tea


async def _tea_at_note(backend: Backend) -> tuple[Deploys, BotSimulator, Conversation]:
    deploys = Deploys(_tea_v1())
    sim = backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send("green")
    await talk.send("Ann")
    talk.assert_last("A note for the barista?")
    return deploys, sim, talk


async def test_a_conversation_at_a_removed_step_goes_back_to_the_latest_step_it_answered(
    persistent_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    deploys, sim, talk = await _tea_at_note(persistent_backend)
    await deploys.redeploy(sim, _tea_v2())
    assert "t_redeploy_removed:NOTE" not in _registry(sim)

    with caplog.at_level(logging.WARNING, logger="aiostep_dialogs"):
        await talk.send("no sugar")  # the answer to a question this deploy no longer asks
    talk.assert_last("Your name?")  # asked again, as /back would: that answer is undone
    assert any("NOTE" in r.getMessage() for r in caplog.records if r.name == "aiostep_dialogs")
    record = await persistent_backend.record(talk)
    assert record is not None
    assert record.callback == "t_redeploy_removed:NAME" and record.current_state == "NAME"
    assert record.data == {"kind": "green"}
    assert record.kwargs["h"] == ["KIND+kind"]
    await talk.send("Bo")
    talk.assert_last("A tip?")
    await talk.send("2")
    talk.assert_last("kind=green, name=Bo")
    assert deploys.normal == []


async def test_a_conversation_at_a_removed_step_goes_to_the_declared_fallback(
    persistent_backend: Backend,
) -> None:
    deploys, sim, talk = await _tea_at_note(persistent_backend)
    await deploys.redeploy(sim, _tea_v2(fallback="KIND"))
    await talk.send("no sugar")
    talk.assert_last("Which tea?")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {} and "h" not in record.kwargs
    await talk.send("black")
    talk.assert_last("Your name?")


async def test_a_command_at_a_removed_step_moves_the_conversation_before_its_answer(
    persistent_backend: Backend,
) -> None:
    """``/help`` (handled by nobody) re-sends the current prompt: that of the fallback, which
    is stored at once, so the next message answers it."""
    deploys, sim, talk = await _tea_at_note(persistent_backend)
    await deploys.redeploy(sim, _tea_v2())
    await talk.send("/help")
    talk.assert_last("Your name?")
    await talk.send("Bo")
    talk.assert_last("A tip?")


async def test_back_over_a_removed_step_undoes_its_answer_with_the_one_before(
    persistent_backend: Backend,
) -> None:
    deploys, sim, talk = await _tea_at_note(persistent_backend)
    await deploys.redeploy(sim, _tea_v2(drop="NAME"))
    await talk.send("/back")  # from NOTE: to KIND (NAME is gone), undoing both answers
    talk.assert_last("Which tea?")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {} and "h" not in record.kwargs


async def test_an_inserted_step_leaves_the_current_prompt_and_its_buttons_working(
    persistent_backend: Backend,
) -> None:
    def version(inserted: bool) -> type[Wizard]:
        class Juice(Wizard, name="t_redeploy_inserted"):
            __qualname__ = "Juice"

            class State(Enum):
                FRUIT = auto()
                ICE = auto()
                NAME = auto()

            @step(State.FRUIT, prompt="Which fruit?", choices=["apple", "orange"])
            async def fruit(self, value: str) -> None:
                self.data["fruit"] = value

            if inserted:

                @step(State.ICE, prompt="Ice?", choices=["yes", "no"])
                async def ice(self, value: str) -> None:
                    self.data["ice"] = value

            @step(State.NAME, prompt="Your name?")
            async def name(self, value: str) -> Finish:
                return self.finish()

        return Juice

    deploys = Deploys(version(inserted=False))
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/order")
    talk.assert_last("Which fruit?", buttons=[["apple", "orange"]])

    await deploys.redeploy(sim, version(inserted=True))
    await talk.click("orange")  # a button sent by the previous deploy
    assert "This button is no longer active." not in talk.toasts
    talk.assert_last("Ice?", buttons=[["yes", "no"]])
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {"fruit": "orange"}


# --- a changed data schema ---------------------------------------------------------------------


async def test_data_of_an_older_schema_is_migrated_once_and_written_back(
    persistent_backend: Backend,
) -> None:
    migrations: list[tuple[dict[str, Any], int]] = []

    def version(schema: int) -> type[Wizard]:
        class Guest(Wizard, name="t_redeploy_schema"):
            __qualname__ = "Guest"
            schema_version = schema

            class State(Enum):
                NAME = auto()
                SEATS = auto()
                DONE = auto()

            @step(State.NAME, prompt="Full name?")
            async def name(self, value: str) -> None:
                if schema == 1:
                    self.data["name"] = value
                else:
                    first, _, last = value.partition(" ")
                    self.data["person"] = {"first": first, "last": last}

            @step(State.SEATS, prompt="Seats?", validate=v.integer(min=1))
            async def seats(self, value: int) -> None:
                self.data["seats"] = value

            @step(State.DONE, prompt="{seats} seats. Done?", choices=["yes"])
            async def done(self, value: str) -> Finish:
                return self.finish()

            @staticmethod
            def migrate(data: dict[str, Any], version: int) -> dict[str, Any]:
                migrations.append((dict(data), version))
                if "name" in data:
                    first, _, last = data.pop("name").partition(" ")
                    data["person"] = {"first": first, "last": last}
                return data

            async def on_finish(self) -> None:
                await self.answer(f"Welcome, {self.data['person']['first']}.")

        return Guest

    deploys = Deploys(version(schema=1))
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send("Ann Lee")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {"name": "Ann Lee"}
    assert "sv" not in record.kwargs  # schema 1 stores nothing more than before

    await deploys.redeploy(sim, version(schema=2))
    await talk.send("2")
    talk.assert_last("2 seats. Done?", buttons=[["yes"]])
    # the data, and the data from before each answer /back returns to
    assert migrations == [({}, 1), ({"name": "Ann Lee"}, 1)]
    record = await persistent_backend.record(talk)
    assert record is not None and record.kwargs["sv"] == 2
    assert record.data == {"person": {"first": "Ann", "last": "Lee"}, "seats": 2}
    await talk.send("/back")  # the history was migrated too: /back undoes in the new shape
    talk.assert_last("Seats?")
    await talk.send("/back")
    talk.assert_last("Full name?")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {}
    await talk.send("Bo Ek")
    await talk.send("1")
    await talk.click("yes")
    talk.assert_last("Welcome, Bo.")
    assert len(migrations) == 2  # written back with the first write: never again


async def test_data_of_a_newer_schema_is_left_for_the_newer_deploy(
    persistent_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """A rollback: the record is not misread, its updates go to the normal handlers, and it
    stays as it was."""
    deploys, _, talk = await _tea_at_note(persistent_backend)
    record = await persistent_backend.record(talk)
    assert record is not None
    await persistent_backend.storage.write(
        _record_key(talk), Patch(kwargs={**record.kwargs, "sv": 2})
    )
    before = await persistent_backend.record(talk)
    with caplog.at_level(logging.ERROR, logger="aiostep_dialogs"):
        await talk.send("no sugar")
    assert deploys.normal == ["no sugar"]
    assert any("schema_version" in r.getMessage() for r in caplog.records)
    after = await persistent_backend.record(talk)
    assert after is not None and before is not None
    assert (after.callback, after.data, after.kwargs) == (
        before.callback,
        before.data,
        before.kwargs,
    )


# --- a wizard that is gone ---------------------------------------------------------------------


async def test_a_conversation_of_a_wizard_this_deploy_does_not_define_is_removed(
    persistent_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    deploys, sim, talk = await _tea_at_note(persistent_backend)
    record = await persistent_backend.record(talk)
    assert record is not None
    # as a deploy that renamed the wizard (its name=) finds it
    await persistent_backend.storage.write(
        _record_key(talk),
        Patch(callback="t_redeploy_gone:NOTE", kwargs={**record.kwargs, "w": "t_redeploy_gone"}),
    )
    await sim.restart()
    with caplog.at_level(logging.ERROR):
        await talk.send("no sugar")
        await talk.send("hello")
    assert deploys.normal == ["no sugar", "hello"]
    assert await persistent_backend.record(talk) is None  # state and data too
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "t_redeploy_gone" in errors[0]


# --- class options ----------------------------------------------------------------------------


def test_drift_options_are_checked_at_class_definition() -> None:
    with pytest.raises(TypeError, match="renamed"):

        class BadRename(Wizard, name="t_redeploy_bad_rename"):
            class State(Enum):
                A = auto()

            renamed: ClassVar[dict[str, Enum]] = {"A": State.A}  # A still has a step

            @step(State.A, prompt="?")
            async def a(self, value: str) -> None: ...

    with pytest.raises(TypeError, match="fallback"):

        class BadFallback(Wizard, name="t_redeploy_bad_fallback"):
            class State(Enum):
                A = auto()
                B = auto()

            fallback = State.B  # no step

            @step(State.A, prompt="?")
            async def a(self, value: str) -> None: ...

    with pytest.raises(TypeError, match="schema_version"):

        class BadSchema(Wizard, name="t_redeploy_bad_schema"):
            schema_version = 0

            class State(Enum):
                A = auto()

            @step(State.A, prompt="?")
            async def a(self, value: str) -> None: ...
