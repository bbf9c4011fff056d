"""Long lists in pages: previous/next buttons edit the keyboard in place; a page turn is not an
answer and writes one step-only update; ``columns=`` lays the options out."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum, auto
from typing import TYPE_CHECKING

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.methods import EditMessageReplyMarkup, SendMessage
from forged_press import press

from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend

STREETS = {f"s{i}": f"Street {i}" for i in range(1, 8)}  # 7 options: pages of 3, 3 and 1
ADDRESSES: list[str] = []


@pytest.fixture(autouse=True)
def addresses() -> Iterator[None]:
    ADDRESSES[:] = [f"Lane {i}" for i in range(1, 6)]
    yield


class Delivery(Wizard, name="t_paged_delivery"):
    class State(Enum):
        STREET = auto()
        ADDRESS = auto()

    @step(State.STREET, prompt="Street?", choices=STREETS, per_page=3)
    async def street(self, value: str) -> None:
        self.data["street"] = value

    @step(
        State.ADDRESS,
        prompt="Saved address?",
        choices=lambda wizard: list(ADDRESSES),
        per_page=4,
        columns=2,
    )
    async def address(self, value: str) -> None:
        self.data["address"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['street']} / {self.data['address']}")


def delivery(dp: Dispatcher, storage: object) -> None:
    Delivery.setup(dp, entry=Command("deliver"), storage=storage)


NEXT, PREVIOUS = Delivery.texts.next_page, Delivery.texts.previous_page


async def test_a_long_list_is_paged_with_previous_and_next_buttons(backend: Backend) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/deliver")
    prompt = talk.last_message
    assert prompt is not None
    assert prompt.buttons == [["Street 1", "Street 2", "Street 3"], [NEXT]]

    await talk.click(NEXT)
    assert prompt.buttons == [["Street 4", "Street 5", "Street 6"], [PREVIOUS, NEXT]]
    await talk.click(NEXT)
    assert prompt.buttons == [["Street 7"], [PREVIOUS]]
    await talk.click(PREVIOUS)
    assert prompt.buttons[0] == ["Street 4", "Street 5", "Street 6"]
    assert len(sim.session.calls_of(SendMessage)) == 1  # every page edited in place
    assert len(sim.session.calls_of(EditMessageReplyMarkup)) == 3

    await talk.click("Street 5")
    talk.assert_last("Saved address?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"street": "s5"}


async def test_page_turns_are_not_answers_and_write_one_step_only_update(
    backend: Backend,
) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/deliver")
    before = await backend.record(talk)
    assert before is not None
    generation = backend.storage.generation

    await talk.click(NEXT)

    assert backend.storage.generation == generation + 1
    after = await backend.record(talk)
    assert after is not None
    assert (after.current_state, after.data) == (before.current_state, before.data)
    assert after.kwargs == before.kwargs  # static options: not even a new nonce
    assert sim.session.unanswered_callbacks() == []


async def test_columns_lay_the_options_out_and_pages_come_from_the_callable(
    backend: Backend,
) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/deliver")
    await talk.click("Street 1")
    prompt = talk.last_message
    assert prompt is not None
    assert prompt.buttons == [["Lane 1", "Lane 2"], ["Lane 3", "Lane 4"], [NEXT]]
    await talk.click(NEXT)
    assert prompt.buttons == [["Lane 5"], [PREVIOUS]]
    await talk.click("Lane 5")
    talk.assert_last("s1 / Lane 5")


async def test_a_page_turn_shows_the_options_now_and_stales_the_keyboard_it_replaced(
    backend: Backend,
) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/deliver")
    await talk.click("Street 2")
    prompt = talk.last_message
    assert prompt is not None
    shown = prompt.message  # the keyboard as it was before the page turn
    ADDRESSES[:] = ["Quay 1", "Quay 2", "Quay 3", "Quay 4", "Quay 5", "Quay 6"]

    await talk.click(NEXT)

    assert prompt.buttons == [["Quay 5", "Quay 6"], [PREVIOUS]]
    record = await backend.record(talk)
    assert record is not None and record.kwargs["c"] == ADDRESSES
    # a press on the keyboard it replaced (a fast double tap) would index the new list
    assert shown.reply_markup is not None
    replaced = shown.reply_markup.inline_keyboard[0][0].callback_data
    assert replaced is not None
    await press(talk, prompt, replaced)
    assert talk.toasts == [Delivery.texts.stale_button]
    await talk.click("Quay 6")
    talk.assert_last("s2 / Quay 6")


async def test_a_paged_press_after_a_restart_resolves_against_what_was_shown(
    persistent_backend: Backend,
) -> None:
    backend = persistent_backend
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/deliver")
    await talk.click("Street 3")
    await talk.click(NEXT)
    prompt = talk.last_message
    assert prompt is not None
    ADDRESSES[:] = ["Elsewhere"]
    await sim.restart()
    await talk.click("Lane 5", message=prompt)
    talk.assert_last("s3 / Lane 5")


@pytest.mark.parametrize("code", ["p3", "p99", "p-1", "p", "p1x", "p٣"])
async def test_forged_page_numbers_change_nothing(backend: Backend, code: str) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/deliver")
    prompt = talk.last_message
    assert prompt is not None
    genuine = prompt.inline_keyboard[0][0].callback_data
    assert genuine is not None
    before = await backend.record(talk)

    await press(talk, prompt, f"{genuine.rpartition(':')[0]}:{code}")

    assert talk.toasts == [Delivery.texts.stale_button]
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.kwargs, after.data) == (before.kwargs, before.data)
    assert prompt.buttons[0] == ["Street 1", "Street 2", "Street 3"]


def test_per_page_and_columns_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_page must be an int from 1"):
        step(Delivery.State.STREET, prompt="?", choices=STREETS, per_page=0)
    with pytest.raises(ValueError, match="columns must be an int from 1"):
        step(Delivery.State.STREET, prompt="?", choices=STREETS, columns=-2)


async def test_a_typed_answer_matches_any_page_and_a_miss_asks_for_the_buttons(
    backend: Backend,
) -> None:
    sim = backend.simulator(delivery)
    talk = sim.chat()
    await talk.send("/deliver")
    await talk.send("nowhere")
    assert talk.last is not None and talk.last.startswith(Delivery.texts.use_buttons)
    await talk.send("street 7")  # on the last page, typed
    talk.assert_last("Saved address?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"street": "s7"}
