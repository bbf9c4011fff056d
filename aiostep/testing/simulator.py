"""Drive a real aiogram ``Dispatcher`` as simulated Telegram users, with no network.

Example:
    ```python
    async with BotSimulator(build_dispatcher) as sim:
        talk = sim.chat(sim.user(first_name="Alice"))
        await talk.send("/start")
        talk.assert_last("What is your name?")
        await talk.send("Alice")
        await talk.click("Confirm")
        assert talk.toasts == ["Saved"]
    ```

Every update goes through ``dp.feed_update`` in its own task, as aiogram's polling runs it, so a
handler may stay suspended in ``aiostep.wait_for`` while the next message arrives. After each
action the simulator waits until every task it started is finished or parked in ``wait_for``
([`BotSimulator.settle`][aiostep.testing.BotSimulator.settle]); an exception a handler raised is
re-raised there.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeAlias

import aiogram
from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import (
    CallbackQuery,
    Chat,
    Message,
    Update,
    User,
)
from typing_extensions import Self

from aiostep.clock import get_clock
from aiostep.middleware import Listen
from aiostep.steps import clear
from aiostep.testing.conversation import Conversation, MessageRef
from aiostep.testing.fake_clock import FakeClock
from aiostep.testing.session import RecordingSession
from aiostep.testing.updates import _UPDATE_IDS
from aiostep.waiters import parked_tasks

__all__ = [
    "BotSimulator",
    "Conversation",
    "DispatcherFactory",
    "MessageRef",
    "SettleTimeoutError",
]

logger = logging.getLogger("aiostep")

#: Builds the bot's Dispatcher (sync or async); called again by
#: [`BotSimulator.restart`][aiostep.testing.BotSimulator.restart].
DispatcherFactory: TypeAlias = Callable[[], Dispatcher | Awaitable[Dispatcher]]

_TOKEN = "42:TEST"
_NAMES = ("Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi")
# Frames from these directories say nothing about where a bot is stuck.
_QUIET_DIRS = tuple(
    os.path.dirname(module.__file__ or "") + os.sep for module in (asyncio, aiogram)
)


class SettleTimeoutError(AssertionError):
    """The bot did not become idle (every update handled or parked in ``wait_for``) in time."""


def _parked_tasks() -> set[asyncio.Task[Any]]:
    """The tasks suspended in ``aiostep.wait_for`` now (a seam the simulator's tests replace)."""
    return parked_tasks()


def _where(task: asyncio.Task[Any]) -> str:
    """Where ``task`` is suspended, in the bot's own code where possible."""
    frames: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            if not code.co_filename.startswith(_QUIET_DIRS):
                frames.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " <- ".join(reversed(frames[-3:])) or repr(task.get_coro())


def _add_note(exc: BaseException, note: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(note)


class BotSimulator:
    """A real aiogram ``Dispatcher`` wired to simulated Telegram users instead of the network.

    Args:
        dispatcher: the bot's ``Dispatcher``, or a factory (sync or async) that builds it.
            Only a factory allows [`restart`][aiostep.testing.BotSimulator.restart] (it builds the
            new process's Dispatcher).
        bot: the ``Bot`` to use; its session must be a
            [`RecordingSession`][aiostep.testing.RecordingSession]. Default:
            ``Bot("42:TEST", session=RecordingSession())``.
        settle_timeout: seconds [`settle`][aiostep.testing.BotSimulator.settle] waits for the bot to
            become idle.

    Use ``async with BotSimulator(...) as sim:``, or call
    [`aclose`][aiostep.testing.BotSimulator.aclose] at the end: it ends pending handlers, runs the
    shutdown hooks, restores the clock and closes the session.
    """

    def __init__(
        self,
        dispatcher: Dispatcher | DispatcherFactory,
        *,
        bot: Bot | None = None,
        settle_timeout: float = 5.0,
    ) -> None:
        if bot is None:
            bot = Bot(_TOKEN, session=RecordingSession())
        elif not isinstance(bot.session, RecordingSession):
            raise TypeError(
                f"bot.session must be a RecordingSession, got {type(bot.session).__name__}; "
                "create the bot as Bot(token, session=RecordingSession())"
            )
        self.bot = bot
        self.settle_timeout = settle_timeout
        self._factory: DispatcherFactory | None = None
        self._dp: Dispatcher | None = None
        self._dp_pending: Awaitable[Dispatcher] | None = None
        if isinstance(dispatcher, Dispatcher):
            self._dp = dispatcher
        elif callable(dispatcher):
            self._factory = dispatcher
            self._build_sync()
        else:
            raise TypeError(
                f"BotSimulator needs a Dispatcher or a factory returning one, got {dispatcher!r}"
            )
        self._started = False
        self._tasks: dict[asyncio.Task[Any], int | None] = {}  # task -> chat id
        self._failures: list[tuple[BaseException, int | None]] = []
        # Telegram numbers a bot's updates in one increasing sequence, whichever worker
        # receives them: simulators standing for several workers share it.
        self._update_ids = _UPDATE_IDS
        self._user_ids = itertools.count(1001)
        self._group_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._default_user: User | None = None
        self._clock: FakeClock | None = None  # the fake clock whose timers settle this sim
        self._own_clock: FakeClock | None = None  # the one use_fake_clock() installed
        self._settling: asyncio.Future[None] | None = None  # the settle loop under way

    # --- the bot -----------------------------------------------------------------------------

    @property
    def session(self) -> RecordingSession:
        """The recording session: every Bot API call, and the simulated chats."""
        session = self.bot.session
        assert isinstance(session, RecordingSession)
        return session

    @property
    def dispatcher(self) -> Dispatcher:
        """The current Dispatcher (a new one after each
        [`restart`][aiostep.testing.BotSimulator.restart]).

        Raises:
            RuntimeError: an async factory has not run yet (``await sim.start()`` first).
        """
        if self._dp is None:
            raise RuntimeError(
                "the Dispatcher is built by an async factory: await sim.start() (or send "
                "something) first"
            )
        return self._dp

    @property
    def started(self) -> bool:
        """Whether the startup hooks of the current Dispatcher have run."""
        return self._started

    async def start(self) -> None:
        """Build the Dispatcher if needed and run its startup hooks, like ``start_polling``.

        Called by ``async with`` and before the first update; calling it again does nothing.
        """
        if self._started:
            return
        if self._dp is None:
            pending, self._dp_pending = self._dp_pending, None
            if pending is None:
                assert self._factory is not None  # only a factory leaves no Dispatcher
                built = self._factory()
                pending = built if inspect.isawaitable(built) else None
                if pending is None:
                    self._dp = self._check_dp(built)
            if pending is not None:
                self._dp = self._check_dp(await pending)
        self._attach_clock()
        self._watch_schedulers()
        self._started = True
        await self.dispatcher.emit_startup(**self._workflow_data())
        if self.pending_tasks:
            # deadlines that came due while the bot was down fire at startup, each in a task
            # of its own (startup does not wait for them, polling must start)
            await self.settle()

    async def aclose(self) -> None:
        """End the simulation: cancel pending handlers, run the shutdown hooks, end in-process
        waiters and steps (``aiostep.clear``), restore the clock and close the session.

        Raises:
            Exception: a handler's exception that was not raised yet.
        """
        try:
            await self._cancel_tasks()
            if self._started:
                self._started = False
                await self.dispatcher.emit_shutdown(**self._workflow_data())
            await clear()
        finally:
            if self._clock is not None:
                self._clock.remove_settle_hook(self._on_timers)
                self._clock = None
            if self._own_clock is not None:
                self._own_clock.uninstall()
                self._own_clock = None
            await self.bot.session.close()
        self._raise_failures()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.aclose()
            return
        try:
            await self.aclose()
        except Exception:
            # The test already fails with ``exc``; do not hide it behind a later failure.
            logger.exception("BotSimulator.aclose() failed while the test was failing")

    async def restart(self) -> None:
        """Simulate a restart of the bot's process.

        Pending handlers are cancelled, the shutdown hooks run, in-process waiters and steps
        end (``aiostep.clear``), the fake clock's timers are dropped, then the factory builds a
        new Dispatcher (over the same storage) and its startup hooks run. Users, chats and
        transcripts survive (they are Telegram's); each transcript gets ``--- restart ---``.

        Raises:
            TypeError: the simulator was given a Dispatcher instead of a factory.
        """
        if self._factory is None:
            raise TypeError(
                "restart() needs a factory that builds the Dispatcher: pass "
                "BotSimulator(build_dispatcher) (a function building a new Dispatcher and its "
                "storages over the same file/Redis) instead of a Dispatcher instance"
            )
        self._raise_failures()
        await self._cancel_tasks()
        if self._started:
            self._started = False
            await self.dispatcher.emit_shutdown(**self._workflow_data())
        await clear()
        if self._clock is not None:
            self._clock.cancel_all()
        for log in self.session.chats.values():
            log.note("--- restart ---")
        self._dp = None
        self._build_sync()
        await self.start()

    # --- fake time ---------------------------------------------------------------------------

    def use_fake_clock(self, start: float = 1_700_000_000.0) -> FakeClock:
        """Install a [`FakeClock`][aiostep.testing.FakeClock] for aiostep until
        [`aclose`][aiostep.testing.BotSimulator.aclose], and return it.

        ``await clock.advance(seconds)`` then fires due timers and waits for this bot to settle.
        """
        if self._own_clock is not None:
            return self._own_clock
        self._own_clock = FakeClock(start).install()
        self._attach_clock()
        return self._own_clock

    # --- users and chats ---------------------------------------------------------------------

    def user(
        self,
        id: int | None = None,
        first_name: str | None = None,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "en",
        is_premium: bool | None = None,
    ) -> User:
        """A simulated Telegram user (ids from 1001, names Alice, Bob... unless given).

        The first user made is the default user of [`chat`][aiostep.testing.BotSimulator.chat] and
        [`send`][aiostep.testing.BotSimulator.send].
        """
        number = next(self._user_ids)
        user_id = id if id is not None else number
        user = User(
            id=user_id,
            is_bot=False,
            first_name=first_name or _NAMES[(number - 1001) % len(_NAMES)],
            last_name=last_name,
            username=username,
            language_code=language_code,
            is_premium=is_premium,
        )
        self.session.add_user(user)
        if self._default_user is None:
            self._default_user = user
        return user

    @property
    def default_user(self) -> User:
        """The first user made (made now, as Alice, if there is none yet)."""
        if self._default_user is None:
            return self.user()
        return self._default_user

    def private_chat(self, user: User) -> Chat:
        """The private chat between ``user`` and the bot."""
        chat = Chat(
            id=user.id,
            type="private",
            first_name=user.first_name,
            last_name=user.last_name,
            username=user.username,
        )
        existing = self.session.chats.get(user.id)
        if existing is not None:
            return existing.chat
        self.session.chat_log(chat)
        return chat

    def group(
        self,
        id: int | None = None,
        title: str = "Test group",
        *,
        forum: bool = False,
        username: str | None = None,
    ) -> Chat:
        """A supergroup with the bot in it (a forum, with topics, if ``forum``)."""
        chat_id = id if id is not None else -1001000000000 - next(self._group_ids)
        chat = Chat(
            id=chat_id,
            type="supergroup",
            title=title,
            username=username,
            is_forum=True if forum else None,
        )
        self.session.chat_log(chat)
        return chat

    def chat(
        self, user: User | None = None, chat: Chat | None = None, *, thread_id: int | None = None
    ) -> Conversation:
        """``user`` (default: [`default_user`][aiostep.testing.BotSimulator.default_user]) in
        ``chat`` (default: their private chat), in forum topic ``thread_id`` if given."""
        user = user if user is not None else self.default_user
        chat = chat if chat is not None else self.private_chat(user)
        self.session.chat_log(chat)
        return Conversation(self, user, chat, thread_id)

    async def send(
        self, text: str, *, user: User | None = None, chat: Chat | None = None
    ) -> Message:
        """Send ``text`` as ``user`` in ``chat`` (defaults as in
        [`chat`][aiostep.testing.BotSimulator.chat])."""
        return await self.chat(user, chat).send(text)

    async def click(
        self, text: str, *, user: User | None = None, chat: Chat | None = None
    ) -> CallbackQuery:
        """Press inline button ``text`` as ``user`` in ``chat`` (see
        [`Conversation.click`][aiostep.testing.Conversation.click])."""
        return await self.chat(user, chat).click(text)

    def transcript(self, chat: Chat | int | None = None) -> str:
        """The transcript of ``chat``, or of every chat (one after the other)."""
        if chat is not None:
            return self.session.chat_log(chat).transcript()
        return "\n\n".join(log.transcript() for log in self.session.chats.values())

    # --- updates -----------------------------------------------------------------------------

    async def feed(self, update: Update, *, chat_id: int | None = None) -> None:
        """Feed any ``update`` to the Dispatcher in a new task, then
        [`settle`][aiostep.testing.BotSimulator.settle].

        ``chat_id`` names the chat whose transcript an error report shows.
        """
        await self.start()
        self._attach_clock()
        self._raise_failures()
        if update.bot is not self.bot:
            update = Update.model_validate(update.model_dump(), context={"bot": self.bot})
        task = asyncio.create_task(
            self._handle(self.dispatcher, update), name=f"aiostep-sim update {update.update_id}"
        )
        self._track(task, chat_id)
        await self.settle()

    async def settle(self, timeout: float | None = None) -> None:
        """Wait until every task the simulator started is done or parked in ``wait_for``.

        Raises:
            Exception: the first exception a handler raised (others are logged), with the
                chat's transcript attached as a note.
            SettleTimeoutError: still busy after ``timeout`` (default `settle_timeout`)
                seconds; the message says where each busy task is and shows the transcript.
        """
        # Concurrent sends share one settling loop: one loop per caller, each polling every
        # busy task, made a burst of N messages cost O(N^2) per loop turn.
        shared = self._settling
        if shared is None or shared.done():
            shared = self._settling = asyncio.ensure_future(self._settle(timeout))
            # retrieved even when every caller was cancelled meanwhile
            shared.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._raise_failures()
        await asyncio.shield(shared)
        self._raise_failures()  # a handler's error goes to a caller, not the shared loop

    async def _settle(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        limit = self.settle_timeout if timeout is None else timeout
        deadline = loop.time() + limit
        quiet = 0
        spins = 0
        while True:
            if self._failures:
                return
            parked = _parked_tasks()
            busy = [task for task in self._tasks if not task.done() and task not in parked]
            if not busy:
                # Parked-and-answered tasks leave the parked set when they resume, a loop turn
                # later: idle only if it stays so over a few turns.
                quiet += 1
                if quiet > 3:
                    return
                await asyncio.sleep(0)
                continue
            quiet = 0
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SettleTimeoutError(self._busy_report(busy, limit))
            if spins < 20:
                await asyncio.sleep(0)
            else:
                delay = min(0.01, 0.0005 * 2 ** min(spins - 20, 10), remaining)
                await asyncio.wait(busy, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            spins += 1

    def raise_failures(self) -> None:
        """Raise the first exception a handler raised that no action has raised yet.

        Actions and [`settle`][aiostep.testing.BotSimulator.settle] do this themselves; call it when
        driving a bot without acting, e.g. to report what a timed-out ``wait_for`` or a background
        update raised while the user is idle.
        """
        self._raise_failures()

    @property
    def pending_tasks(self) -> list[asyncio.Task[Any]]:
        """The simulator's update tasks not finished yet (parked ones included)."""
        return [task for task in self._tasks if not task.done()]

    # --- internals ---------------------------------------------------------------------------

    def _build_sync(self) -> None:
        assert self._factory is not None
        if inspect.iscoroutinefunction(self._factory):
            self._dp_pending = None  # built by start(), where it can be awaited
            return
        built = self._factory()
        if inspect.isawaitable(built):
            self._dp_pending = built
        else:
            self._dp = self._check_dp(built)

    def _check_dp(self, built: object) -> Dispatcher:
        if not isinstance(built, Dispatcher):
            raise TypeError(f"the dispatcher factory returned {built!r}, not a Dispatcher")
        return built

    def _workflow_data(self) -> dict[str, Any]:
        dp = self.dispatcher
        data: dict[str, Any] = {"dispatcher": dp, "bots": [self.bot], **dp.workflow_data}
        data.pop("bot", None)
        data["bot"] = self.bot
        return data

    def _attach_clock(self) -> None:
        clock = get_clock()
        if isinstance(clock, FakeClock) and clock is not self._clock:
            if self._clock is not None:
                self._clock.remove_settle_hook(self._on_timers)
            clock.add_settle_hook(self._on_timers)
            self._clock = clock

    def _watch_schedulers(self) -> None:
        # each deadline fires in a task of its own: the bot is busy until those end too
        for observer in self.dispatcher.observers.values():
            for middleware in observer.outer_middleware:
                if isinstance(middleware, Listen):
                    middleware.scheduler.on_firing = self._on_firing

    def _on_firing(self, task: asyncio.Task[None]) -> None:
        if not task.done() and task not in self._tasks:
            self._track(task, None)

    async def _on_timers(self, spawned: set[asyncio.Task[Any]]) -> None:
        for task in spawned:
            if not task.done() and task not in self._tasks:
                self._track(task, None)
        await self.settle()

    async def _handle(self, dp: Dispatcher, update: Update) -> None:
        data = self._workflow_data()
        del data["bot"], data["dispatcher"]
        response = await dp.feed_update(self.bot, update, **data)
        if isinstance(response, TelegramMethod):
            # A handler returned a method: polling calls it (aiogram's webhook-style answer).
            await self.bot(response)

    def _track(self, task: asyncio.Task[Any], chat_id: int | None) -> None:
        self._tasks[task] = chat_id
        task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        chat_id = self._tasks.pop(task, None)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._failures.append((exc, chat_id))

    def _raise_failures(self) -> None:
        if not self._failures:
            return
        failures, self._failures = self._failures, []
        exc, chat_id = failures[0]
        for other, _ in failures[1:]:
            logger.error("another simulated update failed too", exc_info=other)
        _add_note(exc, f"(raised by a handler in BotSimulator)\n{self.transcript(chat_id)}")
        raise exc

    async def _cancel_tasks(self) -> None:
        tasks = self.pending_tasks
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _busy_report(self, busy: list[asyncio.Task[Any]], limit: float) -> str:
        lines = [
            f"the bot is still busy after {limit} s: {len(busy)} update task(s) neither "
            "finished nor parked in aiostep.wait_for:"
        ]
        lines.extend(f"  {task.get_name()}: at {_where(task)}" for task in busy)
        chats = {self._tasks.get(task) for task in busy}
        if None in chats:
            lines.append("\n" + self.transcript())
        else:
            lines.extend("\n" + self.transcript(chat_id) for chat_id in chats)
        return "\n".join(lines)

    def _update(self, **event: Any) -> Update:
        return Update.model_validate(
            {"update_id": next(self._update_ids), **event}, context={"bot": self.bot}
        )

    def _file_id(self, kind: str) -> str:
        return f"user-{kind}-{next(self._file_ids)}"

    def _callback_id(self) -> str:
        return str(next(self._callback_ids))
