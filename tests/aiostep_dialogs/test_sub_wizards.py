"""Wizards that call wizards (``self.call``), hand back a result, and jump to another wizard
(``self.goto(Other)``); the callers wait in the conversation's one record, across restarts."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from aiogram import Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.methods import SendMessage
from aiogram.types import ErrorEvent

from aiostep.keys import ConversationKey, storage_key
from aiostep.storage.base import Patch
from aiostep.testing import BotSimulator
from aiostep_dialogs import Finish, Texts, Wizard, step, v
from aiostep_dialogs.calls import MAX_CALL_DEPTH, CallDepthError, WizardNotSetUpError
from aiostep_dialogs.flowchart import parse_flowchart

if TYPE_CHECKING:
    from conftest import Backend


class Address(Wizard, name="t_sub_address"):
    texts = Texts(cancelled="Address dropped.")

    class State(Enum):
        STREET = auto()
        CITY = auto()

    @step(State.STREET, prompt="Street?")
    async def street(self, value: str) -> None:
        self.data["street"] = value

    @step(State.CITY, prompt="City?")
    async def city(self, value: str) -> Finish:
        return self.finish(f"{self.data['street']}, {value}")

    async def on_finish(self) -> None:
        await self.answer("Address saved.")


class Booking(Wizard, name="t_sub_booking"):
    texts = Texts(cancelled="Booking cancelled.")

    class State(Enum):
        NAME = auto()
        WHERE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="Your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.WHERE, prompt="Deliver or pick up?", choices=["deliver", "pickup"])
    async def where(self, value: str) -> Any:
        if value == "deliver":
            return self.call(Address, then=self.State.CONFIRM, key="address")
        self.data["address"] = "the shop"
        return self.State.CONFIRM

    @step(State.CONFIRM, prompt="{name}, to {address}?", choices=["yes"])
    async def confirm(self, value: str) -> Finish:
        return self.finish()

    async def on_finish(self) -> None:
        await self.answer(f"Booked for {self.data['name']} at {self.data['address']}.")


class Shop(Wizard, name="t_sub_shop"):
    """Calls Address with ``cancel="child"`` and looks at the result in ``on_return``."""

    class State(Enum):
        ITEM = auto()
        SHIP = auto()
        GIFT = auto()
        DONE = auto()

    @step(State.ITEM, prompt="Item?")
    async def item(self, value: str) -> Any:
        self.data["item"] = value
        return self.call(Address, cancel="child")  # the result under "t_sub_address"

    @step(State.SHIP, prompt="Ship to {t_sub_address}?", choices=["ok"])
    async def ship(self, value: str) -> None:
        pass

    @step(State.GIFT, prompt="Gift wrap for the palace?", choices=["ok"])
    async def gift(self, value: str) -> None:
        pass

    @step(State.DONE, prompt="Done?", choices=["ok"])
    async def done(self, value: str) -> Finish:
        return self.finish()

    async def on_return(self, child: Wizard, result: Any) -> Any:
        await self.answer(f"{self.wizard_id} got {result!r} from {child.wizard_id}")
        return self.State.GIFT if "Palace" in str(result) else None

    async def on_finish(self) -> None:
        await self.answer(f"Shipped {self.data['item']}.")


def booking(dp: Dispatcher, storage: object) -> None:
    Booking.setup(dp, entry=Command("book"), storage=storage)
    Address.setup(dp, entry=Command("address"))
    Shop.setup(dp, entry=Command("shop"))


async def _at_street(sim: BotSimulator) -> Any:
    talk = sim.chat()
    await talk.send("/book")
    await talk.send("Ann")
    await talk.click("deliver")
    talk.assert_last("Street?")
    return talk


# --- a call and its return -----------------------------------------------------------------------


async def test_called_wizard_runs_its_own_steps_and_its_result_goes_to_the_callers_data(
    backend: Backend,
) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("Main St")
    talk.assert_last("City?")
    await talk.send("Paris")
    texts = [m.text for m in talk.messages][-3:]
    assert texts == ["City?", "Address saved.", "Ann, to Main St, Paris?"]
    record = await backend.record(talk)
    assert record is not None
    assert record.data == {"name": "Ann", "address": "Main St, Paris"}
    assert "st" not in record.kwargs  # back in the caller: no callers wait
    await talk.click("yes")
    talk.assert_last("Booked for Ann at Main St, Paris.")
    assert await backend.record(talk) is None


async def test_callers_wait_in_the_one_record_and_a_record_without_a_call_has_no_stack(
    backend: Backend,
) -> None:
    sim = backend.simulator(booking)
    talk = sim.chat()
    await talk.send("/book")
    await talk.send("Ann")
    before_call = await backend.record(talk)
    assert before_call is not None
    assert set(before_call.kwargs) == {"v", "fp", "h", "n"}  # no "st": no caller waits
    await talk.click("deliver")
    await talk.send("Main St")
    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_address:CITY"
    assert record.data == {"street": "Main St"}  # the child's own data
    [frame] = record.kwargs["st"]
    assert frame["w"] == "t_sub_booking"
    assert frame["s"] == "WHERE"
    assert frame["t"] == "CONFIRM"
    assert frame["k"] == "address"
    assert frame["d"] == {"name": "Ann"}
    assert [str(h).partition("+")[0] for h in frame["h"]] == ["NAME", "WHERE"]


async def test_back_on_the_called_wizards_first_step_asks_the_calling_step_again(
    backend: Backend,
) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("/back")
    talk.assert_last("Deliver or pick up?", buttons=[["deliver", "pickup"]])
    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_booking:WHERE"
    assert record.data == {"name": "Ann"}
    assert "st" not in record.kwargs
    await talk.click("pickup")
    talk.assert_last("Ann, to the shop?")


async def test_back_inside_the_called_wizard_stays_in_it(backend: Backend) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("Main St")
    await talk.send("/back")
    talk.assert_last("Street?")
    await talk.send("/back")
    talk.assert_last("Deliver or pick up?", buttons=[["deliver", "pickup"]])


async def test_back_after_the_return_undoes_the_call_and_its_result(backend: Backend) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("Main St")
    await talk.send("Paris")
    await talk.send("/back")
    talk.assert_last("Deliver or pick up?", buttons=[["deliver", "pickup"]])
    record = await backend.record(talk)
    assert record is not None
    assert record.data == {"name": "Ann"}


async def test_cancel_in_the_called_wizard_ends_both_and_says_so_once(backend: Backend) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("/cancel")
    talk.assert_last("Booking cancelled.")
    assert "Address dropped." not in [m.text for m in talk.messages]
    assert await backend.record(talk) is None


async def test_cancel_child_returns_to_the_calling_step(backend: Backend) -> None:
    sim = backend.simulator(booking)
    talk = sim.chat()
    await talk.send("/shop")
    await talk.send("lamp")
    talk.assert_last("Street?")
    await talk.send("/cancel")
    assert [m.text for m in talk.messages][-2:] == ["Address dropped.", "Item?"]
    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_shop:ITEM"
    assert record.data == {}
    assert "st" not in record.kwargs


async def test_on_return_gets_the_child_and_result_and_may_choose_the_next_step(
    backend: Backend,
) -> None:
    sim = backend.simulator(booking)
    talk = sim.chat()
    await talk.send("/shop")
    await talk.send("lamp")
    await talk.send("Main St")
    await talk.send("Paris")
    assert [m.text for m in talk.messages][-2:] == [
        "t_sub_shop got 'Main St, Paris' from t_sub_address",
        "Ship to Main St, Paris?",
    ]  # the result under the called wizard's id, then the step after the calling one
    await talk.send("/shop")  # resume: re-sent
    await talk.click("ok")
    await talk.send("/back")
    await talk.send("/back")
    talk.assert_last("Item?")
    await talk.send("crown")
    await talk.send("1 Palace Rd")
    await talk.send("London")
    talk.assert_last("Gift wrap for the palace?")  # on_return chose the step


async def test_the_called_wizards_own_entry_command_resumes_it(backend: Backend) -> None:
    """Its entry command while it runs as a called wizard resumes it; the caller still waits."""
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("/address")
    talk.assert_last("Street?")
    await talk.send("Main St")
    await talk.send("Paris")
    talk.assert_last("Ann, to Main St, Paris?")


async def test_another_command_in_the_called_wizard_re_sends_its_prompt(backend: Backend) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("/weather")  # no handler takes it
    talk.assert_last("Street?")
    await talk.send("Main St")
    talk.assert_last("City?")


class Pin(Wizard, name="t_sub_pin"):
    max_attempts = 2

    class State(Enum):
        PIN = auto()

    @step(State.PIN, prompt="PIN?", validate=v.integer(min=0, max=9999))
    async def pin(self, value: int) -> Finish:
        return self.finish(value)


class Vault(Wizard, name="t_sub_vault"):
    class State(Enum):
        OPEN = auto()

    @step(State.OPEN, prompt="Open the vault?", choices=["yes"])
    async def open(self, value: str) -> Any:
        return self.call(Pin)

    async def on_cancel(self) -> None:
        await self.answer("vault cancelled")  # not a give-up: never said here


async def test_giving_up_in_the_called_wizard_ends_the_whole_conversation(
    backend: Backend,
) -> None:
    def setup(dp: Dispatcher, storage: object) -> None:
        Vault.setup(dp, entry=Command("vault"), storage=storage)
        Pin.setup(dp)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/vault")
    await talk.click("yes")
    await talk.send("abc")
    await talk.send("def")
    talk.assert_last(Pin.texts.gave_up)
    assert "vault cancelled" not in [m.text for m in talk.messages]
    assert await backend.record(talk) is None


async def test_the_callers_entry_command_resumes_the_called_wizard(backend: Backend) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("/book")  # Booking runs here (it waits for Address): it goes on
    talk.assert_last("Street?")
    assert "Booking cancelled." not in [m.text for m in talk.messages]
    await talk.send("Main St")
    await talk.send("Paris")
    talk.assert_last("Ann, to Main St, Paris?")


class Clock(Wizard, name="t_sub_clock"):
    class State(Enum):
        WHEN = auto()

    @step(State.WHEN, prompt="When?")
    async def when(self, value: str) -> Finish:
        return self.finish(object() if value == "object" else value)

    async def on_finish(self) -> None:
        await self.answer("clock done")


class Planner(Wizard, name="t_sub_planner"):
    class State(Enum):
        GO = auto()
        END = auto()

    @step(State.GO, prompt="Go?")
    async def go(self, value: str) -> Any:
        return self.call(Clock, key="when")

    @step(State.END, prompt="At {when}?")
    async def end(self, value: str) -> None:
        pass


async def test_a_result_that_is_not_json_is_refused_before_anything_is_said(
    backend: Backend,
) -> None:
    def setup(dp: Dispatcher, storage: object) -> None:
        Planner.setup(dp, entry=Command("plan"), storage=storage)
        Clock.setup(dp)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/plan")
    await talk.send("go")
    with pytest.raises(TypeError, match=r"must be a JSON value"):
        await talk.send("object")
    assert "clock done" not in [m.text for m in talk.messages]
    await talk.send("noon")  # the step was kept: the answer is taken again
    talk.assert_last("At noon?")


async def test_starting_the_caller_anew_over_a_called_wizard_cancels_both(
    backend: Backend,
) -> None:
    sim = backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("/shop")
    assert [m.text for m in talk.messages][-2:] == ["Booking cancelled.", "Item?"]
    record = await backend.record(talk)
    assert record is not None and "st" not in record.kwargs


# --- restarts at every level ---------------------------------------------------------------------


async def test_a_restart_in_the_middle_of_the_called_wizard_keeps_the_caller_waiting(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("Main St")
    await sim.restart()
    await talk.send("Paris")
    talk.assert_last("Ann, to Main St, Paris?")
    await sim.restart()
    await talk.click("yes")
    talk.assert_last("Booked for Ann at Main St, Paris.")


async def test_a_restart_at_the_called_wizards_first_step_still_goes_back_to_the_caller(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(booking)
    talk = await _at_street(sim)
    await sim.restart()
    await talk.send("/back")
    talk.assert_last("Deliver or pick up?", buttons=[["deliver", "pickup"]])
    await sim.restart()
    await talk.click("deliver")
    talk.assert_last("Street?")


async def test_a_restart_after_the_return_goes_on_in_the_caller(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(booking)
    talk = await _at_street(sim)
    await talk.send("Main St")
    await talk.send("Paris")
    await sim.restart()
    await talk.send("/back")
    talk.assert_last("Deliver or pick up?", buttons=[["deliver", "pickup"]])
    await talk.click("pickup")
    await talk.click("yes")
    talk.assert_last("Booked for Ann at the shop.")


async def test_a_restart_in_a_nested_call_returns_level_by_level(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(nest)
    talk = sim.chat()
    await talk.send("/nest")
    await talk.send("deeper")
    await talk.send("deeper")
    talk.assert_last("Level 2?")
    await sim.restart()
    await talk.send("stop")
    talk.assert_last("Level 1?")  # level 2 returned to level 1, whose step is asked next
    assert [m.text for m in talk.messages][-2] == "level 2 done"
    await sim.restart()
    await talk.send("stop")
    assert [m.text for m in talk.messages][-2:] == ["level 1 done", "Level 0?"]
    await talk.send("stop")
    talk.assert_last("level 0 done")
    assert await persistent_backend.record(talk) is None


# --- depth, setup, scope -------------------------------------------------------------------------


class Nest(Wizard, name="t_sub_nest"):
    """Calls itself one level deeper on "deeper"; "stop" finishes the level."""

    class State(Enum):
        LEVEL = auto()

    @step(State.LEVEL, prompt="Level {n}?")
    async def level(self, value: str) -> Any:
        if value == "deeper":
            return self.call(
                Nest, then=self.State.LEVEL, key="inner", data={"n": self.data["n"] + 1}
            )
        return self.finish(self.data["n"])

    async def on_start(self) -> None:
        self.data.setdefault("n", 0)

    async def on_finish(self) -> None:
        await self.answer(f"level {self.data['n']} done")


def nest(dp: Dispatcher, storage: object) -> None:
    Nest.setup(dp, entry=Command("nest"), storage=storage)


async def test_a_call_past_the_depth_limit_fails_clearly_and_keeps_the_conversation(
    backend: Backend,
) -> None:
    sim = backend.simulator(nest)
    talk = sim.chat()
    await talk.send("/nest")
    for _ in range(MAX_CALL_DEPTH):
        await talk.send("deeper")
    talk.assert_last(f"Level {MAX_CALL_DEPTH}?")
    with pytest.raises(CallDepthError, match=r"MAX_CALL_DEPTH=4"):
        await talk.send("deeper")
    record = await backend.record(talk)
    assert record is not None
    assert len(record.kwargs["st"]) == MAX_CALL_DEPTH
    assert record.data == {"n": MAX_CALL_DEPTH}
    await talk.send("stop")  # the conversation goes on where it was
    talk.assert_last(f"Level {MAX_CALL_DEPTH - 1}?")


async def test_calling_a_wizard_that_is_not_set_up_names_the_fix(backend: Backend) -> None:
    def only_booking(dp: Dispatcher, storage: object) -> None:
        Booking.setup(dp, entry=Command("book"), storage=storage)

    sim = backend.simulator(only_booking)
    talk = sim.chat()
    await talk.send("/book")
    await talk.send("Ann")
    with pytest.raises(WizardNotSetUpError, match=r"call Address\.setup\(dp\)"):
        await talk.click("deliver")
    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_booking:WHERE"  # put back as it was
    assert record.data == {"name": "Ann"}


class Group(Wizard, name="t_sub_group"):
    scope = "chat"

    class State(Enum):
        ONLY = auto()

    @step(State.ONLY, prompt="Group?")
    async def only(self, value: str) -> None:
        pass


def test_a_call_with_another_scope_a_bad_then_cancel_or_data_is_refused() -> None:
    from aiogram import Bot

    from aiostep import MemoryStateStorage

    booking(Dispatcher(), MemoryStateStorage())  # set up, outside an update
    caller = Booking(key=ConversationKey(1, 1, None, 1), bot=Bot.__new__(Bot))
    with pytest.raises(ValueError, match=r"same scope"):
        caller.call(Group)
    with pytest.raises(ValueError, match=r"then="):
        caller.call(Address, then=Address.State.CITY)
    with pytest.raises(ValueError, match=r"cancel must be"):
        caller.call(Address, cancel="all")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"JSON values"):
        caller.call(Address, data={"when": object()})


# --- goto another wizard -------------------------------------------------------------------------


class Pizza(Wizard, name="t_sub_pizza"):
    class State(Enum):
        SIZE = auto()

    @step(State.SIZE, prompt="Pizza size? (or: taxi)")
    async def size(self, value: str) -> Any:
        if value == "taxi":
            return self.goto(Taxi)
        self.data["size"] = value
        return None

    async def on_leave(self, to: type[Wizard]) -> None:
        await self.answer(f"Leaving pizza for {to.__name__}.")

    async def on_finish(self) -> None:
        await self.answer("pizza finished")


class Taxi(Wizard, name="t_sub_taxi"):
    class State(Enum):
        WHERE = auto()

    @step(State.WHERE, prompt="Taxi to where?")
    async def where(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"taxi to {self.result}")


def pizza_taxi(dp: Dispatcher, storage: object) -> None:
    Pizza.setup(dp, entry=Command("pizza"), storage=storage)
    Taxi.setup(dp)


async def test_goto_another_wizard_ends_this_one_with_on_leave_and_starts_the_other(
    backend: Backend,
) -> None:
    sim = backend.simulator(pizza_taxi)
    talk = sim.chat()
    await talk.send("/pizza")
    await talk.send("taxi")
    assert [m.text for m in talk.messages][-2:] == ["Leaving pizza for Taxi.", "Taxi to where?"]
    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_taxi:WHERE"
    assert record.data == {}
    assert "st" not in record.kwargs
    await talk.send("airport")
    talk.assert_last("taxi to airport")
    assert "pizza finished" not in [m.text for m in talk.messages]
    assert await backend.record(talk) is None


async def test_goto_from_a_called_wizard_returns_to_its_caller(backend: Backend) -> None:
    class Errand(Wizard, name="t_sub_errand"):
        class State(Enum):
            WHAT = auto()
            THANKS = auto()

        @step(State.WHAT, prompt="Errand?")
        async def what(self, value: str) -> Any:
            return self.call(Pizza, key="ride")

        @step(State.THANKS, prompt="Got {ride}. Thanks?", choices=["bye"])
        async def thanks(self, value: str) -> None:
            pass

    def setup(dp: Dispatcher, storage: object) -> None:
        Errand.setup(dp, entry=Command("errand"), storage=storage)
        Pizza.setup(dp)
        Taxi.setup(dp)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/errand")
    await talk.send("go")
    await talk.send("taxi")
    talk.assert_last("Taxi to where?")
    await talk.send("station")
    talk.assert_last("Got station. Thanks?")


# --- the flow diagram ----------------------------------------------------------------------------


def test_graph_draws_the_call_as_a_subroutine_with_an_edge_to_then() -> None:
    lines = [line.strip() for line in Booking.to_mermaid().splitlines()]
    assert 'call_t_sub_address[["Address<br/><i>sub-wizard</i>"]]' in lines
    assert "WHERE -->|call| call_t_sub_address" in lines
    assert "call_t_sub_address -->|returns| CONFIRM" in lines
    assert "WHERE -.->|branch| CONFIRM" in lines
    assert not any(line.startswith("WHERE --> NAME") for line in lines)
    chart = parse_flowchart(Booking.to_mermaid())
    node = next(n for n in chart.nodes if n.id == "call_t_sub_address")
    assert (node.title, node.shape) == ("Address", "call")


def test_graph_of_a_call_without_then_returns_to_the_next_step_and_goto_has_no_return() -> None:
    lines = [line.strip() for line in Shop.to_mermaid().splitlines()]
    assert "call_t_sub_address -->|returns| SHIP" in lines
    assert "ITEM --> SHIP" not in lines  # ITEM always calls
    pizza = [line.strip() for line in Pizza.to_mermaid().splitlines()]
    assert 'goto_t_sub_taxi[["Taxi<br/><i>another wizard</i>"]]' in pizza
    assert "SIZE -->|goto| goto_t_sub_taxi" in pizza
    assert not any(line.startswith("goto_t_sub_taxi -->") for line in pizza)
    assert "SIZE --> finish" in pizza


# --- redeploys under a waiting caller -------------------------------------------------------------


def _trip_v1() -> type[Wizard]:
    class Trip(Wizard, name="t_sub_drift"):
        __qualname__ = "Trip"

        class State(Enum):
            WHO = auto()
            WHERE = auto()
            CONFIRM = auto()

        @step(State.WHO, prompt="Who?")
        async def who(self, value: str) -> None:
            self.data["who"] = value

        @step(State.WHERE, prompt="Where to? (any answer)")
        async def where(self, value: str) -> Any:
            self.data["mode"] = value
            return self.call(Address, then=self.State.CONFIRM, key="to")

        @step(State.CONFIRM, prompt="{who} to {to}?", choices=["yes"])
        async def confirm(self, value: str) -> Finish:
            return self.finish()

    return Trip


def _trip_v2() -> type[Wizard]:
    class Trip(Wizard, name="t_sub_drift"):
        """Renamed WHERE and CONFIRM, and stores the name in upper case (schema 2)."""

        __qualname__ = "Trip"
        schema_version = 2

        class State(Enum):
            WHO = auto()
            DESTINATION = auto()
            CHECK = auto()

        renamed: ClassVar[dict[str, Enum]] = {"WHERE": State.DESTINATION, "CONFIRM": State.CHECK}

        @step(State.WHO, prompt="Who?")
        async def who(self, value: str) -> None:
            self.data["who"] = value.upper()

        @step(State.DESTINATION, prompt="Destination? (any answer)")
        async def destination(self, value: str) -> Any:
            self.data["mode"] = value
            return self.call(Address, then=self.State.CHECK, key="to")

        @step(State.CHECK, prompt="{who} to {to}, right?", choices=["yes"])
        async def check(self, value: str) -> Finish:
            return self.finish()

        @classmethod
        def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
            return {**data, "who": str(data.get("who", "")).upper()}

    return Trip


class _Deploys:
    def __init__(self) -> None:
        self.current = _trip_v1()

    def setup(self, dp: Dispatcher, storage: object) -> None:
        self.current.setup(dp, entry=Command("trip"), storage=storage)
        Address.setup(dp)


async def test_a_caller_renamed_and_migrated_by_a_redeploy_gets_the_result_at_its_new_then(
    persistent_backend: Backend,
) -> None:
    deploys = _Deploys()
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("Ann")
    await talk.send("out")
    talk.assert_last("Street?")
    deploys.current = _trip_v2()
    await sim.restart()
    await talk.send("Main St")
    await talk.send("Paris")
    talk.assert_last("ANN to Main St, Paris, right?")
    record = await persistent_backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_drift:CHECK"
    assert record.kwargs["sv"] == 2
    await talk.send("/back")  # the renamed calling step, with its answer and the result undone
    talk.assert_last("Destination? (any answer)")
    record = await persistent_backend.record(talk)
    assert record is not None and record.data == {"who": "ANN"}


async def test_back_to_a_caller_whose_calling_state_was_renamed_asks_the_new_step(
    persistent_backend: Backend,
) -> None:
    deploys = _Deploys()
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("Ann")
    await talk.send("out")
    deploys.current = _trip_v2()
    await sim.restart()
    await talk.send("/back")
    talk.assert_last("Destination? (any answer)")
    record = await persistent_backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_drift:DESTINATION"
    assert record.data == {"who": "ANN"}  # the answer that made the call is undone
    assert "st" not in record.kwargs
    await talk.send("/back")
    talk.assert_last("Who?")


async def test_a_caller_stored_by_a_newer_deploy_is_not_misread(
    persistent_backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """A frame of a record version this code does not read: the called wizard's result has
    nowhere to go, so the conversation ends (logged) rather than guessing the caller's data."""
    deploys = _Deploys()
    sim = persistent_backend.simulator(deploys.setup)
    talk = sim.chat()
    await talk.send("/trip")
    await talk.send("Ann")
    await talk.send("out")
    record = await persistent_backend.record(talk)
    assert record is not None
    key = storage_key(ConversationKey(talk.chat.id, talk.user.id, None, sim.bot.id))
    frames = [{**record.kwargs["st"][0], "v": 99}]
    await persistent_backend.storage.write(key, Patch(kwargs={**record.kwargs, "st": frames}))
    await sim.restart()
    await talk.send("Main St")
    await talk.send("Paris")
    talk.assert_last("Address saved.")
    assert "cannot be restored" in caplog.text
    assert await persistent_backend.record(talk) is None


def test_a_call_whose_then_has_no_step_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match=r"State\.LATER, which has no @step"):

        class Broken(Wizard, name="t_sub_broken"):
            class State(Enum):
                NOW = auto()
                LATER = auto()

            @step(State.NOW, prompt="Now?")
            async def now(self, value: str) -> Any:
                return self.call(Address, then=self.State.LATER)


# --- a prompt that cannot be sent -----------------------------------------------------------------


async def test_a_called_wizards_prompt_that_fails_leaves_the_caller_at_the_calling_step(
    backend: Backend,
) -> None:
    caught: list[str] = []

    def setup(dp: Dispatcher, storage: object) -> None:
        booking(dp, storage)

        @dp.errors()
        async def on_error(event: ErrorEvent) -> None:
            caught.append(type(event.exception).__name__)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/book")
    await talk.send("Ann")

    def refuse(method: SendMessage) -> Any:
        if method.text in ("Street?", "Ann, to Main St, Paris?"):
            raise TelegramBadRequest(method, "Bad Request: chat not found")
        return sim.session._send(sim.bot, method)

    sim.session.respond("sendMessage", refuse)
    await talk.click("deliver")
    assert caught == ["TelegramBadRequest"]
    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_booking:WHERE"  # the question the user saw
    assert record.data == {"name": "Ann"}
    assert "st" not in record.kwargs

    sim.session.respond("sendMessage", None)
    await talk.send("deliver")  # the pressed prompt lost its buttons: a typed label counts
    await talk.send("Main St")
    sim.session.respond("sendMessage", refuse)
    await talk.send("Paris")  # the return: the caller's next prompt fails
    assert caught == ["TelegramBadRequest", "TelegramBadRequest"]
    record = await backend.record(talk)
    assert record is not None
    assert record.callback == "t_sub_booking:WHERE"  # asked again: the call can be made anew
    assert record.data == {"name": "Ann"}


# --- cost on Redis --------------------------------------------------------------------------------


async def test_a_call_and_a_return_each_cost_a_claim_and_a_write_on_redis(redis_url: str) -> None:
    """The callers travel in the record the step writes anyway: no extra round trip."""
    from aiostep.storage.redis import RedisStateStorage
    from tests.aiostep_dialogs.test_wizard_redis_cost import CommandLog

    storage = RedisStateStorage(redis_url)
    log = CommandLog(redis_url)

    def build() -> Dispatcher:
        dp = Dispatcher()
        booking(dp, storage)
        return dp

    sim = BotSimulator(build)
    try:
        talk = sim.chat()
        await talk.send("/book")
        await talk.send("Ann")
        with log.watch() as at_call:
            await talk.send("deliver")
        talk.assert_last("Street?")
        await talk.send("Main St")
        with log.watch() as at_return:
            await talk.send("Paris")
        talk.assert_last("Ann, to Main St, Paris?")
        assert at_call == ["EVALSHA", "EVALSHA"]  # claim the step, write the child's first
        assert at_return == ["EVALSHA", "EVALSHA"]  # claim the step, write the caller's next
    finally:
        await sim.aclose()
        await storage.close()
        log.close()
