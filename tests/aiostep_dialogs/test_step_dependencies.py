"""Steps get what handlers get: step methods, hooks and prompt callables ask for handler data
by name (the Dispatcher's data, middleware data, aiogram's own), resolved at class definition,
taken from the update being handled, so after a restart too."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from enum import Enum, auto
from typing import Any, ClassVar

import pytest
from aiogram import BaseMiddleware, Dispatcher
from aiogram.filters import Command
from aiogram.types import TelegramObject, User

from aiostep_dialogs import Wizard, step
from aiostep_dialogs import validators as v
from aiostep_dialogs.injection import Needs
from tests.conftest import Backend


class Shop:
    """A stand-in for a database: a new one per process, like a connection pool."""

    def __init__(self) -> None:
        self.orders: list[tuple[int, str, int]] = []
        self.prices = {"tea": 3, "cake": 5}


class Session(BaseMiddleware):
    """An inner message middleware, as bots hand out per-update database sessions."""

    def __init__(self) -> None:
        self.opened = 0

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.opened += 1
        data["session"] = f"session-{self.opened}"
        return await handler(event, data)


async def price_prompt(wizard: Wizard, shop: Shop, event_from_user: User) -> str:
    return f"{event_from_user.first_name}, how many? ({shop.prices[wizard.data['item']]} each)"


class Order(Wizard, name="t_deps_order"):
    class State(Enum):
        ITEM = auto()
        COUNT = auto()

    sessions: ClassVar[list[str]] = []

    async def on_start(self, shop: Shop) -> None:
        await self.answer(f"Menu: {', '.join(sorted(shop.prices))}")

    @step(State.ITEM, prompt="What would you like?")
    async def item(self, value: str, shop: Shop, session: str) -> None:
        if value not in shop.prices:
            raise v.ValidationError(f"We have no {value}.")
        self.sessions.append(session)
        self.data["item"] = value

    @step(State.COUNT, prompt=price_prompt, validate=v.integer(min=1))
    async def count(self, value: int, shop: Shop, **data: Any) -> None:
        assert "event_from_user" in data and "bot" in data
        self.data["count"] = value

    async def on_finish(self, shop: Shop, event_from_user: User) -> None:
        shop.orders.append((event_from_user.id, self.data["item"], self.data["count"]))
        await self.answer(f"Ordered {self.data['count']} {self.data['item']}.")


shops: list[Shop] = []


def order_bot(dp: Dispatcher, storage: object) -> None:
    shop = Shop()
    shops.append(shop)
    dp["shop"] = shop  # what a bot does with its database pool
    dp.message.middleware(Session())
    Order.setup(dp, entry=Command("order"), storage=storage)


async def test_steps_hooks_and_prompts_get_handler_data_by_name(backend: Backend) -> None:
    shops.clear()
    Order.sessions.clear()
    sim = backend.simulator(order_bot)
    talk = sim.chat()
    await talk.send("/order")
    assert [m.text for m in talk.messages] == ["Menu: cake, tea", "What would you like?"]
    await talk.send("soup")
    talk.assert_last("We have no soup.\n\nWhat would you like?")
    await talk.send("cake")
    talk.assert_last(f"{talk.user.first_name}, how many? (5 each)")
    await talk.send("2")
    talk.assert_last("Ordered 2 cake.")
    assert shops[-1].orders == [(talk.user.id, "cake", 2)]
    assert Order.sessions == ["session-3"]  # opened for /order, soup, cake: the step got its own


async def test_dependencies_come_from_the_update_after_a_restart(
    persistent_backend: Backend,
) -> None:
    shops.clear()
    sim = persistent_backend.simulator(order_bot)
    talk = sim.chat()
    await talk.send("/order")
    await talk.send("tea")
    await sim.restart()  # a new process: a new Shop, nothing of the old one is stored
    await talk.send("3")
    talk.assert_last("Ordered 3 tea.")
    assert len(shops) == 2
    assert shops[0].orders == []
    assert shops[1].orders == [(talk.user.id, "tea", 3)]


class NeedsMissing(Wizard, name="t_deps_missing"):
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="Name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="Age?", validate=v.integer())
    async def age(self, value: int, database: object) -> None:
        self.data["age"] = value


async def test_a_missing_dependency_names_itself_and_keeps_the_step(backend: Backend) -> None:
    errors: list[BaseException] = []

    def setup(dp: Dispatcher, storage: object) -> None:
        @dp.errors()
        async def on_error(event: Any) -> bool:
            errors.append(event.exception)
            return True

        NeedsMissing.setup(dp, entry=Command("go"), storage=storage)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/go")
    await talk.send("Ann")
    await talk.send("30")
    assert len(errors) == 1
    assert isinstance(errors[0], TypeError)
    message = str(errors[0])
    assert "'database'" in message and "NeedsMissing.age" in message
    assert "dp['database']" in message
    record = await backend.record(talk)
    assert record is not None and record.current_state == "AGE"  # the user can answer again
    assert record.data == {"name": "Ann"}


async def test_parameters_with_defaults_are_optional() -> None:
    async def fn(self: Any, value: Any, shop: Shop, page: int = 1) -> None: ...

    from aiostep_dialogs.injection import needs_of

    needs = needs_of(fn, 2)
    assert needs == Needs(("shop",), ("page",), False, needs.owner)
    assert needs.kwargs({"shop": "s", "bot": "b"}) == {"shop": "s"}
    assert needs.kwargs({"shop": "s", "page": 3}) == {"shop": "s", "page": 3}


def test_a_positional_only_dependency_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match="'shop' is positional-only"):

        class Broken(Wizard, name="t_deps_broken"):
            class State(Enum):
                A = auto()

            @step(State.A, prompt="?")
            async def a(self, value: str, shop: Shop, /) -> None: ...


def test_signatures_are_read_once_at_class_definition() -> None:
    spec = Order._by_state["ITEM"]
    assert spec.needs.required == ("shop", "session")
    assert Order._by_state["COUNT"].needs.everything
    assert Order._by_state["COUNT"].prompt_needs.required == ("shop", "event_from_user")
    assert set(Order._hook_needs) == {"on_start", "on_finish"}
    assert not NeedsMissing._by_state["NAME"].needs  # asks for nothing: called as it is


async def test_no_signature_is_inspected_per_update(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    shops.clear()
    sim = backend.simulator(order_bot)
    talk = sim.chat()

    def no_inspect(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a signature was inspected while handling an update")

    import aiostep_dialogs.injection

    monkeypatch.setattr(aiostep_dialogs.injection.inspect, "signature", no_inspect)
    try:
        await talk.send("/order")
        await talk.send("tea")
        await talk.send("1")
    finally:
        monkeypatch.setattr(aiostep_dialogs.injection.inspect, "signature", inspect.signature)
    talk.assert_last("Ordered 1 tea.")


async def test_documented_attributes_are_there_in_a_step(backend: Backend) -> None:
    seen: dict[str, Any] = {}

    class Probe(Wizard, name="t_deps_probe"):
        class State(Enum):
            ONE = auto()

        @step(State.ONE, prompt="Say something")
        async def one(self, value: str) -> None:
            seen.update(
                key=self.key,
                bot=self.bot,
                event=self.event,
                state=self.state,
                user=self.middleware_data["event_from_user"],
            )

    def setup(dp: Dispatcher, storage: object) -> None:
        Probe.setup(dp, entry=Command("probe"), storage=storage)

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/probe")
    await talk.send("hi")
    assert seen["key"].chat_id == talk.chat.id and seen["key"].user_id == talk.user.id
    assert seen["bot"] is sim.bot
    assert seen["event"].text == "hi"
    assert seen["state"] is Probe.State.ONE
    assert seen["user"].id == talk.user.id
    logging.getLogger(__name__).debug("probe saw %s", seen)
