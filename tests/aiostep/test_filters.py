"""``IsState``: route updates on the state kept in an aiostep storage (Memory, File, Redis)."""

from __future__ import annotations

import enum
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message
from cachebox import TTLCache

import aiostep
from aiostep import FileStateStorage, IsState, MemoryStateStorage
from aiostep.testing import BotSimulator


class Form(enum.Enum):
    NAME = 1
    AGE = 2


@pytest_asyncio.fixture(params=["memory", "file", "redis"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The seed's plain-call MemoryStateStorage, a FileStateStorage, a RedisStateStorage."""
    if request.param == "memory":
        yield MemoryStateStorage(TTLCache(1000, 86400))
        return
    if request.param == "file":
        made: Any = FileStateStorage(tmp_path / "states.journal", fsync=False)
    else:
        from aiostep.storage.redis import RedisStateStorage

        made = RedisStateStorage(request.getfixturevalue("redis_url"))
    yield made
    await made.close()


async def call(result: Any) -> Any:
    """Await what an async storage returns; the plain-call memory storage returns values."""
    return await result if inspect.isawaitable(result) else result


def build(storage: Any, log: list[str]) -> Dispatcher:
    dp = Dispatcher()

    @dp.message(IsState(Form.NAME, storage=storage))
    async def name(message: Message) -> None:
        log.append(f"NAME {message.text}")

    @dp.message(IsState(Form.AGE, "custom", storage=storage))
    async def age_or_custom(message: Message) -> None:
        log.append(f"AGE or custom {message.text}")

    @dp.message(IsState("*", storage=storage))
    async def any_state(message: Message) -> None:
        log.append(f"any state {message.text}")

    @dp.message(IsState(None, storage=storage))
    async def no_state(message: Message) -> None:
        log.append(f"no state {message.text}")

    return dp


async def test_is_state_routes_on_the_users_stored_state(storage: Any) -> None:
    log: list[str] = []
    async with BotSimulator(build(storage, log)) as sim:
        talk = sim.chat()
        uid = talk.user.id
        await talk.send("a")
        await call(storage.set_state(user_id=uid, state=Form.NAME))
        await talk.send("b")
        await call(storage.set_state(user_id=uid, state=Form.AGE))
        await talk.send("c")
        await call(storage.set_state(user_id=uid, state="custom"))
        await talk.send("d")
        await call(storage.set_state(user_id=uid, state="elsewhere"))
        await talk.send("e")
        await call(storage.delete_state(user_id=uid))
        await talk.send("f")
        assert log == [
            "no state a",
            "NAME b",
            "AGE or custom c",
            "AGE or custom d",
            "any state e",
            "no state f",
        ]


async def test_an_enum_state_is_stored_by_its_name(storage: Any) -> None:
    log: list[str] = []
    async with BotSimulator(build(storage, log)) as sim:
        talk = sim.chat()
        await call(storage.set_state(user_id=talk.user.id, state=Form.AGE))
        record = await call(storage.get_state(user_id=talk.user.id))
        assert record.current_state == "AGE"
        # the stored name matches the enum member and the plain name alike
        await call(storage.set_state(user_id=talk.user.id, state="NAME"))
        await talk.send("x")
        assert log == ["NAME x"]


async def test_is_state_keeps_users_apart(storage: Any) -> None:
    log: list[str] = []
    async with BotSimulator(build(storage, log)) as sim:
        group = sim.group()
        alice = sim.chat(sim.user(), group)
        bob = sim.chat(sim.user(), group)
        await call(storage.set_state(user_id=alice.user.id, state=Form.NAME))
        await bob.send("bob")
        await alice.send("alice")
        assert log == ["no state bob", "NAME alice"]


async def test_is_state_on_the_conversation_sees_the_state_set_with_a_step(
    storage: Any, step_name: Any
) -> None:
    log: list[str] = []

    @aiostep.persisted_step(step_name("is_state.age"))
    async def age(message: Message) -> None:
        log.append(f"step {message.text}")

    dp = Dispatcher()
    aiostep.setup(dp, storage=storage)

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, age, state=Form.AGE)

    @dp.message(IsState(Form.AGE, storage=storage, key="conversation"))
    async def in_age(message: Message) -> None:
        log.append(f"AGE {message.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        forum = sim.group(forum=True)
        for talk in (
            sim.chat(),
            sim.chat(sim.user(), sim.group()),
            sim.chat(None, forum, thread_id=3),
        ):
            log.clear()
            await talk.send("/start")
            await talk.send("30")  # the step takes it; the state stays
            await talk.send("31")
            await talk.send("/other")
            assert log == ["step 30", "AGE 31", "AGE /other"], talk


async def test_is_state_on_the_chat_reads_the_chats_state(storage: Any) -> None:
    log: list[str] = []
    dp = Dispatcher()

    @dp.message(IsState("quiet", storage=storage, key="chat"))
    async def quiet(message: Message) -> None:
        log.append(f"quiet {message.text}")

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    async with BotSimulator(dp) as sim:
        group = sim.group()
        alice, bob = sim.chat(sim.user(), group), sim.chat(sim.user(), group)
        await call(storage.set_state(user_id=group.id, state="quiet"))
        await alice.send("a")
        await bob.send("b")
        await sim.chat(alice.user).send("dm")
        assert log == ["quiet a", "quiet b", "normal dm"]
