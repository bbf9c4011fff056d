"""A wizard's steps belong to the Dispatchers it is set up on, not to the process: two
Dispatchers in one process run different wizard sets, or one wizard class with two storages,
and defining (or redefining) a class changes nothing outside it."""

from __future__ import annotations

from enum import Enum, auto
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import MemoryStateStorage
from aiostep.keys import ConversationKey, storage_key
from aiostep.storage import as_async
from aiostep.testing import BotSimulator
from aiostep_dialogs import Finish, Wizard, WizardNotSetUpError, step

if TYPE_CHECKING:
    from conftest import Backend


class Tea(Wizard, name="t_registries_tea"):
    class State(Enum):
        KIND = auto()
        SUGAR = auto()

    @step(State.KIND, prompt="Which tea?")
    async def kind(self, value: str) -> None:
        self.data["kind"] = value

    @step(State.SUGAR, prompt="Sugar?")
    async def sugar(self, value: str) -> Finish:
        return self.finish()

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['kind']} tea coming.")


class Cake(Wizard, name="t_registries_cake"):
    class State(Enum):
        SLICE = auto()

    @step(State.SLICE, prompt="Which cake?")
    async def slice(self, value: str) -> Finish:
        return self.finish()

    async def on_finish(self) -> None:
        await self.answer("Cake coming.")


def _with_normal_handler(dp: Dispatcher, log: list[str], label: str) -> Dispatcher:
    """``dp`` with a handler (after the wizards') that logs what no wizard took."""
    normal = Router(name="normal")

    @normal.message()
    async def nobody_took(message: Message) -> None:
        log.append(f"{label}: {message.text}")

    dp.include_router(normal)
    return dp


def _registry_of(dp: Dispatcher) -> aiostep.StepRegistry:
    listen = next(m for m in dp.message.outer_middleware if isinstance(m, aiostep.Listen))
    return listen.registry


def test_defining_a_wizard_registers_nothing_in_the_process_wide_registry() -> None:
    before = len(aiostep.registry)

    class Defined(Wizard, name="t_registries_defined"):
        class State(Enum):
            ONE = auto()

        @step(State.ONE, prompt="One?")
        async def one(self, value: str) -> None: ...

    assert len(aiostep.registry) == before
    assert "t_registries_defined:ONE" not in aiostep.registry
    dp = Dispatcher()
    Defined.setup(dp)
    assert "t_registries_defined:ONE" in _registry_of(dp)  # its setup registers it there


async def test_a_dispatcher_runs_only_the_wizards_set_up_on_it(backend: Backend) -> None:
    storage = backend.new_storage()  # one storage, as two services of one bot may share
    log: list[str] = []

    def tea_only() -> Dispatcher:
        dp = Dispatcher()
        Tea.setup(dp, entry=Command("tea"), storage=storage)
        return _with_normal_handler(dp, log, "dp1")

    def cake_only() -> Dispatcher:
        dp = Dispatcher()
        Cake.setup(dp, entry=Command("cake"), storage=storage)
        return _with_normal_handler(dp, log, "dp2")

    one, two = BotSimulator(tea_only), BotSimulator(cake_only)
    backend.sims += [one, two]
    assert "t_registries_tea:KIND" not in _registry_of(two.dispatcher)
    assert "t_registries_cake:SLICE" not in _registry_of(one.dispatcher)
    with_one, with_two = one.chat(), two.chat()  # the same bot, user and chat
    await with_one.send("/tea")
    with_one.assert_last("Which tea?")
    record = await backend.record(with_one)
    assert record is not None and record.callback == "t_registries_tea:KIND"

    await with_two.send("green")  # Tea is not set up on dp2: not run there...
    await with_two.send("/tea")
    assert log == ["dp2: green", "dp2: /tea"]
    assert with_two.messages == []
    after = await backend.record(with_one)  # ...and its conversation is left as it was
    assert after is not None
    assert (after.callback, after.current_state, after.data, after.kwargs) == (
        record.callback,
        record.current_state,
        record.data,
        record.kwargs,
    )

    await with_one.send("green")  # dp1 carries on with it
    with_one.assert_last("Sugar?")
    await with_one.send("no")
    with_one.assert_last("green tea coming.")
    assert log == ["dp2: green", "dp2: /tea"]


async def test_one_wizard_on_two_dispatchers_keeps_each_ones_conversations_in_its_storage(
    backend: Backend,
) -> None:
    # a backend's storages share one place (a file, a Redis db): the other one is in memory
    first, second = backend.new_storage(), MemoryStateStorage()

    def build(storage: Any) -> Dispatcher:
        dp = Dispatcher()
        Tea.setup(dp, entry=Command("tea"), storage=storage)
        return dp

    one, two = BotSimulator(lambda: build(first)), BotSimulator(lambda: build(second))
    backend.sims += [one, two]
    with_one, with_two = one.chat(), two.chat()
    await with_one.send("/tea")
    await with_one.send("green")
    with_one.assert_last("Sugar?")
    await with_two.send("/tea")  # set up last: yet dp1's conversation stays in dp1's storage
    with_two.assert_last("Which tea?")
    await with_one.send("no")
    with_one.assert_last("green tea coming.")
    await with_two.send("black")
    with_two.assert_last("Sugar?")

    key = storage_key(ConversationKey(with_one.chat.id, with_one.user.id, None, one.bot.id))
    in_first = await as_async(first).read(key)
    in_second = await as_async(second).read(key)
    assert in_first is None or in_first.callback is None  # finished there
    assert in_second is not None and in_second.callback == "t_registries_tea:SUGAR"
    assert in_second.data == {"kind": "black"}


def _coffee(version: int) -> type[Wizard]:
    """One wizard class as two deploys (or a reload) define it: one id, one qualified name."""

    class Coffee(Wizard, name="t_registries_coffee"):
        __qualname__ = "Coffee"

        class State(Enum):
            SIZE = auto()

        @step(State.SIZE, prompt=f"Which size? (v{version})")
        async def size(self, value: str) -> Finish:
            return self.finish()

        async def on_finish(self) -> None:
            await self.answer(f"{self.data} v{version}")

    return Coffee


async def test_a_redefined_wizard_does_not_replace_the_one_set_up_on_another_dispatcher() -> None:
    def build(cls: type[Wizard]) -> Dispatcher:
        dp = Dispatcher()
        cls.setup(dp, entry=Command("order"), storage=MemoryStateStorage())
        return dp

    old = BotSimulator(build(_coffee(1)))
    new = BotSimulator(build(_coffee(2)))  # defined (and set up) after the first
    async with old, new:
        with_old, with_new = old.chat(), new.chat()
        await with_old.send("/order")
        with_old.assert_last("Which size? (v1)")
        await with_new.send("/order")
        with_new.assert_last("Which size? (v2)")
        await with_old.send("large")
        with_old.assert_last("{} v1")  # still the first class's step
        await with_new.send("large")
        with_new.assert_last("{} v2")


def test_two_wizards_with_one_name_cannot_be_set_up_on_one_dispatcher() -> None:
    class Other(Wizard, name="t_registries_tea"):  # Tea's name, another class
        class State(Enum):
            ONE = auto()

        @step(State.ONE, prompt="One?")
        async def one(self, value: str) -> None: ...

    Other.setup(Dispatcher())  # alone on a Dispatcher it is fine
    dp = Dispatcher()
    Tea.setup(dp)
    with pytest.raises(ValueError, match=r"'t_registries_tea'.*already used by Tea"):
        Other.setup(dp)


async def test_starting_a_wizard_on_a_dispatcher_it_is_not_set_up_on_says_so() -> None:
    def build() -> Dispatcher:
        dp = Dispatcher()
        Cake.setup(dp, entry=Command("cake"))

        @dp.message(Command("tea"))
        async def tea(message: Message) -> None:
            await Tea.start(message)

        return dp

    Tea.setup(Dispatcher())  # set up elsewhere only
    async with BotSimulator(build) as sim:
        with pytest.raises(WizardNotSetUpError, match=r"Tea.setup\(dp\)"):
            await sim.chat().send("/tea")


async def test_a_persisted_step_defined_at_import_resolves_on_a_wizards_dispatcher(
    backend: Backend,
) -> None:
    name = "t_registries.import_time_step"
    answers: list[str] = []

    @aiostep.persisted_step(name)  # the process-wide registry, as a module's decorator fills it
    async def feedback(message: Message) -> None:
        answers.append(str(message.text))

    def build(dp: Dispatcher, storage: Any) -> None:
        Tea.setup(dp, entry=Command("tea"), storage=storage)  # the Listen Wizard.setup installs

        @dp.message(Command("feedback"))
        async def ask(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, name)

    try:
        talk = backend.simulator(build).chat()
        await talk.send("/feedback")
        await talk.send("lovely")
        assert answers == ["lovely"]
    finally:
        aiostep.registry.unregister(name)
