"""What update is being handled right now, so ``wait_for``/``register_next_step`` can find
the conversation, the storage and the ordering gate without being told."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiostep.keys import ANYONE, ConversationKey, default_bot_id, storage_key

if TYPE_CHECKING:
    from aiostep.meta_store import MetaStore
    from aiostep.ordering import Gates
    from aiostep.step_registry import StepRegistry
    from aiostep.storage.base import BaseStorage, StateContext

__all__ = ["ListenLike", "UpdateContext", "current_update", "resolve_key"]


class ListenLike(Protocol):
    """What the code under [`Listen`][aiostep.Listen] uses of the Listen routing an update
    (``wait_for``, next steps, the conversation handle, the scheduler), so that it need not
    import the middleware that imports it."""

    @property
    def store(self) -> MetaStore:
        """The in-process store of waiters and steps."""
        ...

    @property
    def storage(self) -> BaseStorage | None:
        """Where next steps are persisted, if anywhere."""
        ...

    @property
    def registry(self) -> StepRegistry:
        """Resolves persisted step names."""
        ...

    @property
    def gates(self) -> Gates:
        """The conversations' ordering gates in this process."""
        ...

    @property
    def parked_claims(self) -> set[str]:
        """The owner tokens of step claims whose update is parked in ``wait_for`` here."""
        ...

    @property
    def step_lease(self) -> float:
        """Seconds a claim on a shared storage lives without renewal."""
        ...

    def arm_timer(self, key: ConversationKey, token: str, timeout: float, bot: Any) -> None:
        """Have the scheduler look at a step's deadline, due in ``timeout`` seconds."""
        ...

    def disarm_timer(self, key: ConversationKey) -> None:
        """Forget the deadline of ``key``'s step."""
        ...

    async def run_timeout(
        self, key: ConversationKey, record: StateContext, bot: Any, owner: str
    ) -> None:
        """Run the ``on_timeout`` of the step of ``record``, claimed as ``owner``."""
        ...

    async def leave_turn(self, ctx: UpdateContext) -> None:
        """Give the conversation's turn across workers back."""
        ...


@dataclass(eq=False, slots=True)
class UpdateContext:
    """The update a ``Listen`` middleware is routing in this task."""

    key: ConversationKey
    listen: ListenLike
    event: Any
    data: dict[str, Any] = field(repr=False)
    #: the task routing the update: a task it spawns copies this context, but holds nothing
    task: asyncio.Task[Any] | None = field(default=None, repr=False)
    #: whether ``task`` holds the conversation's ordering gate right now
    holds: bool = True
    #: storage keys whose pending step this update claimed (through ``listen.storage``) and
    #: has not written the outcome of yet, with the claim's owner token (``None`` until the
    #: update claims one: most updates never do, and allocate nothing for it)
    claims: dict[str, str] | None = field(default=None, repr=False)
    #: the conversation's turn across workers while this update holds it (storages with
    #: ``order_updates``): what renews it and names its owner; ``None`` otherwise
    turn: Any = field(default=None, repr=False)
    #: the storage key of ``key`` (worked out once per update: see `storage_key_of`)
    skey: str | None = field(default=None, repr=False)

    def owned_here(self) -> bool:
        """True when the running task is the one that holds this update's turn."""
        return self.holds and self.task is not None and asyncio.current_task() is self.task


def storage_key_of(ctx: UpdateContext | None, key: ConversationKey) -> str:
    """``storage_key(key)``, from the update's context when ``key`` is its conversation's
    (the usual case: made once per update instead of at every step of its routing)."""
    if ctx is not None and key is ctx.key:
        skey = ctx.skey
        if skey is None:
            skey = ctx.skey = storage_key(key)
        return skey
    return storage_key(key)


current_update: ContextVar[UpdateContext | None] = ContextVar("aiostep_update", default=None)

#: How many ``Listen`` middlewares this process created: with none, nothing can ever answer a
#: ``wait_for`` or run a next step, and saying so beats waiting forever.
listens_created = 0


def require_listen(what: str) -> None:
    """Raise ``RuntimeError`` if no ``Listen`` exists in this process."""
    if listens_created == 0:
        raise RuntimeError(
            f"{what}: no aiostep Listen middleware exists, so nothing would ever answer; "
            "install it with aiostep.setup(dp) (or dp.message.outer_middleware(Listen()))"
        )


def resolve_key(
    user_id: int,
    chat_id: int | None = None,
    thread_id: int | None = None,
    bot_id: int | None = None,
) -> ConversationKey:
    """The conversation key for ``user_id``.

    Without ``chat_id``: the chat of the update being handled when it comes from that user
    (or when ``user_id`` is `ANYONE`), else the private chat with the
    user (whose id equals the user id). Without ``bot_id``: the bot of the update being
    handled, else the only bot this process has seen.

    Raises:
        TypeError: an id that is not an ``int`` (``chat_id``, ``thread_id`` and ``bot_id``
            may be ``None``).
    """
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise TypeError(f"user_id must be an int, got {type(user_id).__name__}: {user_id!r}")
    ctx = current_update.get()
    if ctx is not None:
        key = ctx.key
        if (
            user_id == key.user_id
            and (bot_id is None or bot_id == key.bot_id)
            and (
                # without chat_id, the update's chat and (unless given) its topic
                (chat_id is None and (thread_id is None or thread_id == key.thread_id))
                or (chat_id == key.chat_id and thread_id == key.thread_id)
            )
        ):
            return key  # the update's own conversation (the same object: its storage key is kept)
    for name, value in (("chat_id", chat_id), ("thread_id", thread_id), ("bot_id", bot_id)):
        # a str id ("-100123" from a config file) would make a key no update ever has: the
        # wait or in-process step would silently never be answered
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if chat_id is None:
        if ctx is not None and user_id in (ctx.key.user_id, ANYONE):
            chat_id = ctx.key.chat_id
            if thread_id is None:
                thread_id = ctx.key.thread_id
        elif user_id == ANYONE:
            raise ValueError("a chat-wide waiter/step (user ANYONE) needs chat_id=")
        else:
            chat_id = user_id
    if bot_id is None:
        bot_id = ctx.key.bot_id if ctx is not None else default_bot_id()
    return ConversationKey(chat_id, user_id, thread_id, bot_id)
