"""Timeouts and reminders together with main's features: the user's stored language, a
called sub-wizard, one-message mode, and handler data (``dp["db"]``), all fired with no
update (fake clock)."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.testing import Conversation
from aiostep_dialogs import Wizard, step

if TYPE_CHECKING:
    from conftest import Backend


def sent(talk: Conversation) -> list[str | None]:
    """The texts the bot sent in ``talk``, oldest first."""
    return [m.message.text for m in talk.messages if m.from_bot]


# -- the user's language -----------------------------------------------------------------------


class Polyglot(Wizard, name="t_tf_polyglot"):
    """Plain-string prompt: only the reminder and the timeout need the stored language."""

    timeout = 100
    remind_after = 40

    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value


def test_a_wizard_with_a_timeout_stores_its_users_language() -> None:
    assert Polyglot._stores_locale


async def test_a_reminder_and_the_timeout_speak_the_users_language_with_no_update(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Polyglot.setup(dp, entry=Command("name"), storage=storage)
    )
    clock = sim.use_fake_clock()
    talk = sim.chat(sim.user(language_code="ru"))
    await talk.send("/name")
    await clock.advance(40)
    talk.assert_last("Вы ещё здесь?\n\nName?")
    await clock.advance(60)
    talk.assert_last(
        "Время вышло, давайте на этом остановимся. Начать заново можно в любой момент."
    )


async def test_a_reminder_after_a_restart_still_speaks_the_users_language(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(
        lambda dp, storage: Polyglot.setup(dp, entry=Command("name"), storage=storage)
    )
    clock = sim.use_fake_clock()
    talk = sim.chat(sim.user(language_code="es"))
    await talk.send("/name")
    await sim.restart()
    await clock.advance(40)
    talk.assert_last("¿Sigues ahí?\n\nName?")


# -- a called sub-wizard --------------------------------------------------------------------------

cancelled: list[str] = []


class Street(Wizard, name="t_tf_street"):
    timeout = 30

    class State(Enum):
        STREET = auto()

    @step(State.STREET, prompt="Street?")
    async def street(self, value: str) -> Any:
        return self.finish(value)

    async def on_cancel(self) -> None:
        cancelled.append("Street")


class Delivery(Wizard, name="t_tf_delivery"):
    """No timeout of its own: only the called Street times out."""

    class State(Enum):
        WHAT = auto()
        CONFIRM = auto()

    @step(State.WHAT, prompt="What?")
    async def what(self, value: str) -> Any:
        self.data["what"] = value
        return self.call(Street, then=self.State.CONFIRM, key="street")

    @step(State.CONFIRM, prompt="Confirm?")
    async def confirm(self, value: str) -> Any:
        return self.finish(value)

    async def on_cancel(self) -> None:
        cancelled.append("Delivery")
        await self.answer("Delivery cancelled.")


def setup_calls(dp: Dispatcher, storage: object) -> None:
    Delivery.setup(dp, entry=Command("deliver"), storage=storage)
    Street.setup(dp, entry=Command("street"), storage=storage)


async def test_a_timeout_in_a_called_wizard_cancels_it_and_its_caller(backend: Backend) -> None:
    cancelled.clear()
    sim = backend.simulator(setup_calls)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/deliver")
    await talk.send("soup")
    talk.assert_last("Street?")
    await clock.advance(30)
    assert cancelled == ["Street", "Delivery"]  # both on_cancel hooks, the child's first
    assert sent(talk)[-2:] == [
        "Time is up; let's stop here. You can start again any time.",
        "Delivery cancelled.",
    ]
    assert await backend.record(talk) is None  # the whole conversation ended


async def test_a_return_from_a_called_wizard_takes_the_callers_deadline_back(
    backend: Backend,
) -> None:
    cancelled.clear()
    sim = backend.simulator(setup_calls)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/deliver")
    await talk.send("soup")
    record = await backend.record(talk)
    assert record is not None and record.deadline is not None  # the child's
    await talk.send("Main St")
    talk.assert_last("Confirm?")
    record = await backend.record(talk)
    assert record is not None and record.deadline is None  # Delivery has no timeout
    await clock.advance(60)
    talk.assert_last("Confirm?")
    assert cancelled == []


# -- one-message mode -------------------------------------------------------------------------


class Cup(Wizard, name="t_tf_cup"):
    ui = "edit"
    remind_after = 20
    timeout = 60

    class State(Enum):
        SIZE = auto()
        MILK = auto()

    @step(State.SIZE, prompt="Which size?", choices=["Small", "Large"])
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.MILK, prompt="Milk?", choices=["Oat", "Cow"])
    async def milk(self, value: str) -> Any:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer_in_place(f"{self.data['size']} with {self.result}.")


async def test_a_reminder_in_one_message_mode_sends_the_prompt_anew_and_clears_the_old(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Cup.setup(dp, entry=Command("cup"), storage=storage)
    )
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/cup")
    first = talk.last_message
    assert first is not None and first.buttons == [["Small", "Large"]]
    await clock.advance(20)
    reminder = talk.last_message
    assert reminder is not None and reminder is not first
    assert reminder.text == "Still there?\n\nWhich size?"
    assert reminder.buttons == [["Small", "Large"]]
    assert first.buttons == []  # the old prompt's keyboard is gone, as after a typed answer
    record = await backend.record(talk)
    assert record is not None and record.kwargs["m"] == reminder.message_id
    assert record.kwargs["r"] == 1  # one reminder sent: the next is the timeout
    await talk.click("Large")  # on the reminder's message: it is edited in place
    talk.assert_last("Milk?", buttons=[["Oat", "Cow"]])
    assert talk.last_message is reminder
    await talk.click("Oat")
    talk.assert_last("Large with Oat.", buttons=[])


# -- handler data with no update ------------------------------------------------------------------


class Shop:
    """What a bot keeps in ``dp["db"]``."""

    def __init__(self) -> None:
        self.asked = 0

    def dish_of_the_day(self) -> str:
        self.asked += 1
        return "borscht"


def dish_prompt(wizard: Wizard, db: Shop) -> str:
    return f"Today: {db.dish_of_the_day()}. Want it?"


class Menu(Wizard, name="t_tf_menu"):
    remind_after = 10
    timeout = 50

    class State(Enum):
        WANT = auto()

    @step(State.WANT, prompt=dish_prompt)
    async def want(self, value: str) -> Any:
        return self.finish(value)

    async def on_timeout(self, db: Shop) -> Any:
        await self.answer(f"Closing; {db.asked} looks at the menu.")
        return None


async def test_a_reminder_with_no_update_gives_the_prompt_the_dispatchers_data(
    backend: Backend,
) -> None:
    shop = Shop()

    def setup_menu(dp: Dispatcher, storage: object) -> None:
        dp["db"] = shop
        Menu.setup(dp, entry=Command("menu"), storage=storage)

    sim = backend.simulator(setup_menu)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/menu")
    talk.assert_last("Today: borscht. Want it?")
    await clock.advance(10)
    talk.assert_last("Still there?\n\nToday: borscht. Want it?")
    assert shop.asked == 2
    await clock.advance(40)  # on_timeout asks for db too
    assert sent(talk)[-2:] == [
        "Closing; 2 looks at the menu.",
        "Time is up; let's stop here. You can start again any time.",
    ]


async def test_the_default_timeout_in_one_message_mode_edits_the_prompt_to_timed_out(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Cup.setup(dp, entry=Command("cup"), storage=storage)
    )
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/cup")
    await clock.advance(20)  # the reminder: a new message
    await clock.advance(40)
    talk.assert_last("Time is up; let's stop here. You can start again any time.", buttons=[])
    assert len(talk.messages) == 2  # the reminder's message was edited, none was sent
    assert await backend.record(talk) is None


class Toppings(Wizard, name="t_tf_toppings"):
    timeout = 30

    class State(Enum):
        PICK = auto()

    @step(State.PICK, prompt="Toppings?", choices=["ham", "egg", "corn"], multi=True)
    async def pick(self, value: list[str]) -> Any:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"With {', '.join(self.result)}.")


async def test_a_toggle_that_is_not_an_answer_starts_the_steps_clock_again(
    backend: Backend,
) -> None:
    sim = backend.simulator(
        lambda dp, storage: Toppings.setup(dp, entry=Command("top"), storage=storage)
    )
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/top")
    await clock.advance(20)
    await talk.click("ham")  # a toggle: the step is stored again, with a fresh deadline
    record = await backend.record(talk)
    assert record is not None and record.deadline is not None
    await clock.advance(20)  # 40 s after the prompt, 20 s after the toggle
    assert await backend.record(talk) is not None
    await talk.click("Done")
    talk.assert_last("With ham.")
