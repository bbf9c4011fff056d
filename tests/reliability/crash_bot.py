"""A bot process for the crash tests: a 4-step wizard whose third step is slow (a database, an
API call...). It reads user messages from stdin, one per line, feeds them to a real Dispatcher
through the test kit and prints what the bot answers; the test kills it with SIGKILL.

Usage: python crash_bot.py STORAGE [raw]   (``file:PATH`` or a ``redis://`` URL; ``raw``: the
same questions as raw persisted next steps instead of a wizard)
"""

from __future__ import annotations

import asyncio
import sys
from enum import Enum, auto
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import CommandStart
from aiogram.types import Message

import aiostep
from aiostep.testing import BotSimulator
from aiostep_dialogs import Wizard, step, v


class Order(Wizard, name="crash.order"):
    class State(Enum):
        NAME = auto()
        CITY = auto()
        AGE = auto()
        CONFIRM = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.CITY, prompt="Which city?")
    async def city(self, value: str) -> None:
        self.data["city"] = value

    @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        print(f"SLOW STEP {value}", flush=True)
        await asyncio.sleep(1.0)  # the window a crash falls into
        self.data["age"] = value

    @step(State.CONFIRM, prompt="{name}, {city}, {age}. Correct?", choices=["yes", "no"])
    async def confirm(self, value: str) -> Any:
        return self.finish()

    async def on_finish(self) -> None:
        await self.answer(f"Done: {self.data['name']} {self.data['city']} {self.data['age']}")


def storage_of(spec: str) -> Any:
    if spec.startswith("file:"):
        return aiostep.FileStateStorage(spec[len("file:") :])
    from aiostep.storage.redis import RedisStateStorage

    return RedisStateStorage(spec)


@aiostep.persisted_step("crash.raw.age")
async def raw_age(message: Message, name: str, city: str) -> None:
    print(f"SLOW STEP {message.text}", flush=True)
    await asyncio.sleep(1.0)
    assert message.from_user is not None
    await aiostep.register_next_step(
        message.from_user.id, raw_done, kwargs={"name": name, "city": city, "age": message.text}
    )
    await message.answer(f"{name}, {city}, {message.text}. Correct?")


@aiostep.persisted_step("crash.raw.city")
async def raw_city(message: Message, name: str) -> None:
    assert message.from_user is not None
    await aiostep.register_next_step(
        message.from_user.id, raw_age, kwargs={"name": name, "city": message.text}
    )
    await message.answer("How old are you?")


@aiostep.persisted_step("crash.raw.name")
async def raw_name(message: Message) -> None:
    assert message.from_user is not None
    await aiostep.register_next_step(message.from_user.id, raw_city, kwargs={"name": message.text})
    await message.answer("Which city?")


@aiostep.persisted_step("crash.raw.done")
async def raw_done(message: Message, name: str, city: str, age: str) -> None:
    await message.answer(f"Done: {name} {city} {age}")


def build(spec: str, raw: bool) -> Dispatcher:
    dp = Dispatcher()
    # a short lease, so the test need not wait 5 s for a dead worker's claim to run out
    aiostep.setup(dp, storage=storage_of(spec), step_lease=1.0)
    Order.setup(dp)

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        if not raw:
            await Order.start(message)
            return
        assert message.from_user is not None
        await aiostep.register_next_step(message.from_user.id, raw_name)  # registered first
        await message.answer("What is your name?")

    @dp.message()
    async def fallback(message: Message) -> None:
        await message.answer(f"fallback: {message.text}")

    return dp


async def main() -> None:
    raw = sys.argv[2:] == ["raw"]
    async with BotSimulator(build(sys.argv[1], raw), settle_timeout=30) as sim:
        talk = sim.chat()
        print("READY", flush=True)
        loop = asyncio.get_running_loop()
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            await talk.send(line)
            lines = [line for line in (talk.last or "").splitlines() if line]
            print("BOT " + " | ".join(lines), flush=True)  # one line per answer


if __name__ == "__main__":
    asyncio.run(main())
