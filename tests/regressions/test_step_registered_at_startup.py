"""A waiter or step registered in a startup hook (asking the admin something when the bot
starts, say) had no bot in its key: the process had seen no update yet, so "the only bot seen"
was none, and the user's answer (whose key names the bot) went to the normal handlers.
``aiostep.setup`` now notes the bots the Dispatcher starts with."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.types import Message

import aiostep
from aiostep import keys

if TYPE_CHECKING:
    from conftest import Backend

ADMIN = 1001  # the simulator's default user, in their private chat


@pytest.fixture(autouse=True)
def no_bots_seen_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    # the process-wide record of bots seen: other tests in this process saw the same bot
    monkeypatch.setattr(keys, "seen_bots", set())


@pytest.fixture
def answer_step() -> Iterator[tuple[str, list[str]]]:
    log: list[str] = []
    name = f"test.startup-answer.{uuid.uuid4().hex[:8]}"

    @aiostep.persisted_step(name)
    async def answer(message: Message) -> None:
        log.append(f"step {message.text}")

    yield name, log
    aiostep.registry.unregister(name)


async def test_a_step_registered_in_a_startup_hook_takes_the_users_answer(
    backend: Backend, answer_step: tuple[str, list[str]]
) -> None:
    name, log = answer_step

    def setup(dp: Dispatcher, storage: Any) -> None:
        aiostep.setup(dp, storage=storage)

        async def ask_admin(bot: Bot) -> None:
            await aiostep.register_next_step(ADMIN, name)

        dp.startup.register(ask_admin)

        @dp.message()
        async def normal(message: Message) -> None:
            log.append(f"normal {message.text}")

    sim = backend.simulator(setup)
    talk = sim.chat()
    assert talk.user.id == ADMIN
    await talk.send("yes")
    await talk.send("again")
    assert log == ["step yes", "normal again"]
