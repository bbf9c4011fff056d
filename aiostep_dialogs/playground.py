"""The playground: talk to a bot or wizard in the terminal, no token needed.

It runs the real Dispatcher through [`aiostep.testing.BotSimulator`][aiostep.testing.BotSimulator];
inline buttons are shown numbered (type the number to press one), ``/restart`` simulates a process
restart (the conversation resumes with ``--storage file:PATH`` or a Redis URL; memory starts empty),
and ``/quit`` or end of input leaves.

What the bot sends on its own (a ``wait_for`` timeout, a reminder) is printed as it happens,
above the line being typed. A handler's exception is printed (a summary, and the traceback on
standard error) and the playground goes on, as aiogram's polling does. When input is not a
terminal it reads one user message per line and prints the whole transcript, so it works in
scripts; after the last line it waits a short grace period for what the bot still has to say.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from aiogram import Dispatcher
from aiogram.filters import Command

import aiostep
from aiostep.keys import ANYONE, ConversationKey, storage_key
from aiostep.storage import MemoryStateStorage, StateContext
from aiostep.testing import BotSimulator, Conversation, SettleTimeoutError
from aiostep_dialogs.loading import Target, load_target
from aiostep_dialogs.record import restore, stored_wizard_id
from aiostep_dialogs.registry import wizard_named
from aiostep_dialogs.render import send_prompt
from aiostep_dialogs.terminal import Console, open_console

__all__ = ["make_storage", "run_playground", "storage_spec"]

HELP = (
    "Type messages to the bot. A number presses the numbered button; "
    "/restart simulates a restart; /quit leaves."
)
#: How often the idle playground looks for what the bot said or raised meanwhile (seconds).
POLL = 0.05
#: The simulator's note on an exception it re-raises: the transcript, already on the screen.
_SIMULATOR_NOTE = "(raised by a handler in BotSimulator)"
_LIBRARY_DIRS = tuple(
    os.path.dirname(module.__file__ or "") + os.sep
    for module in (asyncio, aiostep, sys.modules["aiogram"], sys.modules["aiostep_dialogs"])
)


def _storage_problem(spec: str) -> str | None:
    """Why ``spec`` names no storage, or ``None`` if it does."""
    if spec == "memory" or spec.startswith(("file:", "redis://", "rediss://", "unix://")):
        if spec == "file:":
            return "file: needs a path (file:state.jsonl)"
        return None
    return "use memory, file:PATH or a redis:// URL"


def storage_spec(storage: str | None) -> str:
    """The storage to play on: ``storage`` if given, else ``$AIOSTEP_STORAGE`` (as the examples
    read it), else ``memory``."""
    if storage is not None:
        return storage
    return os.environ.get("AIOSTEP_STORAGE", "").strip() or "memory"


def make_storage(spec: str) -> Any:
    """A storage from ``memory``, ``file:PATH`` or a ``redis://`` URL."""
    problem = _storage_problem(spec)
    if problem is not None:
        raise SystemExit(f"--storage {spec!r}: {problem}")
    if spec == "memory":
        return MemoryStateStorage()
    if spec.startswith("file:"):
        from aiostep.storage import FileStateStorage

        return FileStateStorage(spec[len("file:") :])
    from aiostep.storage.redis import RedisStateStorage

    return RedisStateStorage(spec)


def _factory(target: Target, storage_spec: str) -> Dispatcher | Callable[[], Dispatcher]:
    if target.dispatcher is not None and target.build is None:
        return target.dispatcher  # made at import time: it cannot be built again

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


def _user_frame(exc: BaseException) -> str:
    """Where in the bot's own code ``exc`` was raised (``bot.py:12 in echo``), if anywhere."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename.startswith(_LIBRARY_DIRS):
            return f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
    return ""


def _traceback(exc: BaseException, short: bool) -> str:
    """``exc``'s traceback; ``short``: only the bot's own frames, if it has any."""
    notes = getattr(exc, "__notes__", None)
    if notes is not None:
        # the simulator's note repeats the transcript, which is on the screen already
        kept = [n for n in notes if not n.startswith(_SIMULATOR_NOTE)]
        setattr(exc, "__notes__", kept)  # noqa: B010 - Python 3.11+'s attribute
    try:
        report = traceback.TracebackException.from_exception(exc)
    finally:
        if notes is not None:
            setattr(exc, "__notes__", notes)  # noqa: B010
    own = [frame for frame in report.stack if not frame.filename.startswith(_LIBRARY_DIRS)]
    if short and own and len(own) < len(report.stack):
        report.stack = traceback.StackSummary.from_list(own)
        return "".join(report.format()).replace(
            "Traceback (most recent call last):",
            "Traceback (most recent call last; aiogram's and aiostep's frames left out):",
            1,
        )
    return "".join(report.format())


class _ConsoleLog(logging.Handler):
    """Log records (aiostep's warnings...) printed above the line being typed, not across it."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.show(self.format(record), error=True)
        except Exception:
            self.handleError(record)


def _listen(dp: Dispatcher) -> aiostep.Listen | None:
    for observer in dp.observers.values():
        for middleware in observer.outer_middleware:
            if isinstance(middleware, aiostep.Listen):
                return middleware
    return None


class _Screen:
    """Prints what happened in the chat since the last call."""

    def __init__(self, talk: Conversation, console: Console, echo_user: bool) -> None:
        self.talk = talk
        self.console = console
        self.echo_user = echo_user
        self.shown = 0

    def buttons(self) -> list[str]:
        """The inline buttons of the bot's newest message, in order (older ones are stale)."""
        for record in reversed(self.talk.messages):
            if not record.deleted:
                return [text for row in record.buttons for text in row]
        return []

    def skip(self) -> None:
        """Mark everything in the chat so far as shown."""
        self.shown = len(self.talk.sim.session.chat_log(self.talk.chat).lines)

    def flush(self) -> bool:
        """Print the chat's new lines (and the numbered buttons); whether there were any."""
        lines = self.talk.sim.session.chat_log(self.talk.chat).lines
        new = lines[self.shown :]
        self.shown = len(lines)
        if not new:
            return False
        text = [
            line
            for line in new
            # the person at the terminal typed it already
            if self.echo_user or not line.startswith(("user> ", "user clicked"))
        ]
        buttons = self.buttons()
        if buttons:
            numbered = "  ".join(f"{i}) {label}" for i, label in enumerate(buttons, 1))
            text.append(f"  press: {numbered}")
        if text:
            self.console.show("\n".join(text))
        return True


class _Playground:
    """One session: the simulator, the user's chat, and what is shown of it."""

    def __init__(
        self,
        target: Target,
        storage_spec: str,
        user_id: int,
        console: Console,
        interactive: bool,
        grace: float,
    ) -> None:
        self.target = target
        self.storage_spec = storage_spec
        self.console = console
        self.interactive = interactive
        self.grace = grace
        self.sim = BotSimulator(_factory(target, storage_spec))
        self.talk = self.sim.chat(self.sim.user(id=user_id, first_name="You"))
        self.screen = _Screen(self.talk, console, echo_user=not interactive)
        self.acting = False
        self.failures = 0
        self.loop = asyncio.get_running_loop()
        self.last_output = self.loop.time()

    @property
    def rebuildable(self) -> bool:
        return self.target.build is not None or self.target.dispatcher is None

    # -- what the bot does ---------------------------------------------------------------------

    def report(self, exc: BaseException) -> None:
        """Show ``exc`` and go on: a summary in the chat, the traceback on standard error."""
        self.failures += 1
        self.screen.flush()  # what the bot said before it failed
        self.console.show(_traceback(exc, short=self.interactive).rstrip("\n"), error=True)
        where = _user_frame(exc)
        summary = f"error> {type(exc).__name__}: {exc}" + (f"  ({where})" if where else "")
        if self.failures == 1:
            summary += "\n  (the bot goes on, as under aiogram's polling"
            summary += ")" if self.interactive else "; the traceback is on stderr)"
        self.console.show(summary)

    def on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A task the bot started itself failed, and nothing awaited it."""
        exc = context.get("exception")
        if isinstance(exc, Exception):
            self.report(exc)
        else:
            loop.default_exception_handler(context)

    def check(self) -> None:
        """Show what the bot said or raised since the last look."""
        try:
            self.sim.raise_failures()
        except Exception as exc:
            self.report(exc)
        if self.screen.flush():
            self.last_output = self.loop.time()

    async def watch(self) -> None:
        """While the user is idle, show what the bot says on its own."""
        while True:
            await asyncio.sleep(POLL)
            if not self.acting:
                self.check()

    async def act(self, action: Callable[[], Awaitable[Any]]) -> None:
        """Run one user action until the bot is idle; a handler's exception is shown."""
        self.acting = True
        try:
            await action()
        except SettleTimeoutError as exc:
            first = str(exc).splitlines()[0]
            self.console.show(f"note> {first}; what it says next shows when it says it")
        except Exception as exc:
            self.report(exc)
        finally:
            self.acting = False
        self.check()

    # -- commands of the playground ------------------------------------------------------------

    async def restart(self) -> None:
        if not self.rebuildable:
            self.console.show(
                f"note> /restart: {self.target.name} makes its Dispatcher when it is imported, "
                "so the playground cannot build a new one. Define build(storage=None) -> "
                "Dispatcher in it to simulate restarts."
            )
            return
        self.check()
        self.acting = True
        try:
            await self.sim.restart()
        except Exception as exc:
            self.report(exc)
        finally:
            self.acting = False
        note = "" if self.storage_spec != "memory" else " (memory storage: state is gone)"
        self.console.show(f"--- restarted{note} ---")
        self.screen.skip()

    async def show_where(self) -> None:
        """A conversation in progress in the storage: say where, and show its prompt again
        (the chat on Telegram would still show it; the simulated one starts empty)."""
        listen = _listen(self.sim.dispatcher)
        if listen is None or listen.storage is None:
            return
        record: StateContext | None = None
        for user_id in (self.talk.user.id, ANYONE):
            key = ConversationKey(self.talk.chat.id, user_id, None, self.sim.bot.id)
            record = await listen.storage.read(storage_key(key))
            if record is not None and (record.callback or record.current_state):
                break
        else:
            return
        wizard_cls = wizard_named(listen, stored_wizard_id(record))
        wizard = restore(wizard_cls, record, key, self.sim.bot, None) if wizard_cls else None
        if wizard is not None and wizard.state is not None:
            # no update: what the Dispatcher was given is what its prompts may ask for
            wizard.middleware_data = {**self.sim.dispatcher.workflow_data, "bot": self.sim.bot}
            self.console.show(
                f"--- resumed: {wizard.wizard_id}, step {wizard.state.name}; its prompt again ---"
            )
            await self.act(lambda: send_prompt(wizard, wizard._spec()))
            return
        parts = [f"next step {record.callback}" if record.callback else ""]
        parts.append(f"state {record.current_state}" if record.current_state else "")
        self.console.show(f"--- resumed: {', '.join(p for p in parts if p)} ---")

    # -- the session ---------------------------------------------------------------------------

    async def run(self, send_start: bool) -> int:
        try:
            await self.sim.start()
        except Exception as exc:  # aiogram's start_polling stops here too
            self.report(exc)
            return 1
        if self.interactive:
            self.console.show(HELP)
        if send_start:
            await self.act(lambda: self.talk.send("/start"))
        else:
            await self.act(self.show_where)
        watcher = asyncio.create_task(self.watch(), name="aiostep-playground-watch")
        try:
            while True:
                line = await self.console.readline()
                if line is None:
                    break
                text = line.strip()
                if not text:
                    continue
                if text == "/quit":
                    break
                if text == "/restart":
                    await self.restart()
                    continue
                buttons = self.screen.buttons()
                if text.isdigit() and 1 <= int(text) <= len(buttons):
                    await self.act(functools.partial(self.talk.click, buttons[int(text) - 1]))
                elif any(text in row for row in self.talk.keyboard or ()):
                    # a reply button's label: a request button shares what the app would
                    await self.act(functools.partial(self.talk.press, text))
                else:
                    await self.act(functools.partial(self.talk.send, line))
            if not self.interactive:
                await self.linger({watcher})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return 1 if self.failures else 0

    async def linger(self, ours: set[asyncio.Task[Any]]) -> None:
        """After the last line of a script: show what the bot still says, until it has nothing
        left running or due (a waiter, a reminder, a timeout...) or stayed quiet for ``grace``
        seconds."""
        ours = {*ours}
        current = asyncio.current_task()
        if current is not None:
            ours.add(current)
        started = self.last_output = self.loop.time()
        while True:
            self.check()
            now = self.loop.time()
            running = [task for task in asyncio.all_tasks() if task not in ours]
            quiet = now - self.last_output
            if not running and not self.awaiting_deadline() and quiet >= POLL:
                return
            if quiet >= self.grace or now - started >= 10 * self.grace:
                return
            await asyncio.sleep(POLL)

    def awaiting_deadline(self) -> bool:
        """Whether a reminder or a timeout is still due (the scheduler's timer is set)."""
        listen = _listen(self.sim.dispatcher)
        return listen is not None and listen.scheduler.next_wake is not None

    async def aclose(self) -> None:
        try:
            await self.sim.aclose()
        except Exception as exc:
            self.report(exc)


async def _play(
    target: Target,
    storage_spec: str,
    user_id: int,
    send_start: bool,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
    grace: float,
    notes: list[str],
) -> int:
    interactive = stdin.isatty()
    console = open_console(stdin, out, err)
    root = logging.getLogger()
    # Unless the bot configured logging, Python prints warnings bare on stderr, across the line
    # being typed.
    log = _ConsoleLog(console) if not root.handlers else None
    if log is not None:
        root.addHandler(log)
    try:
        for note in notes:
            console.show(note)
        playground = _Playground(target, storage_spec, user_id, console, interactive, grace)
        asyncio.get_running_loop().set_exception_handler(playground.on_loop_error)
        try:
            status = await playground.run(send_start)
        finally:
            await playground.aclose()
        return 1 if playground.failures else status
    finally:
        if log is not None:
            root.removeHandler(log)
        console.close()


def run_playground(
    target: str,
    *,
    storage: str | None = None,
    user_id: int = 1001,
    send_start: bool = True,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    grace: float = 1.0,
) -> int:
    """Load ``target`` (a file, a module, or ``module:name``) and talk to it.

    Args:
        storage: ``memory``, ``file:PATH`` or a ``redis://`` URL; by default
            ``$AIOSTEP_STORAGE``, else memory.
        grace: when input is not a terminal, how long to wait after the last line for what
            the bot still says (seconds of quiet).

    Returns:
        The exit status: 0, 1 if a handler or hook raised, 2 for a bad storage, 130 on Ctrl-C.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    source = "--storage" if storage is not None else "AIOSTEP_STORAGE"
    spec = storage_spec(storage)
    problem = _storage_problem(spec)
    if problem is not None:
        err.write(f"python -m aiostep_dialogs play: error: {source} {spec!r}: {problem}\n")
        return 2
    try:
        loaded = load_target(target)
        notes = []
        if loaded.build is None and loaded.dispatcher is not None and storage is not None:
            notes.append(
                f"note> --storage {storage} is not used: {loaded.name} makes its own Dispatcher "
                "(define build(storage=None) -> Dispatcher to use it)"
            )
        return asyncio.run(
            _play(
                loaded,
                spec,
                user_id,
                send_start,
                stdin or sys.stdin,
                out,
                err,
                grace,
                notes,
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C: leave quietly
        # (asyncio.run re-raises the main task's CancelledError instead of KeyboardInterrupt
        # when the interrupt came while the task was being cancelled already)
        out.write("\n")
        out.flush()
        return 130
