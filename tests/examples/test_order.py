"""examples/order.py: pizzas by button, a quantity, the "add another" loop, a confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiogram.methods import EditMessageReplyMarkup
from aiogram.types import CallbackQuery

from examples.order import build

if TYPE_CHECKING:
    from conftest import Backend

MENU = [["Margherita", "Pepperoni", "Veggie"]]


async def test_orders_two_kinds_of_pizza(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    talk.assert_last("Which pizza?", buttons=MENU)
    await talk.click("Margherita")
    assert talk.messages[0].buttons == []  # the answered prompt loses its buttons
    talk.assert_last("How many Margherita?")
    await talk.send("2")
    talk.assert_last("Add another item?", buttons=[["Add more", "That's all"]])
    await talk.click("Add more")  # the loop: back to PIZZA
    talk.assert_last("Which pizza?", buttons=MENU)
    await talk.click("Veggie")
    await talk.send("1")
    await talk.click("That's all")
    talk.assert_last(
        "Your order:\n2 x Margherita\n1 x Veggie\nTotal: 25 EUR. Place it?",
        buttons=[["Place order", "Cancel"]],
    )
    await talk.click("Place order")
    talk.assert_last("Order placed. Enjoy!")
    assert len(sim.session.calls_of(EditMessageReplyMarkup)) == 5  # one per button answered
    assert sim.session.unanswered_callbacks() == []
    assert await backend.record(talk) is None


async def test_cancel_at_the_confirmation(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/order")
    await talk.click("Pepperoni")
    await talk.send("3")
    await talk.click("That's all")
    talk.assert_last("Your order:\n3 x Pepperoni\nTotal: 30 EUR. Place it?")
    await talk.click("Cancel")
    talk.assert_last("Order cancelled.")
    assert await backend.record(talk) is None


async def test_a_bad_quantity_is_asked_again(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Veggie")
    await talk.send("lots")
    talk.assert_last("Please send a whole number.\n\nHow many Veggie?")
    await talk.send("21")
    talk.assert_last("Please send a number from 1 to 20.\n\nHow many Veggie?")
    record = await backend.record(talk)
    assert record is not None and record.data == {"current": "veggie"}


async def test_an_old_add_more_button_is_stale(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Margherita")
    await talk.send("1")
    first_more = talk.last_message
    assert first_more is not None
    old_data = first_more.inline_keyboard[0][1].callback_data  # [That's all]
    await talk.click("Add more")
    await talk.click("Veggie")
    await talk.send("1")
    before = await backend.record(talk)
    # a client that still shows the first question's buttons presses [That's all] there
    query = CallbackQuery.model_validate(
        {
            "id": "old-press",
            "from": talk.user.model_dump(),
            "chat_instance": "ci",
            "message": first_more.message.model_dump(by_alias=True),
            "data": old_data,
        },
        context={"bot": sim.bot},
    )
    sim.session.expect_callback(query.id, talk.chat.id)
    await sim.feed(sim._update(callback_query=query), chat_id=talk.chat.id)
    assert talk.toasts == ["This button is no longer active."]
    after = await backend.record(talk)
    assert before is not None and after is not None
    assert (after.callback, after.data, after.kwargs) == (
        before.callback,
        before.data,
        before.kwargs,
    )
    await talk.click("That's all")
    talk.assert_last("Your order:\n1 x Margherita\n1 x Veggie\nTotal: 17 EUR. Place it?")


async def test_back_from_more_asks_the_quantity_again(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Margherita")
    await talk.send("3")
    await talk.send("/back")
    talk.assert_last("How many Margherita?")
    await talk.send("2")
    await talk.click("That's all")
    talk.assert_last("Your order:\n2 x Margherita\nTotal: 16 EUR. Place it?")


async def test_restart_mid_order_continues(persistent_backend: Backend) -> None:
    sim = persistent_backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Pepperoni")
    await talk.send("2")
    await sim.restart()
    await talk.click("Add more")
    await talk.click("Margherita")
    await sim.restart()
    await talk.send("1")
    await talk.click("That's all")
    talk.assert_last("Your order:\n2 x Pepperoni\n1 x Margherita\nTotal: 28 EUR. Place it?")
    await sim.restart()
    await talk.click("Place order")
    talk.assert_last("Order placed. Enjoy!")
    assert await persistent_backend.record(talk) is None
