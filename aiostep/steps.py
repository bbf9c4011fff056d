"""``register_next_step``: route a user's next update to a function; and ways to undo it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiostep.calling import call_with_context
from aiostep.clock import get_clock, timeout_seconds
from aiostep.context import (
    UpdateContext,
    current_update,
    require_listen,
    resolve_key,
    storage_key_of,
)
from aiostep.exceptions import StepNotRegisteredError, WaitCancelled, WaitSuperseded
from aiostep.keys import ConversationKey
from aiostep.meta_store import MetaStore, _RootStore, root_store
from aiostep.pending import LocalStep, discard
from aiostep.step_registry import (
    DEFAULT_UPDATES,
    RegisteredStep,
    StepRegistry,
    check_updates,
)
from aiostep.step_registry import (
    registry as default_registry,
)
from aiostep.storage.base import (
    UNSET,
    BaseStorage,
    Patch,
    as_async,
    new_owner,
    state_name,
)

if TYPE_CHECKING:
    from aiostep.context import ListenLike

__all__ = ["clear", "register_next_step", "unregister_steps"]

logger = logging.getLogger("aiostep")


def _listen() -> ListenLike | None:
    ctx = current_update.get()
    return None if ctx is None else ctx.listen


def _timeout_context(key: ConversationKey, bot: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "user_id": key.user_id,
        "chat_id": key.chat_id,
        "thread_id": key.thread_id,
        "conversation": key,
    }
    if bot is not None:
        context["bot"] = bot
    return context


async def run_on_timeout(
    fn: Callable[..., Any], key: ConversationKey, bot: Any, kwargs: dict[str, Any]
) -> None:
    """Call an ``on_timeout`` callback with what it asks for (``bot``, ``chat_id``, kwargs...)."""
    try:
        await call_with_context(fn, context={**_timeout_context(key, bot), **kwargs})
    except Exception:
        logger.exception("on_timeout callback %r of conversation %s failed", fn, key)


async def register_next_step(
    user_id: int,
    _next: Callable[..., Any] | str,
    store: MetaStore | None = None,
    *,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    timeout: float | timedelta | None = None,
    on_timeout: Callable[..., Any] | str | None = None,
    chat_id: int | None = None,
    thread_id: int | None = None,
    filter: Any = None,
    updates: Iterable[str] | None = None,
    allow_commands: bool | None = None,
    storage: Any = None,
    state: Any = UNSET,
    data: dict[str, Any] | None = None,
    bot_id: int | None = None,
    registry: StepRegistry | None = None,
) -> None:
    """Route the next update of ``user_id`` in this conversation to ``_next(update, **kwargs)``.

    Without a storage the step lives in this process (any callable, any kwargs). With a
    storage (given here, or to the [`Listen`][aiostep.Listen] handling the current update) the
    step is persisted by its registered name with JSON ``kwargs`` and survives a restart.

    Args:
        timeout: seconds (or a ``timedelta``) after which the step expires and ``on_timeout``
            is called, with no update needed. A persisted step's deadline is stored with it
            and fired by the Listen's [`Scheduler`][aiostep.Scheduler], also after a restart
            and by exactly one of several workers; an in-process step's by a timer.
        on_timeout: called on expiry with what it asks for by name: ``bot``, ``user_id``,
            ``chat_id``, ``thread_id``, ``conversation``, the step's kwargs and, for a
            persisted step, ``step_context`` (its record). For a persisted step it must be a
            registered step (a function decorated with
            [`aiostep.persisted_step`][aiostep.persisted_step], or its name): only its name is
            stored. It runs as the step's claim, so a
            ``register_next_step`` in it (a reminder, a new question) is the step's outcome;
            if it registers nothing the step ends.
        filter: updates failing it go to the normal handlers (in-process steps; a persisted
            step's filter is declared with ``@aiostep.persisted_step(filter=...)``).
        updates: as for [`wait_for`][aiostep.wait_for] (default: the step's registration, else
            messages only).
        allow_commands: as for [`wait_for`][aiostep.wait_for] (default: the step's registration,
            else no commands).
        state: for a persisted step, also set the conversation's state (``None`` clears it)
            in the same single write.
        data: for a persisted step, also replace the conversation's data in that write: a
            conversation's whole transition costs one storage round trip.
        bot_id: the bot (default: that of the update being handled, or the only one seen).
        registry: where a step or ``on_timeout`` given by name or function is looked up
            (default: that of the Listen handling the current update, else the process-wide
            `aiostep.registry`); pass the Listen's from code outside an update.

    Raises:
        TypeError: non-JSON ``kwargs`` for a persisted step, naming the key; a ``timeout``
            that is not seconds or a ``timedelta``, or an ``on_timeout`` without one; an
            in-process step or ``on_timeout`` that is neither callable nor a step name.
        ValueError: a ``timeout`` that is not positive; ``storage=`` inside an update whose
            ``Listen`` has no storage (it would never route the stored step).
        StepNotRegisteredError: a persisted step or ``on_timeout`` given as an unregistered
            function (a ``TypeError``).
    """
    ctx = current_update.get()
    if ctx is None:
        require_listen("register_next_step")  # (an update being routed: a Listen exists)
    if timeout is not None:
        timeout = timeout_seconds(timeout)
    elif on_timeout is not None:
        raise TypeError(f"on_timeout={on_timeout!r} needs a timeout= (seconds or a timedelta)")
    if (
        ctx is not None
        and type(user_id) is int
        and user_id == ctx.key.user_id
        and chat_id is None
        and thread_id is None
        and bot_id is None
    ):
        key = ctx.key  # the sender's own conversation (what resolve_key answers, at once)
    else:
        key = resolve_key(user_id, chat_id, thread_id, bot_id)
    listen = None if ctx is None else ctx.listen
    target: BaseStorage | None = None
    if storage is not None:
        target = as_async(storage)
        if ctx is not None and ctx.listen.storage is None and key.bot_id == ctx.key.bot_id:
            # the Listen that routes this bot's updates reads no storage: the step would be
            # stored and never answered
            raise ValueError(
                f"register_next_step(storage={storage!r}): the Listen routing this update has "
                "no storage, so it would never route the stored step; give the storage to "
                "aiostep.setup(dp, storage=...) (or Listen(storage=...)) instead"
            )
    elif listen is not None:
        target = listen.storage
    in_process = store if store is not None else (listen.store if listen else root_store())
    # the default store read directly: a waiter or local step here is rare, and found at once
    if type(in_process) is _RootStore:
        previous = in_process.cache.get(key)
    else:
        previous = await in_process.get_item(key)
    if previous is not None:
        await in_process.pop_item(key)
        discard(previous, WaitSuperseded(f"a next step was registered on conversation {key}"))
    reg = (
        registry
        if registry is not None
        else listen.registry
        if listen is not None
        else default_registry
    )
    if target is None:
        if state is not UNSET or data is not None:
            raise TypeError("state=/data= need a storage (given here or to Listen)")
        step = _local_step(
            key,
            _next,
            reg,
            in_process,
            ctx,
            args,
            kwargs,
            timeout,
            on_timeout,
            filter,
            updates,
            allow_commands,
        )
        if type(in_process) is _RootStore:
            in_process.cache[key] = step  # the default store, written directly (no await)
        else:
            await in_process.set_item(key, step)
        return
    skey, patch, owner, token = _persisted_patch(
        key,
        _next,
        reg,
        args,
        kwargs,
        timeout,
        on_timeout,
        filter,
        updates,
        allow_commands,
        target,
        ctx,
        state,
        data,
    )
    await target.apply(skey, patch)
    if ctx is not None:
        if owner is not None and ctx.claims is not None:
            ctx.claims.pop(skey, None)  # its outcome is written: nothing left for Listen to end
        if timeout is not None:
            ctx.listen.arm_timer(key, token, timeout, ctx.data.get("bot"))


def _local_step(
    key: ConversationKey,
    fn: Callable[..., Any] | str,
    reg: StepRegistry,
    store: MetaStore,
    ctx: UpdateContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    timeout: float | None,
    on_timeout: Callable[..., Any] | str | None,
    filter: Any,
    updates: Iterable[str] | None,
    allow_commands: bool | None,
) -> LocalStep:
    """The in-process step ``register_next_step`` was asked for (made without an await: this
    is every in-process step's path), its timeout timer armed."""
    if isinstance(fn, str):
        entry = reg.get(fn)
        if entry is None:
            raise StepNotRegisteredError(f"no step is registered as {fn!r}")
        fn = entry.callback
    elif callable(fn):
        entry = reg.find(fn)
    else:
        # refused now: found only when the user answers, it would lose that update
        raise TypeError(f"the next step must be a function or a step name, got {fn!r:.80}")
    if isinstance(on_timeout, str):
        timeout_entry = reg.get(on_timeout)
        if timeout_entry is None:
            raise StepNotRegisteredError(f"no step is registered as {on_timeout!r}")
        on_timeout = timeout_entry.callback
    elif on_timeout is not None and not callable(on_timeout):
        raise TypeError(f"on_timeout must be a function or a step name, got {on_timeout!r:.80}")
    if allow_commands is None:
        allow_commands = entry.allow_commands if entry else False
    step = LocalStep(
        filter if filter is not None else (entry.filter if entry else None),
        # a registration's updates were checked when it was registered
        check_updates(updates) if updates else (entry.updates if entry else DEFAULT_UPDATES),
        allow_commands,
        fn,
        args if type(args) is tuple else tuple(args),
        dict(kwargs) if kwargs else {},
    )
    if timeout is not None:
        bot = ctx.data.get("bot") if ctx is not None else None
        step.timer = get_clock().call_later(
            timeout, _expire_local, store, key, step, on_timeout, bot
        )
    return step


def _expire_local(
    store: MetaStore,
    key: ConversationKey,
    step: LocalStep,
    on_timeout: Callable[..., Any] | None,
    bot: Any,
) -> None:
    async def expire() -> None:
        if await store.get_item(key) is not step:
            return
        await store.pop_item(key)
        if on_timeout is not None:
            await run_on_timeout(on_timeout, key, bot, step.kwargs)

    asyncio.get_running_loop().create_task(expire())


def _claimed_by(ctx: UpdateContext | None, storage: BaseStorage, skey: str) -> str | None:
    """The owner token of this update's claim on the conversation's pending step, if the
    update being routed (``ctx``) claimed it through ``storage``: a write there is that
    claim's outcome, applied only while the claim still owns the step."""
    if ctx is None:
        return None
    claims = ctx.claims
    if not claims or ctx.listen.storage is not storage:
        return None
    return claims.get(skey)


def _registered(reg: StepRegistry, fn: Callable[..., Any] | str, what: str) -> RegisteredStep:
    entry = reg.find(fn)
    if entry is None:
        raise StepNotRegisteredError(
            f"{what} {fn!r} is not a registered step, and a persistent next step is stored by "
            "name: decorate it with @aiostep.persisted_step('some.name')"
        )
    return entry


def _persisted_patch(
    key: ConversationKey,
    fn: Callable[..., Any] | str,
    reg: StepRegistry,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None,
    timeout: float | None,
    on_timeout: Callable[..., Any] | str | None,
    filter: Any,
    updates: Iterable[str] | None,
    allow_commands: bool | None,
    storage: BaseStorage,
    ctx: UpdateContext | None,
    state: Any,
    data: dict[str, Any] | None,
) -> tuple[str, Patch, str | None, str]:
    """The write that registers a persisted step (made without an await: the caller's one
    await is the storage's): its storage key, its patch, the claim it is the outcome of, and
    the registration's token."""
    entry = _registered(reg, fn, "step")
    if args:
        raise TypeError("a persisted next step takes keyword arguments only (kwargs=...), not args")
    if filter is not None:
        raise TypeError(
            f"a persisted step's filter is declared once, at registration: "
            f"@aiostep.persisted_step({entry.name!r}, filter=...)"
        )
    stored_kwargs = kwargs or {}
    # checked (and copied) by the storage's write: every backend runs check_patch first
    timeout_name = (
        _registered(reg, on_timeout, "on_timeout").name if on_timeout is not None else None
    )
    if updates is not None or allow_commands is not None:
        entry = RegisteredStep(
            name=entry.name,
            callback=entry.callback,
            filter=entry.filter,
            allow_commands=entry.allow_commands if allow_commands is None else allow_commands,
            updates=entry.updates if updates is None else check_updates(updates),
        )
    token = new_owner()
    deadline = None if timeout is None else get_clock().now() + timeout
    # by position, in Patch's field order: a keyword call matches each name against Patch's
    # eleven (measured: 357 -> 160 ns, on every registration)
    patch = Patch(
        UNSET,  # state
        entry.name,  # callback
        stored_kwargs,  # kwargs
        deadline,
        timeout_name,  # on_timeout
        token,
        entry.accepts(),  # accepts
        key.chat_id,
    )
    if state is not UNSET:
        patch.state = state_name(state)
    if data is not None:
        patch.data = data
    skey = storage_key_of(ctx, key)
    owner = _claimed_by(ctx, storage, skey)
    if owner is not None:
        patch.owner = owner
    return skey, patch, owner, token


async def unregister_steps(
    user_id: int,
    store: MetaStore | None = None,
    *,
    chat_id: int | None = None,
    thread_id: int | None = None,
    storage: Any = None,
    bot_id: int | None = None,
    forget: bool = False,
) -> None:
    """End whatever the conversation of ``user_id`` is waiting for.

    A parked ``wait_for`` raises [`WaitCancelled`][aiostep.WaitCancelled]; an in-process step
    is dropped; a persisted step is removed from the storage (the one given, or that of the
    ``Listen`` handling the current update). With ``forget`` the conversation's stored state
    and data go too (its whole record). Called from the step that is being run, this is the
    step's outcome: it is refused (``ClaimLostError``) if another worker took the step over.
    """
    key = resolve_key(user_id, chat_id, thread_id, bot_id)
    listen = _listen()
    in_process = store if store is not None else (listen.store if listen else root_store())
    try:
        item = await in_process.pop_item(key)
    except KeyError:
        item = None
    if item is not None:
        discard(item, WaitCancelled(f"unregister_steps ended the wait on conversation {key}"))
    target = as_async(storage) if storage is not None else (listen.storage if listen else None)
    if target is not None:
        patch = Patch(state=None, callback=None, data={}) if forget else Patch(callback=None)
        ctx = current_update.get()
        skey = storage_key_of(ctx, key)
        owner = _claimed_by(ctx, target, skey)
        if owner is not None:
            patch.owner = owner
        await target.apply(skey, patch)
        if owner is not None and ctx is not None and ctx.claims is not None:
            ctx.claims.pop(skey, None)  # its outcome is written: nothing left for Listen to end
        if listen is not None:
            listen.disarm_timer(key)


async def clear(store: MetaStore | None = None) -> None:
    """End every in-process waiter and step (waiters raise ``WaitCancelled``) of ``store``:
    by default that of the ``Listen`` handling the current update, else the root store."""
    if store is None:
        listen = _listen()
        store = listen.store if listen is not None else root_store()
    async for item in store.clear():
        discard(item, WaitCancelled("aiostep.clear() ended the wait"))
