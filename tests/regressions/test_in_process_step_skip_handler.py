"""An in-process next step is called "like the handler it stands in for", and a handler that
raises aiogram's ``SkipHandler`` declines the update. A persisted step that raises it stays
pending and the update goes on to the normal handlers; an in-process one was dropped and took
the update with it: neither the step nor any handler had it. Now it declines it the same way."""

from __future__ import annotations

from aiogram import Dispatcher, F
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator


def build(log: list[str], *, with_filter: bool) -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def age(message: Message) -> None:
        if not (message.text or "").isdigit():
            log.append(f"step declines {message.text}")
            raise SkipHandler()
        log.append(f"step takes {message.text}")

    @dp.message(Command("start"))
    async def start(message: Message, steps: aiostep.Steps) -> None:
        # a filter sends the update through Listen's general path, none through its fast one
        await steps.next_step(age, filter=F.text if with_filter else None, timeout=60)

    @dp.message()
    async def normal(message: Message) -> None:
        log.append(f"normal {message.text}")

    return dp


async def test_an_in_process_step_raising_skip_handler_stays_pending_and_passes_it_on() -> None:
    for with_filter in (False, True):
        log: list[str] = []
        async with BotSimulator(build(log, with_filter=with_filter)) as sim:
            clock = sim.use_fake_clock()
            talk = sim.chat()
            await talk.send("/start")
            await talk.send("what?")
            await talk.send("42")
            await talk.send("more")
            assert log == ["step declines what?", "normal what?", "step takes 42", "normal more"]
            # a step that declined keeps its timeout: it expires as registered
            await talk.send("/start")
            await talk.send("hm")
            await clock.advance(61)
            await talk.send("7")
            assert log[-3:] == ["step declines hm", "normal hm", "normal 7"]
