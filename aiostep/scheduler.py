"""The deadline scheduler: fires persisted steps' timeouts with no update, across restarts.

One per [`Listen`][aiostep.Listen] (so one per storage): one timer, set for the earliest deadline
the storage knows, and while something is due, one task that takes due deadlines plus one task
per deadline being fired (at most ``concurrency`` of them). A paused conversation costs an
entry in the storage's deadline index, never a timer or a task of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from aiostep.clock import TimerHandle, get_clock
from aiostep.deadlines import parse_storage_key
from aiostep.exceptions import StorageCorruptedError, StorageLockedError
from aiostep.options import count_option, seconds_option
from aiostep.storage.base import new_owner
from aiostep.waiters import parked_tasks

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher

    from aiostep.context import ListenLike

__all__ = ["Scheduler"]

logger = logging.getLogger("aiostep")


class Scheduler:
    """Fires the timeouts of a [`Listen`][aiostep.Listen]'s persisted steps when they are due,
    with no update: while the process runs, after a restart (the storage's stored deadlines
    are read at start-up; overdue ones fire at once), and with several workers on Redis
    (each deadline is fired by one worker; one that dies while firing is replaced once its
    lease runs out).

    [`aiostep.setup`][aiostep.setup] starts it when the Dispatcher starts (polling, or a
    webhook's ``setup_application``; the bots come from the startup data) and stops it on
    shutdown. A timeout fires through the same claim as an answer: when a user answers just
    as the deadline passes, exactly one of the two runs.

    Due deadlines fire concurrently, each in a task of its own: an ``on_timeout`` that awaits
    something slow (a ``wait_for``, a slow send) holds up no other conversation's deadline.
    At most ``concurrency`` fire at once (the others stay in the storage's index until a slot
    is free, so on Redis another worker can take them); two firings of one conversation run
    in the order they were taken; each one's error is logged on its own; ``stop`` waits for
    every firing under way.

    Args:
        listen: the ``Listen`` whose storage and registry it serves.
        poll: on a shared storage, seconds between looks at the deadlines other workers
            stored (a deadline this worker stores wakes it by itself).
        batch: deadlines taken per look.
        concurrency: deadlines fired at once, at most.
    """

    def __init__(
        self, listen: ListenLike, *, poll: float = 1.0, batch: int = 100, concurrency: int = 32
    ) -> None:
        self.listen = listen
        self.poll = poll
        self.batch = batch
        self.concurrency = concurrency
        # the firings under way, and per conversation the last one (the next waits for it)
        self._firings: set[asyncio.Task[None]] = set()
        self._last: dict[str, asyncio.Task[None]] = {}
        #: called with each firing's task as it starts (the test kit waits for them)
        self.on_firing: Callable[[asyncio.Task[None]], None] | None = None
        self._bots: dict[int, Bot] = {}
        self._timer: TimerHandle | None = None
        self._armed_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._poller: asyncio.TimerHandle | None = None
        self._again = False
        self.running = False
        #: the Dispatcher whose workflow data (``dp["db"] = ...``) a timeout fired with no
        #: update is given as handler data (set by `aiostep.setup` and at startup)
        self.dispatcher: Dispatcher | None = None
        #: the data the Dispatcher's startup was emitted with (``start_polling(bot, db=db)``,
        #: ``setup_application(app, dp, db=db)``): aiogram gives it to every update too
        self._startup_data: dict[str, Any] = {}

    # -- options (checked when set: the guides tell users to set them on a running bot) -------
    @property
    def poll(self) -> float:
        """Seconds between looks at the deadlines other workers stored (shared storages)."""
        return self._poll_every

    @poll.setter
    def poll(self, value: float) -> None:
        # 0 would look at Redis on every loop turn, NaN or inf never
        self._poll_every = seconds_option("Scheduler.poll", value)

    @property
    def batch(self) -> int:
        """Deadlines taken per look."""
        return self._batch

    @batch.setter
    def batch(self, value: int) -> None:
        self._batch = count_option("Scheduler.batch", value)

    @property
    def concurrency(self) -> int:
        """Deadlines fired at once, at most."""
        return self._concurrency

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        self._concurrency = count_option("Scheduler.concurrency", value)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self, bots: Iterable[Bot]) -> None:
        """Serve ``bots`` and fire what is already due (a restart's overdue deadlines), then
        sleep until the next deadline. Starting again only adds bots.

        Raises:
            StorageLockedError: the storage's journal is another storage's (a second bot
                process on one ``FileStateStorage`` file): the Dispatcher does not start.
            StorageCorruptedError: the storage's file is not a journal.
        """
        for bot in bots:
            self._bots[bot.id] = bot
        storage = self.listen.storage
        if self.running or storage is None:
            return
        self.running = True
        if storage.deadlines is not None:
            storage.deadlines.on_earlier = self.wake_at  # a deadline stored by any write
        try:
            await self._run(startup=True)
        except (StorageLockedError, StorageCorruptedError):
            # the bot must not start on a journal it cannot use: every update would fail,
            # and the scheduler would log the same error every second
            self.running = False
            if storage.deadlines is not None:
                storage.deadlines.on_earlier = None
            raise

    async def on_startup(self, **data: Any) -> None:
        """The Dispatcher's startup handler: the bots are ``bots`` (polling) or ``bot``."""
        if self.dispatcher is None and data.get("dispatcher") is not None:
            self.dispatcher = data["dispatcher"]
        # what the startup was given besides the workflow data (read live when firing, so a
        # later dp["db"] = ... is seen) and the bot (each firing gets its own)
        live = {} if self.dispatcher is None else self.dispatcher.workflow_data
        self._startup_data.update((k, v) for k, v in data.items() if k not in live and k != "bot")
        bots: list[Bot] = list(data.get("bots") or ())
        if not bots and data.get("bot") is not None:
            bots = [data["bot"]]
        await self.start(bots)

    async def stop(self) -> None:
        """Stop firing (the Dispatcher's shutdown): the timer is cancelled and every firing
        under way is waited for, so the storage can be closed after it; an ``on_timeout``
        parked in ``wait_for`` is cancelled instead (a restart ends every in-process waiter)."""
        self.running = False
        self._disarm()
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        storage = self.listen.storage
        if storage is not None and storage.deadlines is not None:
            storage.deadlines.on_earlier = None
        looking, self._task = self._task, None
        # none taken is dropped: each fires before the storage closes (an on_timeout that
        # stops the Dispatcher itself is not waited for: it would wait for itself). One parked
        # in wait_for waits for a user who may never answer: it ends, as a restart ends every
        # in-process waiter, rather than hang the shutdown (or the look, waiting for a slot).
        current = asyncio.current_task()
        ended: set[asyncio.Task[None]] = set()
        while True:
            firings = [task for task in self._firings if task is not current]
            waiting = [*firings, looking] if looking is not None and not looking.done() else firings
            if not waiting:
                return
            parked = parked_tasks()
            for task in firings:
                if task in parked and task not in ended:
                    ended.add(task)
                    logger.warning(
                        "shutdown: an on_timeout waiting in wait_for is cancelled (%s)",
                        task.get_name(),
                    )
                    task.cancel()
            await asyncio.wait(waiting, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)

    @property
    def firing(self) -> int:
        """How many deadlines are being fired now."""
        return len(self._firings)

    @property
    def next_wake(self) -> float | None:
        """When the scheduler looks at the deadlines next (epoch seconds), or ``None``: none
        is pending that this process knows of."""
        return self._armed_at

    def handler_data(self, bot: Bot) -> dict[str, Any]:
        """What a timeout fired with no update gets as handler data: the Dispatcher's workflow
        data (what ``dp["db"] = db`` put there), what its startup was given
        (``start_polling(bot, db=db)``), as aiogram merges them for an update, and ``bot``."""
        dp = self.dispatcher
        live = {} if dp is None else dp.workflow_data
        return {**live, **self._startup_data, "bot": bot}

    def bot(self, bot_id: int | None) -> Bot | None:
        """The bot of ``bot_id`` among those this scheduler serves (with ``None``: the only
        one), or ``None``."""
        return self._bot(bot_id)

    def add_bot(self, bot: Bot) -> None:
        """Fire the deadlines of ``bot``'s conversations too."""
        self._bots[bot.id] = bot

    # -- waking -------------------------------------------------------------------------------
    def wake_at(self, when: float) -> None:
        """Make sure the scheduler looks at the deadlines by ``when`` (epoch seconds)."""
        if not self.running:
            return
        if self._armed_at is not None and self._armed_at <= when:
            return
        if self._task is not None and not self._task.done():
            self._again = True  # the look under way arms the timer when it ends
            return
        self._arm(when)

    def _arm(self, when: float) -> None:
        if self._timer is not None and self._armed_at == when:
            return
        self._disarm()
        self._armed_at = when
        self._timer = get_clock().call_later(when - get_clock().now(), self._wake)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_at = None, None

    def _poll(self) -> None:
        self._poller = None
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _wake(self) -> None:
        self._timer, self._armed_at = None, None
        if not self.running:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    # -- firing -------------------------------------------------------------------------------
    async def _run(self, *, startup: bool = False) -> None:
        storage = self.listen.storage
        assert storage is not None
        try:
            while self.running:
                room = min(self.batch, self.concurrency - len(self._firings))
                if room <= 0:
                    # every slot is busy: the rest stay in the index (another worker may
                    # take them) until one is free
                    await asyncio.wait(list(self._firings), return_when=asyncio.FIRST_COMPLETED)
                    continue
                self._again = False
                now = get_clock().now()
                lease = now + self.listen.step_lease
                keys, upcoming = await storage.due_deadlines_and_next(now, lease, room)
                for skey in keys:
                    self._start_firing(skey, now)
                if len(keys) < room and not self._again:
                    break
            if not self.running:
                return
            if keys:
                # what was just fired may have moved the earliest deadline: look again
                upcoming = await storage.next_deadline()
        except Exception as exc:
            if startup and isinstance(exc, (StorageLockedError, StorageCorruptedError)):
                raise  # not something a retry mends: the Dispatcher's startup fails with it
            logger.exception("the deadline scheduler could not read the storage; retrying")
            upcoming = get_clock().now() + max(self.poll, 1.0)
        if not self.running:
            return
        if upcoming is not None:
            self._arm(upcoming)
        if storage.shared and self._poller is None:
            # other workers' new deadlines: looked for on real time (like the workers'
            # heartbeat), so a test's fake clock only ever holds the one deadline timer
            self._poller = asyncio.get_running_loop().call_later(self.poll, self._poll)

    def _start_firing(self, skey: str, now: float) -> None:
        before = self._last.get(skey)
        task = asyncio.get_running_loop().create_task(
            self._fire(skey, now, before), name=f"aiostep deadline {skey}"
        )
        self._firings.add(task)
        self._last[skey] = task
        task.add_done_callback(partial(self._fired, skey))
        if self.on_firing is not None:
            self.on_firing(task)

    def _fired(self, skey: str, task: asyncio.Task[None]) -> None:
        self._firings.discard(task)
        if self._last.get(skey) is task:
            del self._last[skey]
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "conversation %s: firing its deadline failed", skey, exc_info=task.exception()
            )

    async def _fire(self, skey: str, now: float, before: asyncio.Task[None] | None) -> None:
        if before is not None and not before.done():
            # the same conversation's earlier firing first (its on_timeout may have asked
            # again, with a deadline already due)
            await asyncio.wait([before])
        storage = self.listen.storage
        assert storage is not None
        try:
            key = parse_storage_key(skey)
        except ValueError as exc:
            logger.error("%s", exc)
            await storage.deadline_fired(skey)
            return
        bot = self._bot(key.bot_id)
        if bot is None:
            logger.error(
                "conversation %s: its step's deadline passed, but bot %s is not one this "
                "Dispatcher started with; it fires when that bot runs (or on the next update)",
                skey,
                key.bot_id,
            )
            await storage.deadline_later(skey, now + max(self.poll, 60.0))
            return
        gates = self.listen.gates
        await gates.acquire(key)
        try:
            record = await storage.read(skey)
            if record is None or record.callback is None or record.deadline is None:
                return
            if record.deadline > get_clock().now():
                # moved on meanwhile, or looked at early (another worker put it back to look
                # at when a claim's lease ends, over the deadline a write had just indexed):
                # index the record's own deadline again, or nothing fires it
                await storage.deadline_later(skey, record.deadline)
                return
            owner = new_owner()
            # the lease runs from now, not from when the deadline was taken: a firing may
            # have waited for the conversation's previous one
            started = get_clock().now()
            lease = started + self.listen.step_lease if storage.shared else None
            claimed = await storage.claim_token(skey, record.token or "", lease, owner)
            if claimed is None:
                if record.claim is not None:
                    # another worker's update runs the step: look again when its lease is up
                    await storage.deadline_later(skey, record.busy or started + self.poll)
                return
            await self.listen.run_timeout(key, claimed, bot, owner)
        except Exception:
            logger.exception("conversation %s: firing its deadline failed", skey)
        finally:
            gates.release(key)
            try:
                await storage.deadline_fired(skey)
            except Exception:
                logger.exception("conversation %s: could not mark its deadline fired", skey)

    def _bot(self, bot_id: int | None) -> Bot | None:
        if bot_id is not None:
            return self._bots.get(bot_id)
        if len(self._bots) == 1:
            return next(iter(self._bots.values()))
        return None
