"""A resolver supplies the step of a stored name that a deploy renamed or removed, so the
conversations pending on it carry on (``StepRegistry.add_resolver``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import RegisteredStep, StateContext
from aiostep.testing import BotSimulator

if TYPE_CHECKING:
    from conftest import Backend

Names = Callable[[str], str]


def factory(backend: Backend, handlers: Callable[[Dispatcher], None]) -> Callable[[], Dispatcher]:
    def build() -> Dispatcher:
        storage = backend.new()
        dp = Dispatcher()
        aiostep.setup(dp, storage=storage)
        dp.shutdown.register(storage.close)
        handlers(dp)
        return dp

    return build


async def stored(backend: Backend, user_id: int) -> StateContext | None:
    storage = backend.opened[-1] if backend.kind == "file" else backend.new()
    return await storage.read(f"{user_id}:{user_id}@42")  # @ the simulator's bot, 42:TEST


def test_a_registered_name_wins_over_a_resolver_and_longer_prefixes_are_asked_first() -> None:
    reg = aiostep.StepRegistry()

    async def exact(message: Message) -> None: ...

    async def short(message: Message) -> None: ...

    async def long(message: Message) -> None: ...

    reg.register(exact, "shop:PAY")
    asked: list[str] = []

    def resolver_for(callback: object, label: str) -> aiostep.step_registry.StepResolver:
        def resolver(name: str, record: StateContext) -> RegisteredStep | None:
            asked.append(label)
            return RegisteredStep(name=name, callback=callback) if label != "none" else None

        return resolver

    reg.add_resolver("shop:", resolver_for(short, "short"))
    reg.add_resolver("shop:v2:", resolver_for(long, "long"))
    record = StateContext()
    found = reg.resolve("shop:PAY", record)
    assert found is not None and found.callback is exact and asked == []
    found = reg.resolve("shop:v2:GONE", record)
    assert found is not None and found.callback is long and asked == ["long"]
    found = reg.resolve("shop:GONE", record)
    assert found is not None and found.callback is short
    assert reg.resolve("other:GONE", record) is None
    reg.add_resolver("shop:v2:", resolver_for(long, "none"))  # replaces; None: ask the next
    asked.clear()
    found = reg.resolve("shop:v2:GONE", record)
    assert found is not None and found.callback is short and asked == ["none", "short"]
    reg.remove_resolver("shop:")
    reg.remove_resolver("shop:v2:")
    assert reg.resolve("shop:GONE", record) is None
    assert reg.get("shop:GONE") is None  # get stays exact


async def test_a_resolver_continues_a_stored_step_that_a_deploy_removed(
    persistent: Backend, step_name: Names
) -> None:
    log: list[str] = []
    name = step_name("resolved.old")
    prefix = name.rpartition(".")[0] + "."

    @aiostep.persisted_step(name)
    async def old(message: Message) -> None:
        log.append("old step ran")

    async def successor(message: Message, step_context: StateContext, city: str) -> None:
        log.append(f"{step_context.callback} -> successor: {city} {message.text}")

    seen: list[str] = []

    def resolver(stored_name: str, record: StateContext) -> RegisteredStep | None:
        seen.append(stored_name)
        if record.kwargs.get("city") is None:
            return None
        return RegisteredStep(name=stored_name, callback=successor)

    def handlers(dp: Dispatcher) -> None:
        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            assert message.from_user is not None
            await aiostep.register_next_step(message.from_user.id, old, kwargs={"city": "Oslo"})

        @dp.message()
        async def normal(message: Message) -> None:
            log.append(f"normal {message.text}")

    async with BotSimulator(factory(persistent, handlers)) as sim:
        talk = sim.chat()
        await talk.send("/start")
        aiostep.registry.unregister(name)  # the new deploy no longer has it...
        aiostep.registry.add_resolver(prefix, resolver)  # ...but knows where it went
        try:
            await sim.restart()
            await talk.send("hello")
            await talk.send("again")
        finally:
            aiostep.registry.remove_resolver(prefix)
    assert seen == [name]
    assert log == [f"{name} -> successor: Oslo hello", "normal again"]
    record = await stored(persistent, talk.user.id)
    assert record is None or record.callback is None


def test_a_registry_with_a_parent_asks_it_for_what_it_does_not_register() -> None:
    parent = aiostep.StepRegistry()

    async def imported(message: Message) -> None: ...

    async def own(message: Message) -> None: ...

    async def gone(message: Message) -> None: ...

    parent.register(imported, "app.imported")
    child = aiostep.StepRegistry(parent)
    child.register(own, "app.own")
    parent.register(gone, "app.later")  # registered in the parent after the child was made
    record = StateContext()
    assert child.get("app.imported") is parent.get("app.imported")
    assert child.find(imported) is parent.get("app.imported")
    assert "app.later" in child and "app.own" in child and "app.own" not in parent
    found = child.resolve("app.later", record)
    assert found is not None and found.callback is gone
    parent.add_resolver("app.", lambda name, rec: RegisteredStep(name=name, callback=gone))
    child.add_resolver("app.v2.", lambda name, rec: RegisteredStep(name=name, callback=own))
    v2, other = child.resolve("app.v2.X", record), child.resolve("app.X", record)
    assert v2 is not None and v2.callback is own  # the child's resolvers first
    assert other is not None and other.callback is gone  # then the parent's
    assert len(child) == 1  # its own registrations
