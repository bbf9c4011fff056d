"""A bot process for the end-to-end timeout tests: a one-step wizard that reminds and times
out. It reads user messages from stdin, one per line, feeds them to a real Dispatcher through
the test kit, and prints every message the bot sends, whether or not a user spoke
(``BOT text | lines``); the test kills it with SIGKILL and starts it again.

Usage: python timeout_bot.py STORAGE REMIND TIMEOUT   (``file:PATH`` or a ``redis://`` URL;
seconds)
"""

from __future__ import annotations

import asyncio
import sys
from enum import Enum, auto

from aiogram import Dispatcher
from aiogram.filters import CommandStart

import aiostep
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step


class Ask(Wizard, name="e2e.ask"):
    remind_after = float(sys.argv[2])
    timeout = float(sys.argv[3])

    class State(Enum):
        NAME = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    async def on_finish(self) -> None:
        await self.answer(f"Hello, {self.data['name']}")


def build(spec: str) -> Dispatcher:
    if spec.startswith("file:"):
        storage: object = aiostep.FileStateStorage(spec[len("file:") :])
    else:
        from aiostep.storage.redis import RedisStateStorage

        storage = RedisStateStorage(spec)
    dp = Dispatcher()
    Ask.setup(dp, entry=CommandStart(), storage=storage)
    return dp


async def main() -> None:
    async with BotSimulator(build(sys.argv[1]), settle_timeout=30) as sim:
        talk = sim.chat()

        async def show() -> None:
            # every message the bot sends, also those no user message caused
            shown = 0
            while True:
                sent = [m for m in talk.messages if m.from_bot]
                for record in sent[shown:]:
                    lines = [line for line in (record.message.text or "").splitlines() if line]
                    print("BOT " + " | ".join(lines), flush=True)
                shown = len(sent)
                await asyncio.sleep(0.02)

        printer = asyncio.create_task(show())
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            await talk.send(line)
        printer.cancel()


if __name__ == "__main__":
    asyncio.run(main())
