"""Where aiostep's CPU per update goes: its layers added one at a time over aiogram's echo
handler, measured in one run, per update of the dialog.

``bench_dialog.py`` compares whole contenders. This one takes them apart, on memory only (the
layers' own cost; Redis adds its round trips on top): the echo floor; the floor with aiostep's
``Listen`` installed and nothing pending (what every other update of a bot pays), without and
with a ``MemoryStateStorage``; ``register_next_step`` with the step held in-process, then stored
in ``MemoryStateStorage``; then the ``Wizard`` on that storage. aiogram's fastest FSM is
measured beside them. Each layer's cost is the difference between two rows of the same run.

    python benchmarks/bench_layers.py [--users 300] [--repeat 5]

It prints a markdown table; nothing is written. Like the other benchmarks it is never part of
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
from pathlib import Path

from aiogram import Bot
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
from scenario import STEP_LABELS, TEXTS, NullSession, interleaved

import aiostep
from aiostep import MemoryStateStorage


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


if __name__ == "__main__":
    main()
