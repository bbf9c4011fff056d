"""Multi-select steps: a press toggles a checkmark in place, Done submits the list of values;
min/max are enforced with a toast; toggles are not answers and write one step-only update."""

from __future__ import annotations

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

TOPPINGS = {"ham": "Ham", "olives": "Olives", "mushrooms": "Mushrooms", "chili": "Chili"}


class Pizza(Wizard, name="t_multi_pizza"):
    """Toppings (one to three), then a name."""

    class State(Enum):
        TOPPINGS = auto()
        NAME = auto()

    @step(State.TOPPINGS, prompt="Toppings?", choices=TOPPINGS, multi=True, min=1, max=3)
    async def toppings(self, value: list[str]) -> None:
        self.data["toppings"] = value

    @step(State.NAME, prompt="Name for the order?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['name']}: {', '.join(self.data['toppings'])}")


def pizza(dp: Dispatcher, storage: object) -> None:
    Pizza.setup(dp, entry=Command("pizza"), storage=storage)


MARK = Pizza.texts.selected_mark


async def test_toggling_marks_options_in_place_and_done_submits_the_list(
    backend: Backend,
) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    prompt = talk.last_message
    assert prompt is not None
    assert prompt.buttons == [["Ham"], ["Olives"], ["Mushrooms"], ["Chili"], ["Done"]]

    await talk.click("Olives")
    await talk.click("Ham")
    await talk.click("Mushrooms")
    await talk.click(f"{MARK}Mushrooms")  # pressed again: unmarked

    assert prompt.buttons == [[f"{MARK}Ham"], [f"{MARK}Olives"], ["Mushrooms"], ["Chili"], ["Done"]]
    assert len(sim.session.calls_of(SendMessage)) == 1  # edited in place, nothing new sent
    edits = sim.session.calls_of(EditMessageReplyMarkup)
    assert {e.message_id for e in edits} == {prompt.message_id}
    assert sim.session.unanswered_callbacks() == []
    await talk.click("Done")
    talk.assert_last("Name for the order?")
    assert prompt.buttons == []  # answered: the keyboard goes
    await talk.send("Ann")
    talk.assert_last("Ann: olives, ham")  # in the order they were picked


async def test_toggles_are_not_answers_and_write_one_step_only_update_each(
    backend: Backend,
) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    before = await backend.record(talk)
    assert before is not None
    generation = backend.storage.generation

    await talk.click("Chili")

    assert backend.storage.generation == generation + 1  # one write
    after = await backend.record(talk)
    assert after is not None
    assert after.current_state == before.current_state and after.data == before.data
    assert "a" not in after.kwargs  # no attempt refused (0 is not stored)
    assert after.kwargs.get("h") == before.kwargs.get("h")
    assert after.kwargs["n"] == before.kwargs["n"]  # the same prompt: its buttons stay live
    assert after.kwargs["p"] == ["chili"]
    await talk.click(f"{MARK}Chili")
    record = await backend.record(talk)
    assert record is not None and "p" not in record.kwargs  # nothing picked: nothing stored


async def test_more_than_max_picks_gets_a_toast_and_changes_nothing(backend: Backend) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    prompt = talk.last_message
    assert prompt is not None
    for label in ("Ham", "Olives", "Mushrooms"):
        await talk.click(label)
    before = await backend.record(talk)

    await talk.click("Chili")

    assert talk.toasts == ["You can choose at most 3."]
    assert prompt.buttons[3] == ["Chili"]
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.kwargs, after.data) == (before.kwargs, before.data)


async def test_done_with_fewer_than_min_picks_gets_a_toast(backend: Backend) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    await talk.click("Done")
    assert talk.toasts == ["Choose at least 1."]
    talk.assert_last("Toppings?")
    record = await backend.record(talk)
    assert record is not None and record.callback == "t_multi_pizza:TOPPINGS"
    assert "a" not in record.kwargs  # not an attempt (0 is not stored)
    await talk.click("Ham")
    await talk.click("Done")
    talk.assert_last("Name for the order?")


async def test_a_typed_answer_at_a_multi_select_asks_for_the_buttons(backend: Backend) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    await talk.click("Ham")
    await talk.send("ham")
    assert talk.last is not None and talk.last.startswith("Please use the buttons.")
    prompt = talk.last_message
    assert prompt is not None and prompt.buttons[0] == [f"{MARK}Ham"]  # the picks are kept
    await talk.click("Done", message=prompt)
    talk.assert_last("Name for the order?")


async def test_picks_survive_a_restart(persistent_backend: Backend) -> None:
    backend = persistent_backend
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    prompt = talk.last_message
    assert prompt is not None
    await talk.click("Chili")
    await sim.restart()
    await talk.click("Ham", message=prompt)
    await talk.click("Done", message=prompt)
    await talk.send("Bo")
    talk.assert_last("Bo: chili, ham")


async def test_back_to_a_multi_select_starts_it_afresh(backend: Backend) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    await talk.click("Ham")
    await talk.click("Done")
    await talk.send("/back")
    prompt = talk.last_message
    assert prompt is not None and prompt.text == "Toppings?"
    assert prompt.buttons[0] == ["Ham"]
    record = await backend.record(talk)
    assert record is not None and record.data == {} and "p" not in record.kwargs


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("t9", id="toggle-out-of-range"),
        pytest.param("t-1", id="negative-toggle"),
        pytest.param("t", id="toggle-without-index"),
        pytest.param("0", id="single-pick-code"),
        pytest.param("p1", id="page-without-pages"),
        pytest.param("dd", id="bad-done"),
        pytest.param("t²", id="unicode-digit"),
    ],
)
async def test_forged_multi_select_presses_change_nothing(backend: Backend, code: str) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    prompt = talk.last_message
    assert prompt is not None
    await talk.click("Ham")
    genuine = prompt.inline_keyboard[0][0].callback_data
    assert genuine is not None
    head = genuine.rpartition(":")[0]
    before = await backend.record(talk)

    await press(talk, prompt, f"{head}:{code}")

    assert talk.toasts == [Pizza.texts.stale_button]
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.kwargs, after.data) == (before.kwargs, before.data)
    await talk.click("Done", message=prompt)
    talk.assert_last("Name for the order?")


async def test_a_forged_nonce_on_a_toggle_changes_nothing(backend: Backend) -> None:
    sim = backend.simulator(pizza)
    talk = sim.chat()
    await talk.send("/pizza")
    prompt = talk.last_message
    assert prompt is not None
    genuine = prompt.inline_keyboard[0][0].callback_data
    assert genuine is not None
    prefix, owner, fingerprint, nonce, code = genuine.split(":")
    before = await backend.record(talk)

    await press(talk, prompt, f"{prefix}:{owner}:{fingerprint}:{'0' * len(nonce)}:{code}")

    assert talk.toasts == [Pizza.texts.stale_button]
    after = await backend.record(talk)
    assert before is not None and after is not None and after.kwargs == before.kwargs
    assert prompt.buttons[0] == ["Ham"]


def test_min_and_max_need_multi_and_must_make_sense() -> None:
    with pytest.raises(TypeError, match="multi=True"):
        step(Pizza.State.NAME, prompt="?", choices=TOPPINGS, max=2)
    with pytest.raises(ValueError, match=r"@step\(<State.NAME: 2>\): min=3 is above max=2"):
        step(Pizza.State.NAME, prompt="?", choices=TOPPINGS, multi=True, min=3, max=2)
    with pytest.raises(TypeError, match="inline buttons"):
        step(Pizza.State.NAME, prompt="?", choices=TOPPINGS, multi=True, keyboard="reply")
    with pytest.raises(TypeError, match="need choices="):
        step(Pizza.State.NAME, prompt="?", multi=True)


EXTRAS = {"egg": "Egg", "basil": "Basil"}


async def extras(wizard: Wizard) -> dict[str, str]:
    return dict(EXTRAS)


class Extras(Wizard, name="t_multi_extras"):
    """A multi-select whose options come from a callable."""

    class State(Enum):
        EXTRAS = auto()

    @step(State.EXTRAS, prompt="Extras?", choices=extras, multi=True, min=0)
    async def pick(self, value: list[str]) -> None:
        self.data["extras"] = value

    async def on_finish(self) -> None:
        await self.answer(
            f"extras: {value or 'none'}" if (value := self.data["extras"]) else "none"
        )


def extras_bot(dp: Dispatcher, storage: object) -> None:
    Extras.setup(dp, entry=Command("extras"), storage=storage)


async def test_a_multi_select_from_a_callable_resolves_against_what_was_shown_after_a_restart(
    persistent_backend: Backend,
) -> None:
    backend = persistent_backend
    sim = backend.simulator(extras_bot)
    talk = sim.chat()
    await talk.send("/extras")
    prompt = talk.last_message
    assert prompt is not None and prompt.buttons == [["Egg", "Basil"], ["Done"]]
    await talk.click("Basil")
    EXTRAS.clear()
    EXTRAS["truffle"] = "Truffle"  # the source changed
    try:
        await sim.restart()
        await talk.click("Egg", message=prompt)
        assert prompt.buttons == [[f"{MARK}Egg", f"{MARK}Basil"], ["Done"]]
        await talk.click("Done", message=prompt)
    finally:
        EXTRAS.clear()
        EXTRAS.update(egg="Egg", basil="Basil")
    talk.assert_last("extras: ['basil', 'egg']")


async def test_nothing_picked_is_an_answer_when_min_is_zero(backend: Backend) -> None:
    sim = backend.simulator(extras_bot)
    talk = sim.chat()
    await talk.send("/extras")
    await talk.click("Done")
    talk.assert_last("none")
