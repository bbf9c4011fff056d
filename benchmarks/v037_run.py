"""aiostep 0.3.7's ``register_next_step`` and the echo floor, timed in a process of their own.

aiostep 0.3.7 (the PyPI release this project grew from) is a package named ``aiostep`` too, so
it cannot be imported beside this project's: ``bench_dialog.py`` runs this script in a
subprocess, with the directory 0.3.7 was installed into (``v037.CACHE``) put first on
``sys.path`` before anything imports ``aiostep``. It runs the same dialog (``scenario.py``), the
same way (``measure.timed_run`` / ``measure.heap_run``: warm-up, interleaved users, the
five-texts check, ``time.process_time()``, tracemalloc), and the echo floor beside it, so that
0.3.7's figure can be read against a floor measured in the same process. It prints JSON.

    python benchmarks/v037_run.py CACHE_DIR time --users 300
    python benchmarks/v037_run.py CACHE_DIR heap --users 200
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    # before anything imports `aiostep`: 0.3.7 (and the dependencies it pins) must win over
    # this project's aiostep on PYTHONPATH or its editable install
    sys.path.insert(0, sys.argv[1])

import argparse
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from aiogram import Dispatcher
from aiogram.filters import CommandStart
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import Message
from measure import RoundTrips, heap_run, timed_run
from scenario import (
    AGE_PROMPT,
    AGE_REPROMPT,
    CONFIRM_ERROR,
    EXPECTED,
    NAME_PROMPT,
    TEXTS,
    confirm_prompt,
    parse_age,
    welcome,
)

import aiostep  # 0.3.7 here: main() checks it
from aiostep import aiogram_dialect

FLOOR = "floor: aiogram echo handler"
V037 = "aiostep 0.3.7 register_next_step"


@dataclass
class Built:
    """What ``measure`` needs of ``contenders.Built`` (contenders.py imports this project's
    aiostep, which cannot be imported here)."""

    dp: Dispatcher
    close: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Contender:
    """What ``measure`` needs of ``contenders.Contender``."""

    name: str
    build: Callable[[str, Any], Built | None]
    expected: Mapping[str, int] = field(default_factory=lambda: dict(EXPECTED))


def build_echo(kind: str, env: Any) -> Built:
    """``contenders.build_echo`` on memory: one async handler answering "ok", no state."""
    storage = MemoryStorage()
    dp = Dispatcher(storage=storage)

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer("ok")

    return Built(dp, storage.close)


# -- the dialog, in 0.3.7's API ---------------------------------------------------------------
# Its README's form: `Listen()` as the message outer middleware, steps as plain async functions
# taking the message, the data carried as `kwargs=` (a functools.partial in its root store, an
# unbounded cachebox Cache). Its `Listen` calls a registered step itself and returns, without
# the Dispatcher's handler lookup: the fastest way 0.3.7 offers, and its only way.
async def _start(message: Message) -> None:
    user = message.from_user.id if message.from_user else message.chat.id
    await aiostep.register_next_step(user, _name)
    await message.answer(NAME_PROMPT)


async def _name(message: Message) -> None:
    user = message.from_user.id if message.from_user else message.chat.id
    if not message.text:
        await aiostep.register_next_step(user, _name)
        await message.answer(NAME_PROMPT)
        return
    await aiostep.register_next_step(user, _age, kwargs={"name": message.text})
    await message.answer(AGE_PROMPT)


async def _age(message: Message, name: str) -> None:
    user = message.from_user.id if message.from_user else message.chat.id
    value = parse_age(message.text)
    if value is None:
        await aiostep.register_next_step(user, _age, kwargs={"name": name})
        await message.answer(AGE_REPROMPT)
        return
    await aiostep.register_next_step(user, _confirm, kwargs={"name": name, "age": value})
    await message.answer(confirm_prompt(name, value))


async def _confirm(message: Message, name: str, age: int) -> None:
    user = message.from_user.id if message.from_user else message.chat.id
    answer = (message.text or "").strip().casefold()
    if answer == "yes":
        await message.answer(welcome(name))  # no next step: the conversation ends
    elif answer == "no":
        await aiostep.register_next_step(user, _name)
        await message.answer(NAME_PROMPT)
    else:
        await aiostep.register_next_step(user, _confirm, kwargs={"name": name, "age": age})
        await message.answer(CONFIRM_ERROR)


def build_v037(kind: str, env: Any) -> Built:
    """``dp.message.outer_middleware(aiogram_dialect.Listen())`` and a ``CommandStart()``
    handler registering the first step; 0.3.7's in-memory default (its root store)."""
    storage = MemoryStorage()
    dp = Dispatcher(storage=storage)
    dp.message.outer_middleware(aiogram_dialect.Listen())
    dp.message.register(_start, CommandStart())
    return Built(dp, storage.close)


CONTENDERS = (
    Contender(FLOOR, build_echo, {"ok": len(TEXTS)}),
    Contender(V037, build_v037),
)


def _versions() -> dict[str, str]:
    found = {"aiostep": getattr(aiostep, "__version__", "?")}
    for dist in ("cachebox", "msgspec", "qsave"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


async def measure(mode: str, users: int) -> dict[str, Any]:
    """``time``: one timed run of the floor, then of 0.3.7; ``heap``: 0.3.7's heap run."""
    out: dict[str, Any] = {"versions": _versions()}
    if mode == "time":
        for contender in CONTENDERS:
            # no Redis: the round-trip counter is never installed, nothing to flush
            sample = await timed_run(contender, "memory", None, users, RoundTrips(), None, _pass)
            assert sample is not None
            out[contender.name] = asdict(sample)
    else:
        heap = await heap_run(CONTENDERS[1], "memory", None, users)
        assert heap is not None
        out[V037] = asdict(heap)
    return out


def _pass() -> None:
    return None


def main() -> None:
    """Check that 0.3.7 is the ``aiostep`` imported, measure, print JSON on stdout."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("cache", type=Path, help="where aiostep 0.3.7 is installed")
    parser.add_argument("mode", choices=("time", "heap"))
    parser.add_argument("--users", type=int, default=300)
    args = parser.parse_args()
    where = Path(aiostep.__file__).resolve()
    if (
        getattr(aiostep, "__version__", None) != "0.3.7"
        or args.cache.resolve() not in where.parents
    ):
        raise SystemExit(f"imported aiostep {where}, not 0.3.7 from {args.cache}")
    logging.disable(logging.INFO)  # aiogram logs every update at INFO
    print(json.dumps(asyncio.run(measure(args.mode, args.users))))


if __name__ == "__main__":
    main()
