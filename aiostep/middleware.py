"""``Listen``: the middleware that routes an update to a waiter or step, or lets it through."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.dispatcher.middlewares.manager import MiddlewareManager
from aiogram.types import CallbackQuery, TelegramObject, Update

from aiostep import context, keys
from aiostep.calling import call_with_context, filter_result
from aiostep.clock import get_clock
from aiostep.context import UpdateContext, current_update, storage_key_of
from aiostep.conversation import Steps
from aiostep.exceptions import ClaimLostError, NotThisConversation
from aiostep.keys import ANYONE, ConversationKey, is_command, key_of, storage_key
from aiostep.meta_store import MetaStore, _RootStore, root_store
from aiostep.options import seconds_option
from aiostep.ordering import Gates
from aiostep.pending import LocalStep, Waiter
from aiostep.scheduler import Scheduler
from aiostep.step_registry import StepRegistry
from aiostep.step_registry import registry as default_registry
from aiostep.steps import run_on_timeout
from aiostep.storage.base import (
    BaseStorage,
    Claim,
    ClaimStatus,
    StateContext,
    as_async,
    new_owner,
)

__all__ = ["Listen", "SeenRecords", "setup"]

logger = logging.getLogger("aiostep")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
ALL_UPDATES = ("message", "edited_message", "callback_query")
_MISS: Any = object()  # nothing pending for this key took the update
# something pending for this key takes this kind of update, but let this one through (its
# filter, its deadline, a busy claim...): the update is the sender's conversation's to refuse
_DECLINED: Any = object()
# claim answers that send the update on to the normal handlers
_PASS = frozenset(
    (
        ClaimStatus.NONE,
        ClaimStatus.SKIPPED,
        ClaimStatus.BUSY,
        ClaimStatus.STALE,
        ClaimStatus.WAIT,
    )
)
_WAIT = frozenset((ClaimStatus.BUSY, ClaimStatus.WAIT))
# claim answers that mean no pending step takes this kind of update
_NOT_TAKEN = frozenset((ClaimStatus.NONE, ClaimStatus.SKIPPED))
# the members _try_persisted compares with, read once (an Enum attribute lookup is ~50 ns)
_CHECK = ClaimStatus.CHECK
_CLAIMED = ClaimStatus.CLAIMED
_EXPIRED = ClaimStatus.EXPIRED
_STALE = ClaimStatus.STALE
_WAITER = ClaimStatus.WAITER


def _kind(event: Any, data: dict[str, Any]) -> str:
    update = data.get("event_update")
    if isinstance(update, Update):
        if update.message is event:  # most updates: one attribute read
            return "message"
        if update.edited_message is event:
            return "edited_message"
        if update.callback_query is event:
            return "callback_query"
        return "message"
    return "callback_query" if type(event).__name__ == "CallbackQuery" else "message"


class SeenRecords:
    """The records this update's routing read from the storage (``None``: no record), handed
    to handlers as ``aiostep_seen``: `read` answers from them while
    nothing has been written through the storage since, and reads the storage otherwise."""

    def __init__(self, storage: BaseStorage) -> None:
        self.storage = storage
        self.generation = storage.generation
        self._records: dict[str, StateContext | None] = {}

    def remember(self, skey: str, record: StateContext | None) -> None:
        """Note what the storage holds at ``skey`` now."""
        if self.storage.generation != self.generation:
            self._records.clear()
            self.generation = self.storage.generation
        self._records[skey] = record

    async def read(self, skey: str) -> StateContext | None:
        """The record at ``skey``: the one seen if still current, else read from the storage."""
        if self.storage.generation == self.generation and skey in self._records:
            record = self._records[skey]
            return None if record is None else copy.deepcopy(record)
        return await self.storage.read(skey)


class Listen(BaseMiddleware):
    """aiogram outer middleware that hands a conversation's updates to its waiter or next step.

    Install it on ``dp.message`` (as in the seed), or everywhere it belongs with
    [`aiostep.setup`][aiostep.setup]. Updates of one conversation are handled one at a time, in
    arrival order; anything no waiter/step takes goes on to the normal handlers, which may ask for
    ``aiostep_seen`` (a `SeenRecords`) to reuse the record the routing read.
    A persisted step that raises aiogram's ``SkipHandler`` declines the update: the step stays
    pending as it was, and the update goes on to the normal handlers. One that raises
    [`NotThisConversation`][aiostep.NotThisConversation] stays pending too, and the update is
    routed as if the sender had nothing pending (a chat-wide step may take it). Persisted steps'
    deadlines fire with no update, through the Listen's [`Scheduler`][aiostep.Scheduler]
    (``listen.scheduler``), which [`aiostep.setup`][aiostep.setup] starts with the Dispatcher.
    Every handler (and step) of an update with a user and a chat may ask for ``steps``: a
    [`Steps`][aiostep.Steps] handle of its conversation (``await steps.wait_for()``,
    ``await steps.next_step(fn)``, ``await steps.cancel()``).

    Args:
        store: in-process store for waiters and steps (default: the root store).
        storage: where next steps are persisted by name (File/Redis survive a restart);
            without one, next steps live in this process.
        registry: resolves persisted step names (default: the global registry).
        chat_wide: also route an update to a waiter/step registered for anyone in its chat
            (``register_next_step(aiostep.ANYONE, fn, chat_id=...)``) when the sender has
            none of their own. Costs a second lookup per update, so it is off by default.
            To route only some persisted steps chat-wide, see
            [`route_chat_wide`][aiostep.Listen.route_chat_wide].
        step_lease: on a shared storage (Redis), seconds a claim lives without renewal. A
            running step renews it every third of that, so only a worker that died or lost
            Redis lets it run out; then the step is offered again. Meanwhile an update of that
            conversation on another worker waits, so it goes to the step it pointed to next.
        busy_wait: seconds an update waits for another update's running step before it goes
            to the normal handlers instead.
        order_window: while other workers share the storage (Redis), seconds an update a step
            would take is held so that an earlier update of the same conversation that reached
            another worker a moment later is taken first (Telegram's ``update_id`` order).
            Costs one more round trip and this much latency per such update, and nothing while
            this worker is alone; ``0`` turns it off.

    Raises:
        TypeError: ``step_lease``, ``busy_wait`` or ``order_window`` is not a number.
        ValueError: one of them is not finite, is negative, or (``step_lease``) is zero.
    """

    def __init__(
        self,
        store: MetaStore | None = None,
        storage: Any = None,
        *,
        registry: StepRegistry | None = None,
        chat_wide: bool = False,
        step_lease: float = 5.0,
        busy_wait: float = 30.0,
        order_window: float = 0.1,
    ) -> None:
        self._store = store
        self.step_lease = seconds_option("step_lease", step_lease)
        self.busy_wait = seconds_option("busy_wait", busy_wait, zero=True)
        self.order_window = seconds_option("order_window", order_window, zero=True)
        self.storage: BaseStorage | None = as_async(storage) if storage is not None else None
        context.listens_created += 1
        self.registry = registry if registry is not None else default_registry
        self.chat_wide = chat_wide
        self._chat_wide_steps: frozenset[str] = frozenset()
        ordered = self.storage is not None and self.storage.order_updates
        # with order_updates the conversation's turn (in Redis) orders every update of it, this
        # worker's too, by update_id: a local FIFO gate in front of it would hold a lower one
        # back behind a higher one that arrived here first
        self.gates = _NoGates() if ordered else Gates()
        #: claims whose step is parked in a ``wait_for`` (its update gave up its turn): an
        #: update its waiter does not take must not wait for that step to end
        self.parked_claims: set[str] = set()
        #: fires persisted steps' deadlines with no update (started by `setup` at startup)
        self.scheduler = Scheduler(self)

    @property
    def store(self) -> MetaStore:
        """The in-process store in use."""
        return self._store if self._store is not None else root_store()

    @property
    def chat_wide_steps(self) -> frozenset[str]:
        """The persisted steps routed chat-wide without ``chat_wide`` (see
        [`route_chat_wide`][aiostep.Listen.route_chat_wide])."""
        return self._chat_wide_steps

    def route_chat_wide(self, names: Iterable[str]) -> None:
        """Route updates to the chat-wide conversation of their chat (user
        `ANYONE`) when the persisted step pending there is one of ``names``.

        Unlike ``chat_wide=True`` this leaves every other conversation as it was: an update
        goes there only when the sender has no waiter or step of their own in that chat that
        takes its kind of update (one that refuses it, by its filter say, sends it to the
        normal handlers as usual), and only to one of these steps; other chat-wide waiters and
        steps still need ``chat_wide``. Until this is called it costs nothing; then an update
        whose sender has nothing pending costs a second storage lookup. A wizard with
        ``scope = "chat"`` calls it in ``setup``.
        """
        if self.storage is None:
            raise ValueError("route_chat_wide routes persisted steps: give Listen a storage")
        if isinstance(names, str):
            names = (names,)  # one name, not its letters (frozenset("quiz.vote"))
        names = frozenset(names)
        odd = sorted(repr(name) for name in names if not isinstance(name, str) or not name)
        if odd:
            raise TypeError(
                f"route_chat_wide takes step names (non-empty str), got {', '.join(odd)}"
            )
        self._chat_wide_steps = self._chat_wide_steps | names

    def conversation(
        self,
        bot: Bot | int,
        chat_id: int,
        user_id: int,
        thread_id: int | None = None,
    ) -> Steps:
        """The handle of one conversation, for code outside an update (a job, a webhook of
        another service): what a handler gets as ``steps``.

        Args:
            bot: the bot the conversation is with (or its id).
            chat_id: the chat; for a private chat, the user's id.
            user_id: the user, or `aiostep.ANYONE` for the chat-wide conversation.
            thread_id: the forum topic, if any.

        Raises:
            TypeError: an id that is not an ``int`` (a str id would name a conversation no
                update belongs to).
        """
        bot_id = bot if isinstance(bot, int) else bot.id
        key = ConversationKey(chat_id, user_id, thread_id, bot_id)
        storage_key(key)  # refuses ids that are not ints, naming them
        return Steps(key, self)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        """Route ``event``: to a waiter, a next step, or the normal ``handler``."""
        key = key_of(event, data.get("bot"))
        if key is None:
            return await handler(event, data)
        # the conversation's handle, for handlers and steps that ask for ``steps``
        data["steps"] = Steps(key, self)
        if not self.gates.try_acquire(key):
            await self.gates.acquire(key)
        ctx = UpdateContext(key, self, event, data, asyncio.current_task())
        reset = current_update.set(ctx)
        try:
            if self.storage is None and not self.chat_wide:
                store = self._store if self._store is not None else root_store()
                if type(store) is _RootStore:
                    # in-process only, the default store: its common cases without _route
                    pending = store.cache.get(key)
                    if pending is None:
                        # nothing pending and nowhere else to look: the normal handlers
                        return await handler(event, data)
                    if type(pending) is LocalStep and pending.filter is None:
                        kind = _kind(event, data)
                        if pending.takes(
                            kind,
                            is_command(event),
                            event.data if isinstance(event, CallbackQuery) else None,
                        ):
                            # what _try_local does with a step that has no filter
                            store.cache.pop(key)
                            extra = {"conversation": key, **pending.kwargs}
                            try:
                                result = await self._run_step(
                                    pending.callback, event, data, kind, extra, pending.args
                                )
                            except SkipHandler:
                                await _put_back(store, key, pending)
                                return await handler(event, data)
                            except BaseException:
                                pending.cancel_timer()
                                raise
                            pending.cancel_timer()
                            return result
            elif not self.chat_wide and not self._chat_wide_steps:
                store = self._store if self._store is not None else root_store()
                if type(store) is _RootStore and key not in store.cache:
                    # what _route does when only the sender's persisted step can take it
                    if self._known_empty(data, ctx, key):
                        # most updates of a bot: nothing stored, so nothing to work out
                        # about the update (its kind, a command?) before the handlers
                        return await handler(event, data)
                    result = await self._try_persisted(
                        event,
                        data,
                        ctx,
                        key,
                        _kind(event, data),
                        is_command(event),
                        event.data if isinstance(event, CallbackQuery) else None,
                        empty_checked=True,
                    )
                    if result is not _MISS and result is not _DECLINED:
                        return result
                    return await handler(event, data)
            return await self._route(handler, event, data, ctx)
        finally:
            current_update.reset(reset)
            if ctx.turn is not None:
                await self.leave_turn(ctx)
            if ctx.holds:
                ctx.holds = False  # tasks the handler spawned still see ctx: it holds nothing
                self.gates.release(key)

    async def _route(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any], ctx: UpdateContext
    ) -> Any:
        kind = _kind(event, data)
        command = is_command(event)
        callback_data = event.data if isinstance(event, CallbackQuery) else None
        # the sender's own conversation (inline, not _try_key: this is every update's path)
        store = self._store if self._store is not None else root_store()
        if type(store) is _RootStore and ctx.key not in store.cache:
            result = _MISS  # the default store read directly: no await when nothing is here
        else:
            result = await self._try_local(event, data, ctx, ctx.key, kind, command, callback_data)
            if result is not _MISS and result is not _DECLINED:
                return result
        if self.storage is not None:
            persisted = await self._try_persisted(
                event, data, ctx, ctx.key, kind, command, callback_data
            )
            if persisted is not _MISS and persisted is not _DECLINED:
                return persisted
            if persisted is _DECLINED:
                result = _DECLINED
        if ctx.key.user_id != ANYONE and (self.chat_wide or self._chat_wide_steps):
            anyone = ctx.key._replace(user_id=ANYONE)
            if self.chat_wide:
                result = await self._try_key(event, data, ctx, anyone, kind, command, callback_data)
            elif result is _MISS:
                # only the named steps, and only when the sender has nothing of their own
                result = await self._try_persisted(
                    event, data, ctx, anyone, kind, command, callback_data, self._chat_wide_steps
                )
            if result is not _MISS and result is not _DECLINED:
                return result
        return await handler(event, data)

    async def _try_key(
        self,
        event: TelegramObject,
        data: dict[str, Any],
        ctx: UpdateContext,
        key: ConversationKey,
        kind: str,
        command: bool,
        callback_data: str | None,
    ) -> Any:
        """Offer the update to what ``key`` waits for here, then to its persisted step."""
        local = await self._try_local(event, data, ctx, key, kind, command, callback_data)
        if (local is not _MISS and local is not _DECLINED) or self.storage is None:
            return local
        result = await self._try_persisted(event, data, ctx, key, kind, command, callback_data)
        return local if result is _MISS else result

    async def _try_local(
        self,
        event: TelegramObject,
        data: dict[str, Any],
        ctx: UpdateContext,
        key: ConversationKey,
        kind: str,
        command: bool,
        callback_data: str | None,
    ) -> Any:
        store = self._store if self._store is not None else root_store()
        # the default store read directly: most updates find nothing here, at no await
        pending = store.cache.get(key) if type(store) is _RootStore else await store.get_item(key)
        if pending is None:
            return _MISS
        if not (
            isinstance(pending, (Waiter, LocalStep)) and pending.takes(kind, command, callback_data)
        ):
            return _MISS
        passed: Any = None
        if pending.filter is not None:
            passed = await filter_result(pending.filter, event, data)
            if not passed:
                return _DECLINED
            # an async filter may have let the wait time out, or another update take it
            if await store.get_item(key) is not pending:
                return _DECLINED
        if isinstance(pending, Waiter) and pending.future.done():
            return _DECLINED
        storage = self.storage
        if ctx.turn is None and key == ctx.key and storage is not None and storage.order_updates:
            # no storage call routed this update: take the conversation's turn now
            await self._take_turn(ctx, data)
            if await store.get_item(key) is not pending or (
                isinstance(pending, Waiter) and pending.future.done()
            ):
                return _DECLINED
        # a waiter registered for other workers too: one of them may be handing it an answer
        if (
            isinstance(pending, Waiter)
            and pending.remote is not None
            and (
                not await pending.remote.take()
                or await store.get_item(key) is not pending
                or pending.future.done()  # handed an answer from another worker meanwhile
            )
        ):
            return _DECLINED
        if type(store) is _RootStore:
            store.cache.pop(key)
        else:
            await store.pop_item(key)
        if isinstance(pending, Waiter):
            owner = pending.owner
            if owner is not None and owner.listen is self and owner.key == ctx.key:
                # the parked handler resumes holding the turn we hold now
                pending.handed_over = True
                owner.holds = True
                ctx.holds = False
            pending.future.set_result(event)
            return None
        # the step's own kwargs win over the extras it may ask for: fn(update, **kwargs);
        # what its filter gave (a dict, as aiogram filters give handlers) is one of those
        if type(passed) is dict:
            extra = {"conversation": key, **passed, **pending.kwargs}
        else:
            extra = {"conversation": key, **pending.kwargs}
        if key is not ctx.key:
            # a chat-wide step: its ``steps`` is its own conversation's, not the sender's
            extra.setdefault("steps", Steps(key, self))
        # its timer runs on while it runs (a timer that fires now finds it gone, and does
        # nothing), so a step that declines the update goes back with its timeout
        try:
            result = await self._run_step(pending.callback, event, data, kind, extra, pending.args)
        except SkipHandler:
            await _put_back(store, key, pending)
            return _DECLINED
        except BaseException:
            pending.cancel_timer()
            raise
        pending.cancel_timer()
        return result

    async def _try_persisted(
        self,
        event: TelegramObject,
        data: dict[str, Any],
        ctx: UpdateContext,
        key: ConversationKey,
        kind: str,
        command: bool,
        callback_data: str | None,
        only: frozenset[str] | None = None,
        *,
        again: bool = True,
        empty_checked: bool = False,
    ) -> Any:
        """Offer the update to the persisted step of ``key`` (with ``only``: if it is one of
        those); ``_MISS`` when none takes its kind, ``_DECLINED`` when one let it through.
        ``empty_checked``: the caller already asked `_known_empty`, which said no."""
        storage = self.storage
        assert storage is not None
        skey = storage_key_of(ctx, key)
        if not empty_checked and self._known_empty(data, ctx, key):
            return _MISS  # nothing to claim
        update = data.get("event_update")
        update_id = update.update_id if isinstance(update, Update) else None
        owner = new_owner()
        # the sender's conversation takes its turn across workers in this same call
        turn = storage.order_updates and ctx.turn is None and key == ctx.key
        if storage.shared:
            claim, lease = await self._claim(
                storage, skey, kind, command, callback_data, owner, update_id, turn
            )
        else:
            # one process (memory, File): no lease, no ordering window; claimed in place, the
            # retry loop of _claim only for a step another update runs right now
            lease = None
            claim = await storage.claim(
                skey,
                now=get_clock().now(),
                kind=kind,
                is_command=command,
                callback_data=callback_data,
                lease=None,
                owner=owner,
                update_id=update_id,
                window=0.0,
                turn=turn,
            )
            if claim.status in _WAIT:
                claim, lease = await self._claim(
                    storage, skey, kind, command, callback_data, owner, update_id, turn
                )
        if turn:
            ctx.turn = _Renewal(self, storage, skey, owner, turn=True)
        if claim.status is _WAITER:
            # (with a turn, it is given back once the hand-over ends: Listen.__call__)
            return await self._hand_over(
                storage, skey, claim, update if isinstance(update, Update) else None
            )
        record = claim.record
        if claim.status in _PASS or record is None:
            if claim.status is _STALE:
                logger.info(
                    "conversation %s: update %s is at or below the last one applied (%s): a "
                    "redelivery or a late arrival; it goes to the normal handlers",
                    key,
                    update_id,
                    None if record is None else record.seq,
                )
            # hand what we read to the handlers, so they need not read it again
            self._seen(data, storage).remember(skey, record)
            return _MISS if claim.status in _NOT_TAKEN or record is None else _DECLINED
        name = record.callback or ""
        try:
            entry = self.registry.resolve(name, record)
        except BaseException:
            # a resolver's bug reaches dp.errors, but must not leave the step claimed: the
            # conversation's next updates would wait busy_wait for a claim nobody ends
            if claim.status is _CLAIMED:
                await self._end_claim(storage, skey, owner, True)
            raise
        if claim.status is _EXPIRED:
            # the deadline passed before the scheduler fired it: this update fires it
            generation = storage.generation
            await self._fire_timeout(key, record, data.get("bot"))
            if again and storage.generation != generation:
                after = await storage.read(skey)
                if after is not None and after.callback == record.callback:
                    # on_timeout registered the same step again (a reminder that asks again):
                    # this update answers it. A step that asks something else is not answered
                    # by a message sent before it was asked.
                    return await self._try_persisted(
                        event, data, ctx, key, kind, command, callback_data, only, again=False
                    )
            return _DECLINED
        if only is not None and name not in only:
            # someone else's chat-wide step: not ours to route here, so leave it as it was
            if claim.status is _CLAIMED:
                await storage.end_claim(skey, owner, keep_step=True)
            logger.warning(
                "conversation %s: chat-wide step %r is pending, but this Listen routes only "
                "%s chat-wide; Listen(chat_wide=True) routes every chat-wide step",
                key,
                name,
                sorted(only),
            )
            return _MISS
        if entry is None:
            if claim.status is _CHECK and record.token:
                await storage.claim_token(skey, record.token)
            else:
                await storage.end_claim(skey, owner)
            logger.error(
                "conversation %s: stored next step %r is not registered (renamed or removed?); "
                "it was cleared and the update goes to the normal handlers",
                key,
                name,
            )
            return _DECLINED
        passed: Any = None
        if claim.status is _CHECK:
            context = {**data, "step_context": record, "conversation": key}
            passed = await filter_result(entry.filter, event, context)
            if not passed:
                return _DECLINED
            claimed = await storage.claim_token(
                skey, record.token or "", lease, owner, update_id=update_id
            )
            if claimed is None:  # taken or replaced meanwhile
                return _DECLINED
            record = claimed
        extra = {
            "conversation": key,
            "step_context": record,
            "aiostep_storage": storage,
            **record.kwargs,  # the step's own kwargs win, as for an in-process step
        }
        if type(passed) is dict:  # what its filter gave, as aiogram filters give handlers
            extra = {**passed, **extra}
        if key is not ctx.key:
            # a chat-wide step: its ``steps`` is its own conversation's, not the sender's
            extra.setdefault("steps", Steps(key, self))
        # The step stays stored while it runs: its outcome (a next step, or the end) is a
        # write that names this claim. Until then a dead process loses nothing.
        claims = ctx.claims
        if claims is None:
            claims = ctx.claims = {}
        claims[skey] = owner
        renewal = _Renewal(self, storage, skey, owner) if lease is not None else None
        failed = False
        try:
            return await self._run_step(entry.callback, event, data, kind, extra)
        except ClaimLostError:
            claims.pop(skey, None)  # another update owns the step now: leave it alone
            raise
        except NotThisConversation:
            # not this conversation's update at all: the step stays pending as it was, and
            # the update is routed on as if the sender had nothing pending
            failed = True
            return _MISS
        except SkipHandler:
            # the step declines this update, as a handler does: it stays pending as it was
            # and the update goes on to the normal handlers
            failed = True
            return _DECLINED
        except BaseException:
            failed = True
            raise
        finally:
            if renewal is not None:
                renewal.cancel()
            if claims.get(skey) == owner:
                del claims[skey]
                await self._end_claim(storage, skey, owner, failed)

    def _known_empty(self, data: dict[str, Any], ctx: UpdateContext, key: ConversationKey) -> bool:
        """Whether the storage knows at once, with no claim, that ``key`` holds nothing (a
        local storage answers from its index; one that orders updates never skips the claim,
        which takes the conversation's turn). Then the handlers may reuse that finding."""
        storage = self.storage
        assert storage is not None
        if storage.order_updates:
            return False
        skey = storage_key_of(ctx, key)
        if not storage.holds_nothing(skey):
            return False
        self._seen(data, storage).remember(skey, None)
        return True

    @staticmethod
    def _seen(data: dict[str, Any], storage: BaseStorage) -> SeenRecords:
        """The records this update's routing read, handed to handlers as ``aiostep_seen``."""
        seen = data.get("aiostep_seen")
        if not isinstance(seen, SeenRecords):
            seen = data["aiostep_seen"] = SeenRecords(storage)
        return seen

    async def _hand_over(
        self, storage: BaseStorage, skey: str, claim: Claim, update: Update | None
    ) -> Any:
        """A ``wait_for`` parked in another worker takes this update: hand it over there
        (handled: ``None``), or, when that waiter is gone or declines it, route it here."""
        if storage.handover is None or claim.waiter is None or update is None:
            return _DECLINED
        if await storage.handover.offer(skey, claim.waiter, update):
            return None
        return _DECLINED

    async def _end_claim(self, storage: BaseStorage, skey: str, owner: str, failed: bool) -> None:
        """A step ended without writing its outcome: it is done, or (``failed``) offered again
        with everything it had, so the user can answer once more."""
        try:
            await storage.end_claim(skey, owner, keep_step=failed)
        except Exception:
            if not failed:
                raise
            # the step's own error is what dp.errors must see; the claim lapses with its lease
            logger.exception("conversation %s: could not end the claim of a failed step", skey)

    async def _claim(
        self,
        storage: BaseStorage,
        skey: str,
        kind: str,
        command: bool,
        callback_data: str | None,
        owner: str,
        update_id: int | None,
        turn: bool = False,
    ) -> tuple[Claim, float | None]:
        """Claim for an update; on a shared storage, wait while another worker runs this
        conversation's step (it renews its lease while alive), and hold the update for the
        ordering window so updates of one conversation are taken in ``update_id`` order."""
        give_up: float | None = None  # worked out when a claim must wait (rarely)
        shared = storage.shared
        # the storage applies the window only while other workers share it (Redis counts them)
        window = self.order_window if shared else 0.0
        delay = 0.005
        while True:
            now = get_clock().now()
            lease = now + self.step_lease if shared else None
            claim = await storage.claim(
                skey,
                now=now,
                kind=kind,
                is_command=command,
                callback_data=callback_data,
                lease=lease,
                owner=owner,
                update_id=update_id,
                window=window,
                turn=turn,
            )
            if claim.status not in _WAIT:
                return claim, lease
            record = claim.record
            if record is not None and record.claim in self.parked_claims:
                # the step's own update is parked in wait_for here and gave up its turn:
                # this update (one its waiter did not take) goes on to the handlers now,
                # rather than wait busy_wait for a step that waits for another update
                return claim, lease
            loop = asyncio.get_running_loop()
            if give_up is None:
                give_up = loop.time() + self.busy_wait
            if loop.time() >= give_up:
                return claim, lease
            if claim.status is ClaimStatus.WAIT:
                await asyncio.sleep(window)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def _take_turn(self, ctx: UpdateContext, data: dict[str, Any]) -> None:
        """Take the turn of the update's conversation across workers (storages with
        ``order_updates``): wait while another update of it runs or a lower ``update_id``
        waits, for ``busy_wait`` seconds at most (then go on without it)."""
        storage = self.storage
        assert storage is not None
        skey = storage_key_of(ctx, ctx.key)
        update = data.get("event_update")
        update_id = update.update_id if isinstance(update, Update) else None
        owner = new_owner()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.busy_wait
        delay = 0.005
        while True:
            status = await storage.take_turn(
                skey, owner, update_id, self.order_window, self.step_lease
            )
            if status not in _WAIT or loop.time() >= give_up:
                break
            if status is ClaimStatus.WAIT:
                await asyncio.sleep(self.order_window)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        ctx.turn = _Renewal(self, storage, skey, owner, turn=True)

    async def leave_turn(self, ctx: UpdateContext) -> None:
        """Give the conversation's turn across workers back (a ``wait_for`` parks, or the
        update is done), so its next update runs on whichever worker it reached."""
        renewal, ctx.turn = ctx.turn, None
        if renewal is None:
            return
        renewal.cancel()
        try:
            await renewal.storage.leave_turn(renewal.skey, renewal.owner)
        except Exception:
            # the turn lapses with its lease; the update itself was handled
            logger.warning("conversation %s: could not give its turn back", renewal.skey)

    def _run_step(
        self,
        callback: Callable[..., Any],
        event: TelegramObject,
        data: dict[str, Any],
        kind: str,
        extra: dict[str, Any],
        args: tuple[Any, ...] = (),
    ) -> Awaitable[Any]:
        """Call a step like the handler it stands in for: inside the observer's inner
        middlewares (a DB session middleware, ...), with what it asks for by name. Returns
        what to await (no coroutine of its own around it: one frame fewer per step)."""

        router = data.get("event_router")
        observer = router.observers.get(kind) if router is not None else None
        if observer is None or not observer.middleware:
            # no merged copy of data: the step's few parameters are looked up in both
            return call_with_context(callback, event, *args, context=data, extra=extra)

        async def as_handler(event: TelegramObject, **kwargs: Any) -> Any:
            return await call_with_context(callback, event, *args, context=kwargs, extra=extra)

        inner = list(observer.middleware)
        wrapped = MiddlewareManager.wrap_middlewares(inner, as_handler)
        result: Awaitable[Any] = wrapped(event, dict(data))
        return result

    async def _fire_timeout(self, key: ConversationKey, record: StateContext, bot: Any) -> None:
        """Call the ``on_timeout`` of an expired step (the step is already removed)."""
        if record.on_timeout is None:
            return
        entry = self.registry.get(record.on_timeout)
        if entry is None:
            logger.error("conversation %s: on_timeout %r is not registered", key, record.on_timeout)
            return
        extra = {"step_context": record, "aiostep_storage": self.storage, **record.kwargs}
        await run_on_timeout(entry.callback, key, bot, extra)

    async def run_timeout(
        self, key: ConversationKey, record: StateContext, bot: Any, owner: str
    ) -> None:
        """Run the ``on_timeout`` of the step of ``record``, which the scheduler claimed as
        ``owner``: what it writes there (a next step, the end) is the claim's outcome, as a
        step's writes are; if it writes nothing, the step ends (it timed out)."""
        storage = self.storage
        assert storage is not None
        skey = storage_key(key)
        data = self.scheduler.handler_data(bot)
        data["steps"] = Steps(key, self)
        ctx = UpdateContext(
            key=key, listen=self, event=None, data=data, task=asyncio.current_task()
        )
        ctx.claims = {skey: owner}
        reset = current_update.set(ctx)
        renewal = _Renewal(self, storage, skey, owner) if storage.shared else None
        try:
            await self._fire_timeout(key, record, bot)
        finally:
            current_update.reset(reset)
            if renewal is not None:
                renewal.cancel()
            if ctx.claims is not None and ctx.claims.get(skey) == owner:
                await storage.end_claim(skey, owner)

    def arm_timer(self, key: ConversationKey, token: str, timeout: float, bot: Any) -> None:
        """Make the scheduler look at the deadline of a step just registered for ``key``, due in
        ``timeout`` seconds (one timer for all conversations, never one per conversation).

        A Listen installed without [`setup`][aiostep.setup] starts its scheduler here, with the
        update's bot.
        """
        scheduler = self.scheduler
        if not scheduler.running and bot is not None and self.storage is not None:
            scheduler.running = True  # no startup ran (Listen installed by hand)
        if bot is not None and getattr(bot, "id", None) is not None:
            scheduler.add_bot(bot)
        scheduler.wake_at(get_clock().now() + timeout)

    def disarm_timer(self, key: ConversationKey) -> None:
        """Kept for compatibility: a persisted step's deadline lives in the storage's index,
        and a deadline that no longer matches the record fires nothing."""


def setup(
    dp: Dispatcher,
    store: MetaStore | None = None,
    storage: Any = None,
    *,
    updates: Iterable[str] = ALL_UPDATES,
    registry: StepRegistry | None = None,
    chat_wide: bool = False,
    step_lease: float = 5.0,
    busy_wait: float = 30.0,
    order_window: float = 0.1,
) -> Listen:
    """Install one [`Listen`][aiostep.Listen] on every observer it belongs to (messages, edited
    messages, callback queries) and return it. With a storage, its deadline
    [`Scheduler`][aiostep.Scheduler] starts when the Dispatcher starts (with the startup's
    bots) and stops when it shuts down; then the storage is closed, as aiogram does with its
    FSM storage. ``step_lease``, ``busy_wait`` and ``order_window``
    are [`Listen`][aiostep.Listen]'s (they matter with several workers on Redis).
    At startup it notes the Dispatcher's bots, so a waiter or step that a startup hook
    registered after it names with no ``bot_id`` belongs to the bot (when there is one)."""
    # one kind given as a str is that kind, not its letters (as check_updates takes it)
    installed = (updates,) if isinstance(updates, str) else tuple(updates)
    for name in installed:
        if name not in ALL_UPDATES:
            raise ValueError(f"updates: {name!r} is not one of {ALL_UPDATES}")
        if any(isinstance(m, Listen) for m in dp.observers[name].outer_middleware):
            raise ValueError(
                f"dp.{name} already has an aiostep Listen; set aiostep up once per Dispatcher "
                "(two would route each update twice)"
            )
    listen = Listen(
        store,
        storage,
        registry=registry,
        chat_wide=chat_wide,
        step_lease=step_lease,
        busy_wait=busy_wait,
        order_window=order_window,
    )

    async def note_bots(bots: Iterable[Bot] | None = None, bot: Bot | None = None) -> None:
        # a waiter or step named at startup (a startup hook registered after setup, a job),
        # before any update, belongs to the bot the Dispatcher starts with: without this no
        # bot is "seen" yet, its key has no bot, and the user's answer never reaches it
        for one in bots if bots is not None else () if bot is None else (bot,):
            keys.seen_bots.add(one.id)

    dp.startup.register(note_bots)
    if listen.storage is not None:
        # the scheduler fires stored deadlines from startup on, and stops before the storage
        # closes
        listen.scheduler.dispatcher = dp
        dp.startup.register(listen.scheduler.on_startup)
        dp.shutdown.register(listen.scheduler.stop)
        dp.shutdown.register(listen.storage.close)
        if listen.storage.shared and order_window > 0:
            # a worker announces itself at startup, so the others order updates with it from
            # its first update on
            dp.startup.register(listen.storage.peers)

    async def warn_unrequested_updates(dispatcher: Dispatcher) -> None:
        # start_polling asks Telegram only for update types that have handlers
        used = set(dispatcher.resolve_used_update_types())
        missing = [name for name in installed if name not in used]
        if missing:
            # a button press nobody receives is a silent bug; an unreceived edit rarely matters
            log = logger.warning if "callback_query" in missing else logger.info
            log(
                "aiostep listens to %s, but the bot has no handler for them, so polling with "
                "the default allowed_updates will not receive them: pass "
                "allowed_updates=dp.resolve_used_update_types() + %r to start_polling",
                ", ".join(missing),
                missing,
            )

    dp.startup.register(warn_unrequested_updates)
    for name in installed:
        dp.observers[name].outer_middleware(listen)
    return listen


async def _put_back(store: MetaStore, key: ConversationKey, step: LocalStep) -> None:
    """An in-process step that raised ``SkipHandler`` declines the update, as a handler does:
    it stays pending as it was, unless it registered something else meanwhile."""
    if await store.get_item(key) is None:
        await store.set_item(key, step)
    else:
        step.cancel_timer()


class _NoGates(Gates):
    """The gates of a Listen whose storage orders updates itself (``order_updates``)."""

    async def acquire(self, key: Hashable) -> None:
        return None

    def release(self, key: Hashable) -> None:
        return None


class _Renewal:
    """Renews a claim's lease (or, with ``turn``, a conversation's turn) every third of
    ``step_lease`` while its step (update) runs: no task or round trip at all for one that ends
    sooner."""

    def __init__(
        self, listen: Listen, storage: BaseStorage, skey: str, owner: str, *, turn: bool = False
    ) -> None:
        self.listen, self.storage, self.skey, self.owner = listen, storage, skey, owner
        self.turn = turn
        self.task: asyncio.Task[None] | None = None
        self.handle: asyncio.TimerHandle | None = None
        self._schedule()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self.handle = loop.call_later(self.listen.step_lease / 3, self._fire)

    def _fire(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        lease = get_clock().now() + self.listen.step_lease
        try:
            if self.turn:
                alive = await self.storage.renew_turn(self.skey, self.owner, self.listen.step_lease)
            else:
                alive = await self.storage.renew(self.skey, self.owner, lease)
        except Exception:
            # the storage is unreachable: the step's own outcome write will say so
            logger.warning("conversation %s: could not renew a step's lease", self.skey)
            alive = True
        if alive:
            self._schedule()

    def cancel(self) -> None:
        """Stop renewing (the step ended)."""
        if self.handle is not None:
            self.handle.cancel()
        if self.task is not None:
            self.task.cancel()
