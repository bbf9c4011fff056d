"""The playground: talk to a bot or wizard in the terminal, no token needed.

It runs the real Dispatcher through [`aiostep.testing.BotSimulator`][aiostep.testing.BotSimulator];
inline buttons are shown numbered (type the number to press one), ``/restart`` simulates a process
restart (the conversation resumes with ``--storage file:PATH`` or a Redis URL; memory starts empty),
and ``/quit`` or end of input leaves. When input is not a terminal it reads one user message per
line and prints the whole transcript, so it works in scripts.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.storage import MemoryStateStorage
from aiostep.testing import BotSimulator, Conversation
from aiostep_dialogs.loading import Target, load_target

__all__ = ["make_storage", "run_playground"]

HELP = (
    "Type messages to the bot. A number presses the numbered button; "
    "/restart simulates a restart; /quit leaves."
)


def make_storage(spec: str) -> Any:
    """A storage from ``memory``, ``file:PATH`` or a ``redis://`` URL."""
    if spec == "memory":
        return MemoryStateStorage()
    if spec.startswith("file:"):
        from aiostep.storage import FileStateStorage

        return FileStateStorage(spec[len("file:") :])
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from aiostep.storage.redis import RedisStateStorage

        return RedisStateStorage(spec)
    raise SystemExit(f"--storage {spec!r}: use memory, file:PATH or a redis:// URL")


def _factory(target: Target, storage_spec: str) -> Any:
    def build() -> Dispatcher:
        storage = make_storage(storage_spec)
        if target.build is not None:
            dp: Dispatcher = target.build(storage)
            return dp
        assert target.wizard is not None
        dp = Dispatcher()
        target.wizard.setup(dp, entry=Command("start"), storage=storage)
        return dp

    return build


class _Screen:
    """Prints what happened in the chat since the last call."""

    def __init__(self, talk: Conversation, out: TextIO, echo_user: bool) -> None:
        self.talk = talk
        self.out = out
        self.echo_user = echo_user
        self.shown = 0

    def buttons(self) -> list[str]:
        """The inline buttons of the bot's newest message, in order (older ones are stale)."""
        for record in reversed(self.talk.messages):
            if not record.deleted:
                return [text for row in record.buttons for text in row]
        return []

    def flush(self) -> None:
        lines = self.talk.sim.session.chat_log(self.talk.chat).lines
        for line in lines[self.shown :]:
            if not self.echo_user and line.startswith(("user> ", "user clicked")):
                continue  # the person at the terminal typed it already
            self.out.write(line + "\n")
        self.shown = len(lines)
        buttons = self.buttons()
        if buttons:
            numbered = "  ".join(f"{i}) {text}" for i, text in enumerate(buttons, 1))
            self.out.write(f"  press: {numbered}\n")
        self.out.flush()


async def _play(
    target: Target, storage_spec: str, user_id: int, send_start: bool, stdin: TextIO, out: TextIO
) -> int:
    interactive = stdin.isatty()
    async with BotSimulator(_factory(target, storage_spec)) as sim:
        talk = sim.chat(sim.user(id=user_id, first_name="You"))
        screen = _Screen(talk, out, echo_user=not interactive)
        if interactive:
            out.write(HELP + "\n")
        if send_start:
            await talk.send("/start")
            screen.flush()
        while True:
            if interactive:
                out.write("you> ")
                out.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            text = line.rstrip("\n")
            if not text.strip():
                continue
            if text.strip() == "/quit":
                break
            if text.strip() == "/restart":
                await sim.restart()
                note = "" if storage_spec != "memory" else " (memory storage: state is gone)"
                out.write(f"--- restarted{note} ---\n")
                screen.shown = len(sim.session.chat_log(talk.chat).lines)
                continue
            buttons = screen.buttons()
            choice = text.strip()
            if choice.isdigit() and 1 <= int(choice) <= len(buttons):
                await talk.click(buttons[int(choice) - 1])
            else:
                await talk.send(text)
            screen.flush()
    return 0


def run_playground(
    target: str,
    *,
    storage: str = "memory",
    user_id: int = 1001,
    send_start: bool = True,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Load ``target`` (file, module or ``module:Class``) and talk to it; returns exit status."""
    loaded = load_target(target)
    return asyncio.run(
        _play(loaded, storage, user_id, send_start, stdin or sys.stdin, stdout or sys.stdout)
    )
