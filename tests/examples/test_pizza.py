"""examples/pizza.py: a menu from the database in the Dispatcher's data (as a photo prompt),
multi-select toppings, 30 paged addresses, a "Share my phone" button, one-message mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiogram.methods import EditMessageText, SendPhoto

from examples.pizza import PizzaDB, build

if TYPE_CHECKING:
    from conftest import Backend

    from aiostep.testing import Conversation

MENU = [["Margherita · 8 €"], ["Diavola · 10 €"], ["Funghi · 9 €"]]


async def order(talk: Conversation, restart: object = None) -> None:
    """One whole order; ``restart`` (an async callable) runs between every two updates."""

    async def then() -> None:
        if restart is not None:
            await restart()  # type: ignore[operator]

    await talk.send("/pizza")
    talk.assert_last("Which pizza would you like?", buttons=MENU)
    assert talk.last_message is not None and talk.last_message.kind == "photo"
    await then()
    await talk.click("Diavola · 10 €")
    await then()
    await talk.click("Olives")
    await then()
    await talk.click("Chili")
    await then()
    await talk.click("Done")
    talk.assert_last(
        "Deliver to?",
        buttons=[[f"{n} Harbour Street, flat 1"] for n in range(1, 6)] + [["Next »"]],
    )
    await then()
    await talk.click("Next »")
    await then()
    await talk.click("7 Harbour Street, flat 1")
    talk.assert_last("Your phone number, for the courier?")
    assert talk.keyboard == [["Share my phone number"]]
    await then()
    await talk.press("Share my phone number")
    talk.assert_last(
        "Diavola with Olives, Chili\nto 7 Harbour Street, flat 1\nphone +15550100000\n"
        "Total: 12 €. Order it?",
        buttons=[["Order", "Cancel"]],
    )
    await then()
    await talk.click("Order")
    talk.assert_last("Order #1 is on its way!")


async def test_an_order_goes_through_every_kind_of_step(backend: Backend) -> None:
    db = PizzaDB()
    sim = backend.simulate(lambda storage: build(storage, db))
    talk = sim.chat()
    await order(talk)
    assert db.orders == [
        {
            "user": talk.user.id,
            "pizza": "diavola",
            "toppings": ["olives", "chili"],
            "address": "7 Harbour Street, flat 1",
            "phone": "+15550100000",
        }
    ]
    # one message edited in place from the toppings to the address list
    assert len(sim.session.calls_of(SendPhoto)) == 1
    assert len(sim.session.calls_of(EditMessageText)) >= 1
    assert await backend.record(talk) is None


async def test_a_restart_between_any_two_updates_loses_nothing(
    persistent_backend: Backend,
) -> None:
    dbs: list[PizzaDB] = []

    def make(storage: object) -> object:
        db = PizzaDB()  # a new process: a new connection to the same database
        db.orders = dbs[0].orders if dbs else db.orders
        dbs.append(db)
        return build(storage, db)

    sim = persistent_backend.simulate(make)  # type: ignore[arg-type]
    talk = sim.chat()
    await order(talk, restart=sim.restart)
    assert len(dbs) == 9  # restarted before each of the 8 answers after /pizza
    assert dbs[0].orders[0]["phone"] == "+15550100000"
    assert await persistent_backend.record(talk) is None


async def test_a_typed_phone_and_someone_elses_contact(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Funghi · 9 €")
    await talk.click("Done")
    await talk.click("1 Harbour Street, flat 1")
    await talk.send_contact("+15550199999", first_name="Bob", user_id=42)
    assert "own" in (talk.last or "").lower() or "your" in (talk.last or "").lower()
    await talk.send("+44 20 7946 0958")
    talk.assert_last(
        "Funghi with no toppings\nto 1 Harbour Street, flat 1\nphone +442079460958\n"
        "Total: 9 €. Order it?",
        buttons=[["Order", "Cancel"]],
    )
    await talk.click("Cancel")
    talk.assert_last("Order cancelled.")


async def test_more_than_three_toppings_is_refused_with_a_toast(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Margherita · 8 €")
    for label in ("Olives", "Chili", "Basil", "Ham"):
        await talk.click(label)
    assert talk.toasts[-1] == "You can choose at most 3."


async def test_an_order_starts_only_in_a_private_chat(backend: Backend) -> None:
    # the phone step's request button works in private chats only: a group never gets that far
    sim = backend.simulate(build)
    talk = sim.chat(chat=sim.group())
    await talk.send("/pizza")
    assert talk.messages == []
    assert await backend.record(talk) is None


@pytest.mark.slow  # a fresh interpreter: the command a user types
def test_the_example_runs_in_the_playground() -> None:
    from tests.aiostep_dialogs.test_playground import play_command

    out = play_command("examples/pizza.py", ["/start", "2", "1", "5", "/orders"])
    assert "Which pizza would you like?" in out
    assert "Extra toppings?" in out
