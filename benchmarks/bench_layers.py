"""Where aiostep's CPU per update goes: its layers added one at a time over aiogram's echo
handler, measured in one run, per update of the dialog.

``bench_dialog.py`` compares whole contenders. This one takes them apart, on memory only (the
layers' own cost; Redis adds its round trips on top): the echo floor; the floor with aiostep's
``Listen`` installed and nothing pending (what every other update of a bot pays), without and
with a ``MemoryStateStorage``; ``register_next_step`` with the step held in-process, then stored
in ``MemoryStateStorage``; then the ``Wizard`` on that storage. aiogram's fastest FSM is
measured beside them. Each layer's cost is the difference between two rows of the same run.

A second table shows what the bot's other updates pay (an ordinary text message, a press on
one of the bot's own buttons, handled by the bot's own router): alone, with aiostep set up,
and with one and three wizards set up before that router.

    python benchmarks/bench_layers.py [--users 300] [--repeat 5]

It prints markdown tables; nothing is written. Like the other benchmarks it is never part of
the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from pathlib import Path

from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message, Update
from contenders import (
    Built,
    Contender,
    Env,
    build_echo,
    build_fsm_fast,
    build_next_step,
    build_wizard,
)
from measure import USER_BASE, _warm_up, check_dialog
from scenario import STEP_LABELS, TEXTS, NullSession, interleaved, make_update

import aiostep
from aiostep import MemoryStateStorage
from aiostep_dialogs import Wizard, step


def _echo_with_listen(kind: str, env: Env) -> Built:
    """The echo floor with ``aiostep.setup(dp)``: ``Listen`` runs, nothing is ever pending."""
    built = build_echo("memory", env)
    aiostep.setup(built.dp)
    return built


def _echo_with_listen_and_storage(kind: str, env: Env) -> Built:
    """The same with a ``MemoryStateStorage``: ``Listen`` also asks it about each update."""
    built = build_echo("memory", env)
    storage = MemoryStateStorage()
    aiostep.setup(built.dp, storage=storage)
    return built


@dataclass(frozen=True)
class Layer:
    """A row: a contender on one storage, and the row its layer is measured against."""

    name: str
    contender: Contender
    kind: str
    over: str | None = None


ECHO = {"ok": len(TEXTS)}
LAYERS = (
    Layer("floor: aiogram echo handler", Contender("floor", build_echo, (), ECHO), "memory"),
    Layer(
        "floor + aiostep Listen, nothing pending",
        Contender("listen", _echo_with_listen, (), ECHO),
        "memory",
        over="floor: aiogram echo handler",
    ),
    Layer(
        "floor + aiostep Listen with a MemoryStateStorage, nothing pending",
        Contender("listen+storage", _echo_with_listen_and_storage, (), ECHO),
        "memory",
        over="floor + aiostep Listen, nothing pending",
    ),
    Layer(
        "register_next_step, step held in-process",
        Contender("ns", build_next_step, ()),
        "in-process",
        over="floor + aiostep Listen, nothing pending",
    ),
    Layer(
        "register_next_step, step stored in MemoryStateStorage",
        Contender("ns", build_next_step, ()),
        "memory",
        over="register_next_step, step held in-process",
    ),
    Layer(
        "Wizard on MemoryStateStorage",
        Contender("wizard", build_wizard, ()),
        "memory",
        over="register_next_step, step stored in MemoryStateStorage",
    ),
    Layer("aiogram FSM (fastest), MemoryStorage", Contender("fsm", build_fsm_fast, ()), "memory"),
)


# -- what a bot's other updates pay ------------------------------------------------------------
# A bot's handlers see every update no conversation took: most of a real bot's traffic. Here
# an ordinary text message and a press on one of the bot's own buttons, each handled by the
# bot's router included after the wizards (aiogram tries a Dispatcher's routers in order).
OTHER_WIZARDS = 3


def _other_wizard(index: int) -> type[Wizard]:
    class Other(Wizard, name=f"bench-layers-{index}"):
        class State(Enum):
            ONLY = auto()

        @step(State.ONLY, prompt="?")
        async def only(self, value: str) -> None:
            self.data["only"] = value

    return Other


_OTHERS = tuple(_other_wizard(i) for i in range(OTHER_WIZARDS))


def _bot_beside(wizards: int, listen: bool) -> Dispatcher:
    dp = Dispatcher()
    if listen:
        aiostep.setup(dp, storage=MemoryStateStorage())
    for wizard in _OTHERS[:wizards]:
        wizard.setup(dp, entry=Command(wizard.wizard_id))
    own = Router(name="the bot's own")

    @own.message()
    async def echo(message: Message) -> None:
        await message.answer("ok")

    @own.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer()

    dp.include_router(own)
    return dp


OTHER_BOTS = (
    ("the bot's router alone", 0, False),
    ("+ aiostep.setup (MemoryStateStorage)", 0, True),
    ("+ 1 wizard", 1, True),
    (f"+ {OTHER_WIZARDS} wizards", OTHER_WIZARDS, True),
)


def _other_update(i: int, bot: Bot, press: bool) -> Update:
    """A text message (``scenario.make_update``'s), or a press of one of the bot's own
    buttons under it."""
    update = make_update(USER_BASE + i, "hi", bot, update_id=i)
    if not press:
        return update
    message = update.message
    assert message is not None and message.from_user is not None
    query = {
        "id": str(i),
        "from": message.from_user.model_dump(),
        "chat_instance": "c",
        "data": "menu:1",
        "message": message.model_dump(by_alias=True),
    }
    return Update.model_validate({"update_id": i, "callback_query": query}, context={"bot": bot})


async def other_updates(users: int, repeat: int) -> dict[str, list[list[float]]]:
    """CPU µs per ordinary message and per press of the bot's own button, for each bot."""
    runs: dict[str, list[list[float]]] = {name: [] for name, _, _ in OTHER_BOTS}
    for _ in range(repeat):
        for name, wizards, listen in OTHER_BOTS:
            dp = _bot_beside(wizards, listen)
            bot = Bot("42:TEST", session=NullSession())
            spent = []
            for press in (False, True):
                updates = [_other_update(i, bot, press) for i in range(users * 5)]
                for update in updates[:20]:  # warm-up
                    await dp.feed_update(bot, update)
                updates = updates[20:]
                gc.collect()
                started = time.process_time()
                for update in updates:
                    await dp.feed_update(bot, update)
                spent.append((time.process_time() - started) / len(updates) * 1e6)
            await bot.session.close()
            runs[name].append(spent)
    return runs


def other_report(runs: dict[str, list[list[float]]]) -> str:
    """The second table: medians, and each row against the bot's router alone."""
    medians = {
        name: [statistics.median(run[i] for run in samples) for i in range(2)]
        for name, samples in runs.items()
    }
    alone = medians[OTHER_BOTS[0][0]]
    lines = [
        "What the bot's other updates pay (handled by its own router, included after the "
        "wizards), CPU µs per update:",
        "",
        "| bot | text message | × alone | press of its own button | × alone |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, _, _ in OTHER_BOTS:
        text, press = medians[name]
        lines.append(
            f"| {name} | {text:.1f} | {text / alone[0]:.2f}× | {press:.1f} | "
            f"{press / alone[1]:.2f}× |"
        )
    return "\n".join(lines)


async def per_update(layer: Layer, users: int, env: Env) -> list[float]:
    """CPU µs per update of each of the dialog's five updates, one run."""
    built = layer.contender.build(layer.kind, env)
    assert built is not None
    session = NullSession()
    bot = Bot("42:TEST", session=session)
    try:
        await _warm_up(built.dp, bot)
        updates = list(interleaved(bot, range(USER_BASE, USER_BASE + users)))
        session.texts.clear()
        spent = [0.0] * len(TEXTS)
        gc.collect()
        clock: Callable[[], float] = time.process_time
        for i, update in enumerate(updates):
            started = clock()
            await built.dp.feed_update(bot, update)
            spent[i // users] += clock() - started
        check_dialog(session, users, layer.contender, layer.kind)
        return [s / users * 1e6 for s in spent]
    finally:
        await built.close()
        await bot.session.close()


async def run(users: int, repeat: int) -> dict[str, list[list[float]]]:
    """Every layer ``repeat`` times, interleaved (each once, then again)."""
    env = Env(None, Path(tempfile.mkdtemp(prefix="aiostep-layers-")))
    runs: dict[str, list[list[float]]] = {layer.name: [] for layer in LAYERS}
    for _ in range(repeat):
        for layer in LAYERS:
            runs[layer.name].append(await per_update(layer, users, env))
    return runs


def report(runs: dict[str, list[list[float]]], users: int, repeat: int) -> str:
    """The table: per update type and on average, medians of the runs, and each layer's
    cost over the row it builds on."""
    medians = {
        name: [statistics.median(run[i] for run in samples) for i in range(len(TEXTS))]
        for name, samples in runs.items()
    }
    average = {name: sum(values) / len(values) for name, values in medians.items()}
    floor = average[LAYERS[0].name]
    head = " | ".join(STEP_LABELS)
    lines = [
        f"{users} users × {len(TEXTS)} updates, median of {repeat} runs, CPU µs per update "
        "(`time.process_time()`).",
        "",
        f"| layer | {head} | average | × floor | its own cost (over) |",
        "| --- | " + " | ".join("---:" for _ in STEP_LABELS) + " | ---: | ---: | --- |",
    ]
    for layer in LAYERS:
        cells = " | ".join(f"{v:.1f}" for v in medians[layer.name])
        own = ""
        if layer.over is not None:
            own = f"{average[layer.name] - average[layer.over]:+.1f} ({layer.over})"
        lines.append(
            f"| {layer.name} | {cells} | {average[layer.name]:.1f} | "
            f"{average[layer.name] / floor:.2f}× | {own} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse the options, run, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=300, help="users per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per layer")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # aiogram logs every update at INFO
    runs = asyncio.run(run(args.users, args.repeat))
    print(report(runs, args.users, args.repeat))
    print()
    print(other_report(asyncio.run(other_updates(args.users, args.repeat))))


if __name__ == "__main__":
    main()
