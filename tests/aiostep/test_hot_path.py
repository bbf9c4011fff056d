"""The hot path: an update nothing waits for goes straight to the normal handlers, and nothing
per user is left behind once a conversation ends."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import pending
from aiostep.pending import MetaStore, root_store
from aiostep.storage import FileStateStorage
from aiostep.storage.memory import AsyncMemoryStateStorage
from aiostep.testing import BotSimulator


class CountingStore(pending._RootStore):
    """The default in-process store, counting what each operation is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get_item(self, key: Hashable) -> Any:
        self.calls.append("get")
        return await super().get_item(key)

    async def set_item(self, key: Hashable, value: Any) -> None:
        self.calls.append("set")
        await super().set_item(key, value)

    async def pop_item(self, key: Hashable) -> Any:
        self.calls.append("pop")
        return await super().pop_item(key)


@pytest.fixture
def counting_store() -> Iterator[CountingStore]:
    """Installed as the root store for the test, then the previous one is put back."""
    previous: MetaStore = root_store()
    store = CountingStore()
    aiostep.change_root_store(store)
    yield store
    aiostep.change_root_store(previous)


def build(log: list[str]) -> tuple[Dispatcher, aiostep.Listen]:
    dp = Dispatcher()
    listen = aiostep.setup(dp)

    async def step(message: Message, n: int) -> None:
        log.append(f"step {n} {message.text}")

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        try:
            answer = await aiostep.wait_for(message.from_user.id, timeout=30)
        except aiostep.WaitCancelled as exc:
            log.append(type(exc).__name__)
        else:
            log.append(f"waiter {answer.text}")

    @dp.message(Command("timed"))
    async def timed(message: Message) -> None:
        assert message.from_user is not None
        try:
            await aiostep.wait_for(message.from_user.id, timeout=30)
        except TimeoutError:
            log.append("timed out")

    @dp.message(Command("step"))
    async def register(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, step, kwargs={"n": 1}, timeout=30)

    @dp.message(Command("cancel"))
    async def cancel(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.unregister_steps(message.from_user.id)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp, listen


async def test_an_update_nothing_waits_for_costs_one_lookup_and_reaches_the_handler(
    counting_store: CountingStore,
) -> None:
    log: list[str] = []
    dp, listen = build(log)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("hello")
        assert log == ["normal hello"]
        assert counting_store.calls == ["get"]
        assert len(listen.gates) == 0
        assert len(counting_store.cache) == 0


async def test_updates_without_a_user_or_chat_pass_straight_through() -> None:
    # a channel post has no sender; Listen on dp.message must let it through untouched
    seen: list[str] = []
    dp = Dispatcher()
    listen = aiostep.setup(dp)

    @dp.message()
    async def anything(message: Message) -> None:
        seen.append(message.text or "")

    async with BotSimulator(dp) as sim:
        chat = sim.group()
        update = sim._update(
            message={
                "message_id": 1,
                "date": 1_700_000_000,
                "chat": chat.model_dump(),
                "sender_chat": chat.model_dump(),
                "text": "anonymous admin",
            }
        )
        await sim.feed(update)
        assert seen == ["anonymous admin"]
        assert len(listen.gates) == 0


def leftovers(listen: aiostep.Listen) -> tuple[int, int]:
    """(conversations with an ordering gate, entries in the root store)."""
    return len(listen.gates), len(root_store().cache)  # type: ignore[attr-defined]


async def test_nothing_is_left_after_an_answered_wait() -> None:
    log: list[str] = []
    dp, listen = build(log)
    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("/ask")
        assert leftovers(listen) == (0, 1)  # the parked waiter, and no gate held
        await talk.send("x")
        assert log == ["waiter x"]
        assert leftovers(listen) == (0, 0)


async def test_nothing_is_left_after_a_wait_times_out() -> None:
    log: list[str] = []
    dp, listen = build(log)
    async with BotSimulator(dp) as sim:
        clock = sim.use_fake_clock()
        await sim.chat().send("/timed")
        await clock.advance(30)
        assert log == ["timed out"]
        assert leftovers(listen) == (0, 0)
        assert clock.timers == []


async def test_nothing_is_left_after_a_step_runs_or_expires_or_is_cancelled() -> None:
    log: list[str] = []
    dp, listen = build(log)
    async with BotSimulator(dp) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/step")
        await talk.send("a")
        assert leftovers(listen) == (0, 0) and clock.timers == []
        await talk.send("/step")
        await clock.advance(30)
        assert leftovers(listen) == (0, 0) and clock.timers == []
        await talk.send("/step")
        await talk.send("/cancel")
        assert leftovers(listen) == (0, 0) and clock.timers == []
        assert log == ["step 1 a"]


async def test_nothing_is_left_after_a_superseded_or_cancelled_wait() -> None:
    log: list[str] = []
    dp, listen = build(log)
    async with BotSimulator(dp) as sim:
        clock = sim.use_fake_clock()
        talk = sim.chat()
        await talk.send("/ask")
        await talk.send("/ask")  # supersedes the first wait
        await talk.send("/cancel")
        assert log == ["WaitSuperseded", "WaitCancelled"]
        assert sim.pending_tasks == []
        assert leftovers(listen) == (0, 0)
        assert clock.timers == []


async def test_nothing_is_left_after_many_users_talk_at_once() -> None:
    log: list[str] = []
    dp, listen = build(log)
    async with BotSimulator(dp) as sim:
        group = sim.group()
        talks = [sim.chat(sim.user(), group) for _ in range(5)]
        for talk in talks:
            await talk.send("/ask")
        for talk in talks:
            await talk.send("answer")
        assert len(log) == 5
        assert leftovers(listen) == (0, 0)


class _CountingClaims:
    """A storage that counts its claims (the real storage does the work)."""

    claims = 0

    async def claim(self, key: Any, **kwargs: Any) -> Any:
        self.claims += 1
        return await super().claim(key, **kwargs)  # type: ignore[misc]


class CountingMemory(_CountingClaims, AsyncMemoryStateStorage):
    pass


class CountingFile(_CountingClaims, FileStateStorage):
    pass


@pytest.mark.parametrize("kind", ["memory", "file"])
async def test_an_update_of_a_conversation_that_holds_nothing_makes_no_claim(
    kind: str, tmp_path: Path
) -> None:
    """A storage kept in this process knows at once that nothing is stored for the sender:
    the update goes to the handlers without a claim, and a handler asking what the routing
    found (`aiostep_seen`) is told "nothing" without a read."""
    storage: Any = CountingMemory() if kind == "memory" else CountingFile(tmp_path / "s.jsonl")
    dp = Dispatcher()
    listen = aiostep.setup(dp, storage=storage)
    seen: list[Any] = []

    async def step(message: Message) -> None:
        seen.append(f"step {message.text}")

    listen.registry.register(step, "t_hot.step", replace=True)

    @dp.message(Command("ask"))
    async def ask(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, "t_hot.step")

    @dp.message()
    async def normal(message: Message, aiostep_seen: aiostep.SeenRecords) -> None:
        assert message.from_user is not None
        seen.append(await aiostep_seen.read(f"{message.chat.id}:{message.from_user.id}@42"))

    async with BotSimulator(dp) as sim:
        talk = sim.chat()
        await talk.send("hello")  # File: this first claim loads the journal
        before = storage.claims
        await talk.send("hello again")
        assert storage.claims == before  # nothing stored for this user: no claim
        assert seen == [None, None]
        await talk.send("/ask")
        await talk.send("an answer")  # a step is stored now: the update claims it
        assert storage.claims > before
        assert seen[-1] == "step an answer"
    await storage.close()
