"""Cost of one conversation turn through a real aiogram Dispatcher, aiostep vs its peers.

Every contender runs the same 3-turn conversation (/start -> name -> age -> done, each turn
answering with one message) for many users, measured in the same run, and the report gives
microseconds per update and the ratio to aiogram's own FSM. Only the network is replaced (a
session that answers every call with a prebuilt Message), so what is timed is the framework.

    python benchmarks/bench_conversation.py [--users 2000] [--repeat 5]

aiogram_dialog is measured when installed (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from enum import Enum, auto
from typing import Any

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.base import BaseSession
from aiogram.filters import CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Chat, Message, MessageEntity, Update, User

import aiostep
from aiostep.storage import MemoryStateStorage
from aiostep_dialogs import Wizard, step, v

NOW = datetime(2024, 1, 1)


class NullSession(BaseSession):
    """Answers every Bot API call with one prebuilt Message (or True)."""

    def __init__(self) -> None:
        super().__init__()
        self.reply = Message(message_id=1, date=NOW, chat=Chat(id=1, type="private"), text="ok")

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        return self.reply if method.__returning__ is Message else True


# -- contenders -------------------------------------------------------------------------------
class Form(StatesGroup):
    name = State()
    age = State()


def build_fsm() -> Dispatcher:
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message, state: FSMContext) -> None:
        await state.set_state(Form.name)
        await message.answer("What is your name?")

    @dp.message(StateFilter(Form.name), F.text)
    async def name(message: Message, state: FSMContext) -> None:
        await state.update_data(name=message.text)
        await state.set_state(Form.age)
        await message.answer("How old are you?")

    @dp.message(StateFilter(Form.age), F.text)
    async def age(message: Message, state: FSMContext) -> None:
        if not (message.text or "").isdigit():
            await message.answer("A number, please.")
            return
        data = await state.get_data()
        await state.clear()
        await message.answer(f"{data['name']}, {message.text}")

    return dp


def build_next_step() -> Dispatcher:
    dp = Dispatcher()
    aiostep.setup(dp)

    async def age(message: Message, name: str) -> None:
        if not (message.text or "").isdigit():
            await message.answer("A number, please.")
            await aiostep.register_next_step(message.chat.id, age, kwargs={"name": name})
            return
        await message.answer(f"{name}, {message.text}")

    async def name(message: Message) -> None:
        await message.answer("How old are you?")
        await aiostep.register_next_step(message.chat.id, age, kwargs={"name": message.text})

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("What is your name?")
        await aiostep.register_next_step(message.chat.id, name)

    return dp


class BenchSignup(Wizard, name="bench-signup"):
    class State(Enum):
        NAME = auto()
        AGE = auto()

    @step(State.NAME, prompt="What is your name?")
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(State.AGE, prompt="How old are you?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['name']}, {self.data['age']}")


def build_wizard() -> Dispatcher:
    dp = Dispatcher()
    BenchSignup.setup(dp, entry=CommandStart(), storage=MemoryStateStorage())
    return dp


def build_aiogram_dialog() -> Dispatcher | None:
    try:
        from aiogram_dialog import Dialog, DialogManager, StartMode, Window, setup_dialogs
        from aiogram_dialog.widgets.input import MessageInput
        from aiogram_dialog.widgets.text import Const, Format
    except ImportError:
        return None

    class SG(StatesGroup):
        name = State()
        age = State()
        done = State()

    async def on_name(message: Message, _: Any, manager: DialogManager) -> None:
        manager.dialog_data["name"] = message.text
        await manager.next()

    async def on_age(message: Message, _: Any, manager: DialogManager) -> None:
        if not (message.text or "").isdigit():
            return
        name = manager.dialog_data["name"]
        await manager.done()
        await message.answer(f"{name}, {message.text}")

    dialog = Dialog(
        Window(Const("What is your name?"), MessageInput(on_name), state=SG.name),
        Window(Format("How old are you?"), MessageInput(on_age), state=SG.age),
    )
    dp = Dispatcher()
    dp.include_router(dialog)

    @dp.message(CommandStart())
    async def start(message: Message, dialog_manager: DialogManager) -> None:
        await dialog_manager.start(SG.name, mode=StartMode.RESET_STACK)

    setup_dialogs(dp)
    return dp


# -- the run ----------------------------------------------------------------------------------
def updates_for(users: int) -> list[Update]:
    """The 3-turn conversation of each user, turn by turn (users interleaved)."""
    out: list[Update] = []
    uid = 0
    for text in ("/start", "Alice", "33"):
        for user in range(1, users + 1):
            uid += 1
            entities = (
                [MessageEntity(type="bot_command", offset=0, length=6)]
                if text == "/start"
                else None
            )
            out.append(
                Update(
                    update_id=uid,
                    message=Message(
                        message_id=uid,
                        date=NOW,
                        chat=Chat(id=user, type="private"),
                        from_user=User(id=user, is_bot=False, first_name="U"),
                        text=text,
                        entities=entities,
                    ),
                )
            )
    return out


async def measure(build: Callable[[], Dispatcher | None], users: int) -> float | None:
    dp = build()
    if dp is None:
        return None
    bot = Bot("42:TEST", session=NullSession())
    updates = updates_for(users)
    for update in updates[:3]:  # warm up the code paths (imports, caches)
        await dp.feed_update(bot, update)
    start = time.perf_counter()
    for update in updates:
        await dp.feed_update(bot, update)
    elapsed = time.perf_counter() - start
    return elapsed / len(updates) * 1e6


CONTENDERS: dict[str, Callable[[], Dispatcher | None]] = {
    "aiogram FSM (MemoryStorage)": build_fsm,
    "aiostep register_next_step": build_next_step,
    "aiostep_dialogs Wizard (memory)": build_wizard,
    "aiogram_dialog": build_aiogram_dialog,
}


def main() -> None:
    """Run every contender ``--repeat`` times and print the medians and ratios to the FSM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)  # aiogram logs every update at INFO
    results: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for _ in range(args.repeat):
        for name, build in CONTENDERS.items():  # interleaved, so drift hits all alike
            value = asyncio.run(measure(build, args.users))
            if value is not None:
                results[name].append(value)
    baseline = statistics.median(results["aiogram FSM (MemoryStorage)"])
    print(f"{args.users} users x 3 turns, median of {args.repeat} runs, same process")
    print(f"{'contender':34} {'us/update':>10} {'vs FSM':>8}")
    for name, values in results.items():
        if not values:
            print(f"{name:34} {'(not installed)':>19}")
            continue
        median = statistics.median(values)
        print(f"{name:34} {median:10.1f} {median / baseline:7.2f}x")


if __name__ == "__main__":
    main()
