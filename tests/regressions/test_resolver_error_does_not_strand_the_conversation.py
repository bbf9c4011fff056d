"""A step resolver (``StepRegistry.add_resolver``) that raised left the pending step claimed by
the update that asked it: the error reached ``dp.errors``, but every later update of that
conversation found the step busy and waited ``busy_wait`` (30 s) before reaching the handlers,
until a restart (memory, File) or the claim's lease ran out (Redis). Now the claim ends, the
step is offered again, and the next update is routed at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep import RegisteredStep, StateContext
from aiostep.storage.base import Patch

if TYPE_CHECKING:
    from conftest import Backend


async def test_a_resolver_that_raises_leaves_the_step_unclaimed(backend: Backend) -> None:
    log: list[str] = []
    reg = aiostep.StepRegistry()
    asked: list[str] = []

    async def renamed(message: Message) -> None:
        log.append(f"renamed step {message.text}")

    def resolver(name: str, record: StateContext) -> RegisteredStep | None:
        asked.append(name)
        if len(asked) == 1:
            raise RuntimeError("a bug in the resolver")
        return RegisteredStep(name=name, callback=renamed)

    reg.add_resolver("old.", resolver)

    def setup(dp: Dispatcher, storage: Any) -> None:
        listen = aiostep.setup(dp, storage=storage, registry=reg)

        @dp.message(Command("start"))
        async def start(message: Message) -> None:
            # a step stored under a name a deploy removed
            assert message.from_user is not None and message.bot is not None
            assert listen.storage is not None
            await listen.storage.apply(
                f"{message.chat.id}:{message.from_user.id}@{message.bot.id}",
                Patch(callback="old.step", token="t1", accepts=",message,", chat_id=1001),
            )

    sim = backend.simulator(setup)
    talk = sim.chat()
    await talk.send("/start")
    with pytest.raises(RuntimeError, match="a bug in the resolver"):
        await talk.send("first")
    await talk.send("second")  # routed at once (the simulator gives up after 5 s)
    assert log == ["renamed step second"]
