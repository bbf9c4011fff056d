"""``wait_for``: await a user's next update inside a handler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from aiostep.clock import get_clock, timeout_seconds
from aiostep.context import current_update, require_listen, resolve_key
from aiostep.exceptions import WaitSuperseded
from aiostep.handover import RemoteWaiter
from aiostep.keys import ConversationKey, storage_key
from aiostep.meta_store import MetaStore, root_store
from aiostep.pending import Waiter, discard
from aiostep.step_registry import DEFAULT_UPDATES, check_updates

__all__ = ["parked_tasks", "wait_for"]

logger = logging.getLogger("aiostep")

_parked: set[asyncio.Task[Any]] = set()


def parked_tasks() -> set[asyncio.Task[Any]]:
    """The tasks suspended in ``wait_for`` right now (test tools use it to know the bot is idle)."""
    return set(_parked)


def _expire(waiter: Waiter, timeout: float) -> None:
    waiter.fail(TimeoutError(f"no answer within {timeout} s"))


async def _release(remote: RemoteWaiter, key: ConversationKey) -> None:
    try:
        await remote.release()
    except Exception as exc:
        # the answer (or the error) the wait ended with matters more; an offer for this stale
        # registration is declined by this worker, and the registration goes with the record
        logger.warning("conversation %s: could not remove a wait_for's registration: %s", key, exc)


async def wait_for(
    user_id: int,
    timeout: float | timedelta | None = None,
    store: MetaStore | None = None,
    *,
    chat_id: int | None = None,
    thread_id: int | None = None,
    filter: Any = None,
    updates: Iterable[str] = DEFAULT_UPDATES,
    allow_commands: bool = False,
    bot_id: int | None = None,
) -> Any:
    """Wait for the next update of ``user_id`` in this conversation and return it.

    With a shared storage (Redis) on the ``Listen``, the answer may reach any worker: the one
    that receives it hands it over to this one (see the workers guide). Otherwise only this
    process sees it.

    Args:
        user_id: the user to listen to.
        timeout: seconds (or a ``timedelta``) to wait; ``None`` waits indefinitely.
        store: the in-process store (default: that of the ``Listen`` handling the current
            update, else the root store).
        chat_id: the chat (default: the chat of the update being handled, or the private chat).
        thread_id: the forum topic (default: that of the update being handled).
        filter: an aiogram magic filter (``F.text``) or a callable; updates that fail it go to
            the normal handlers and the wait goes on.
        updates: which update kinds answer (``"message"``, ``"edited_message"``,
            ``"callback_query"``); default messages only.
        allow_commands: let a message starting with a bot command answer (by default commands
            go to the normal handlers).
        bot_id: the bot (default: that of the update being handled, or the only one seen).

    Raises:
        TimeoutError: nothing came within ``timeout``.
        TypeError: a ``timeout`` that is not seconds or a ``timedelta`` (raised before
            anything waits, so the user's next message is not taken by a dead wait).
        ValueError: a ``timeout`` that is not positive and finite.
        WaitSuperseded: another ``wait_for`` opened on the same conversation.
        WaitCancelled: ``unregister_steps``/``clear`` ended the wait.
    """
    require_listen("wait_for")
    # checked first: a bad timeout found after the waiter is stored would leave it there,
    # taking the user's next message for a handler that is gone
    seconds = timeout_seconds(timeout)
    key = resolve_key(user_id, chat_id, thread_id, bot_id)
    ctx = current_update.get()
    if store is None:
        # where the Listen routing this update looks: aiostep.setup(dp, store=X) answers from X
        store = ctx.listen.store if ctx is not None else root_store()
    loop = asyncio.get_running_loop()
    # Whatever we wait on, give up the turn of the update being handled while parked: its
    # conversation's next messages (the answer, a /cancel, a DM while we wait on a group)
    # must not queue behind us. The answer hands the turn straight back when it comes from
    # that same conversation; otherwise we queue for it again.
    owner = ctx if ctx is not None and ctx.owned_here() else None
    waiter = Waiter(
        filter=filter,
        updates=check_updates(updates),
        allow_commands=allow_commands,
        future=loop.create_future(),
        owner=owner,
    )
    previous = await store.get_item(key)
    if previous is not None:
        discard(previous, WaitSuperseded(f"a newer wait_for opened on conversation {key}"))
    await store.set_item(key, waiter)
    storage = ctx.listen.storage if ctx is not None else None
    if storage is not None and storage.handover is not None:
        # shared storage: register it, so that the worker the answer reaches hands it over
        try:
            waiter.remote = await storage.handover.park(
                storage_key(key), waiter, ctx.data.get("bot") if ctx is not None else None
            )
        except BaseException:
            if await store.get_item(key) is waiter:
                await store.pop_item(key)
            raise
    parked: tuple[str, ...] = ()
    if owner is not None:
        if owner.claims:
            # a persisted step waits: an update its waiter declines must not wait for it
            parked = tuple(owner.claims.values())
            owner.listen.parked_claims.update(parked)
        # let the answer in: park without holding the conversation's turn
        owner.holds = False
        owner.listen.gates.release(owner.key)
        if owner.turn is not None:  # and the turn across workers (order_updates)
            await owner.listen.leave_turn(owner)
    timer = None if seconds is None else get_clock().call_later(seconds, _expire, waiter, seconds)
    task = asyncio.current_task()
    if task is not None:
        _parked.add(task)
    try:
        return await waiter.future
    finally:
        if parked and owner is not None:
            owner.listen.parked_claims.difference_update(parked)
        if task is not None:
            _parked.discard(task)
        if timer is not None:
            timer.cancel()
        if await store.get_item(key) is waiter:
            await store.pop_item(key)
        if waiter.remote is not None:
            await _release(waiter.remote, key)
        if owner is not None and not waiter.handed_over:
            await owner.listen.gates.acquire(owner.key)
            owner.holds = True
