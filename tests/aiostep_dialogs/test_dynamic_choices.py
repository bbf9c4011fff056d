"""Choices from a callable: asked when the prompt is shown (with handler data by name); a press
resolves against the values shown, which are stored with the conversation (values only), even
after the source changed or the process restarted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message
from forged_press import press

from aiostep_dialogs import ChoicesError, Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


class Menu:
    """A stand-in for a database: the products on sale now, by id."""

    def __init__(self) -> None:
        self.products: dict[int, str] = {}
        self.calls = 0

    async def on_sale(self) -> dict[int, str]:
        self.calls += 1
        return dict(self.products)


MENU = Menu()


@pytest.fixture(autouse=True)
def menu() -> Iterator[Menu]:
    MENU.products = {1: "Margherita", 2: "Diavola", 3: "Funghi"}
    MENU.calls = 0
    yield MENU


async def products(wizard: Wizard, menu: Menu) -> dict[int, str]:
    """The products on sale now: ``menu`` comes from the Dispatcher's data, by name."""
    return await menu.on_sale()


class Order(Wizard, name="t_dyn_order"):
    class State(Enum):
        PRODUCT = auto()
        SIZE = auto()

    @step(State.PRODUCT, prompt="Which pizza?", choices=products)
    async def product(self, value: int) -> None:
        self.data["product"] = value

    @step(State.SIZE, prompt="Size?", choices=lambda wizard: ["S", "L"])  # a sync callable
    async def size(self, value: str) -> None:
        self.data["size"] = value

    async def on_finish(self) -> None:
        await self.answer(f"product {self.data['product']} ({self.data['size']})")


def order(dp: Dispatcher, storage: object) -> None:
    dp["menu"] = MENU
    Order.setup(dp, entry=Command("order"), storage=storage)


async def test_choices_from_a_callable_are_shown_and_the_method_gets_the_value(
    backend: Backend,
) -> None:
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    talk.assert_last("Which pizza?", buttons=[["Margherita", "Diavola", "Funghi"]])
    assert MENU.calls == 1
    await talk.click("Diavola")
    talk.assert_last("Size?", buttons=[["S", "L"]])
    await talk.click("L")
    talk.assert_last("product 2 (L)")


async def test_the_record_holds_the_values_shown_not_the_labels(backend: Backend) -> None:
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    record = await backend.record(talk)
    assert record is not None and record.kwargs["c"] == [1, 2, 3]
    assert "Margherita" not in json.dumps(record.to_json())
    await talk.click("Funghi")
    record = await backend.record(talk)
    assert record is not None and record.kwargs["c"] == ["S", "L"]  # the next step's


async def test_a_press_resolves_against_what_was_shown_after_the_source_changed(
    backend: Backend,
) -> None:
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    MENU.products = {7: "Calzone", 2: "Diavola"}  # reordered and replaced meanwhile
    await talk.click("Funghi")
    talk.assert_last("Size?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"product": 3}


async def test_a_press_after_a_restart_resolves_against_what_was_shown(
    persistent_backend: Backend,
) -> None:
    backend = persistent_backend
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    prompt = talk.last_message
    assert prompt is not None
    MENU.products = {9: "Marinara"}
    await sim.restart()
    await talk.click("Margherita", message=prompt)
    await talk.click("S")
    talk.assert_last("product 1 (S)")


async def test_a_typed_label_of_a_shown_option_is_an_answer(backend: Backend) -> None:
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send(" diavola ")
    talk.assert_last("Size?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"product": 2}


async def test_a_typed_answer_that_is_not_shown_is_rejected_with_the_options(
    backend: Backend,
) -> None:
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send("Hawaii")
    assert talk.last is not None
    assert talk.last.startswith("Please choose one of: Margherita, Diavola, Funghi.")


async def test_a_prompt_sent_again_with_other_options_makes_the_old_buttons_stale(
    backend: Backend,
) -> None:
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    old = talk.last_message
    assert old is not None
    MENU.products = {4: "Quattro formaggi", 1: "Margherita"}
    await talk.send("/order")  # resumes: the prompt again, with the options now
    talk.assert_last("Which pizza?", buttons=[["Quattro formaggi", "Margherita"]])
    record = await backend.record(talk)
    assert record is not None and record.kwargs["c"] == [4, 1]

    await talk.click("Diavola", message=old)  # its index now means another product
    assert talk.toasts == [Order.texts.stale_button]
    await talk.click("Margherita")
    record = await backend.record(talk)
    assert record is not None and record.data == {"product": 1}


@pytest.mark.parametrize("code", ["3", "99", "-1", "t0", "p1", "d"])
async def test_forged_presses_on_choices_from_a_callable_change_nothing(
    backend: Backend, code: str
) -> None:
    sim = backend.simulator(order)
    talk = sim.chat()
    await talk.send("/order")
    prompt = talk.last_message
    assert prompt is not None
    genuine = prompt.inline_keyboard[0][0].callback_data
    assert genuine is not None
    before = await backend.record(talk)

    await press(talk, prompt, f"{genuine.rpartition(':')[0]}:{code}")

    assert talk.toasts == [Order.texts.stale_button]
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.kwargs, after.data) == (before.kwargs, before.data)
    await talk.click("Funghi", message=prompt)
    talk.assert_last("Size?")


class Broken(Wizard, name="t_dyn_broken"):
    class State(Enum):
        PICK = auto()

    @step(State.PICK, prompt="Pick", choices=lambda wizard: wizard.data["options"])
    async def pick(self, value: Any) -> None:
        pass

    async def on_start(self) -> None:
        assert isinstance(self.event, Message) and self.event.text is not None
        self.data["options"] = json.loads(self.event.text.partition(" ")[2])


def broken(dp: Dispatcher, storage: object) -> None:
    Broken.setup(dp, entry=Command("broken"), storage=storage)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"x" * 65: "Long"}, "is 65 characters", id="over-long-value"),
        pytest.param([[1, 2]], "is a list", id="non-scalar-value"),
        pytest.param([1.5], "is a float", id="float-value"),
        pytest.param([True], "is a bool", id="bool-value"),
        pytest.param([2**60], "too large", id="huge-int"),
        pytest.param(["a", "a"], "twice", id="duplicate"),
        pytest.param(list(range(120)), "per_page", id="too-many-buttons"),
        pytest.param("abc", "returned str", id="not-a-list"),
    ],
)
async def test_options_that_cannot_be_stored_raise_choices_error(
    backend: Backend, options: Any, match: str
) -> None:
    sim = backend.simulator(broken)
    talk = sim.chat()
    with pytest.raises(ChoicesError, match=match):
        await talk.send(f"/broken {json.dumps(options)}")
    assert await backend.record(talk) is None  # nothing was stored
    assert talk.messages == []


def test_static_values_are_checked_at_definition() -> None:
    with pytest.raises(ChoicesError, match="is 65 characters"):
        step(Order.State.SIZE, prompt="?", choices={"y" * 65: "Y"}, per_page=5)


class Slots(Wizard, name="t_dyn_slots"):
    class State(Enum):
        SLOT = auto()

    def free_slots(self, event_from_user: Any) -> list[str]:
        """Defined in the class body: reads like a method, and gets handler data by name."""
        return [f"{hour}:00 for {event_from_user.first_name}" for hour in (9, 10)]

    @step(State.SLOT, prompt="When?", choices=free_slots)
    async def slot(self, value: str) -> None:
        self.data["slot"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Booked {self.data['slot']}")


async def test_a_function_in_the_class_body_gets_the_wizard_and_handler_data(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Slots.setup(dp, entry=Command("book"), storage=storage)
    )
    talk = sim.chat(sim.user(first_name="Ann"))
    await talk.send("/book")
    talk.assert_last("When?", buttons=[["9:00 for Ann", "10:00 for Ann"]])
    await talk.click("10:00 for Ann")
    talk.assert_last("Booked 10:00 for Ann")
