"""One conversation's handle: its waiters and next steps, bound to its key and its ``Listen``.

``Listen`` puts one into every handler's data as ``steps``, as aiogram's FSM middleware puts
``state``; code outside an update gets one from
[`Listen.conversation`][aiostep.Listen.conversation]. The seed's free functions
(`aiostep.wait_for`, `aiostep.register_next_step`, `aiostep.unregister_steps`) find the same
conversation from the update being handled; a handle needs no lookup and no update.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiostep.clock import timeout_seconds
from aiostep.context import UpdateContext, current_update
from aiostep.keys import ConversationKey
from aiostep.step_registry import DEFAULT_UPDATES
from aiostep.steps import register_next_step, unregister_steps
from aiostep.storage.base import UNSET
from aiostep.waiters import wait_for

if TYPE_CHECKING:
    from aiostep.context import ListenLike

__all__ = ["Steps"]


class Steps:
    """What one conversation waits for: ``wait_for``, ``next_step``, ``cancel``.

    A handler asks for it by name:

    ```python
    @dp.message(Command("start"))
    async def start(message: Message, steps: aiostep.Steps) -> None:
        await message.answer("Your name?")
        name = await steps.wait_for(timeout=60)
    ```

    It uses the ``Listen`` that made it: its in-process store and its storage (a persisted
    next step goes to that storage, so it survives a restart when the storage does).
    """

    __slots__ = ("key", "listen")

    def __init__(self, key: ConversationKey, listen: ListenLike) -> None:
        #: the conversation: chat, user (or `aiostep.ANYONE`), forum topic, bot
        self.key = key
        #: the middleware whose store and storage this handle uses
        self.listen = listen

    def __repr__(self) -> str:
        return f"Steps({self.key!r})"

    async def wait_for(
        self,
        timeout: float | timedelta | None = None,
        *,
        filter: Any = None,
        updates: Iterable[str] = DEFAULT_UPDATES,
        allow_commands: bool = False,
    ) -> Any:
        """Wait for this conversation's next update and return it; see
        [`aiostep.wait_for`][aiostep.wait_for] for the arguments and what it raises."""
        key = self.key
        if current_update.get() is None:
            # code outside an update: wait as an update of this Listen would (so that its
            # shared storage hands over an answer that reaches another worker), holding no turn
            scheduler = getattr(self.listen, "scheduler", None)
            bot = scheduler.bot(key.bot_id) if scheduler is not None else None
            ctx = UpdateContext(
                key, self.listen, None, {"bot": bot}, asyncio.current_task(), holds=False
            )
            reset = current_update.set(ctx)
            try:
                return await wait_for(
                    key.user_id,
                    timeout,
                    self.listen.store,
                    filter=filter,
                    updates=updates,
                    allow_commands=allow_commands,
                )
            finally:
                current_update.reset(reset)
        return await wait_for(
            key.user_id,
            timeout,
            self.listen.store,
            chat_id=key.chat_id,
            thread_id=key.thread_id,
            bot_id=key.bot_id,
            filter=filter,
            updates=updates,
            allow_commands=allow_commands,
        )

    async def next_step(
        self,
        fn: Callable[..., Any] | str,
        *,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        timeout: float | timedelta | None = None,
        on_timeout: Callable[..., Any] | str | None = None,
        filter: Any = None,
        updates: Iterable[str] | None = None,
        allow_commands: bool | None = None,
        state: Any = UNSET,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Route this conversation's next update to ``fn``; see
        [`aiostep.register_next_step`][aiostep.register_next_step] for the arguments."""
        key = self.key
        await register_next_step(
            key.user_id,
            fn,
            self.listen.store,
            args=args,
            kwargs=kwargs,
            timeout=timeout,
            on_timeout=on_timeout,
            chat_id=key.chat_id,
            thread_id=key.thread_id,
            filter=filter,
            updates=updates,
            allow_commands=allow_commands,
            storage=self.listen.storage,
            state=state,
            data=data,
            bot_id=key.bot_id,
            # the Listen's registry, also from code outside an update (no update's Listen
            # to take it from there)
            registry=self.listen.registry,
        )
        if timeout is not None:
            ctx = current_update.get()
            if ctx is None or ctx.listen is not self.listen:
                # no update of this Listen armed its scheduler: a shared storage's scheduler
                # would otherwise see this deadline only at its next poll
                seconds = timeout_seconds(timeout)
                assert seconds is not None
                self.listen.arm_timer(key, "", seconds, None)

    async def cancel(self, *, forget: bool = False) -> None:
        """End what this conversation waits for (a parked `wait_for` raises
        `WaitCancelled`); with ``forget``, its stored state and data go too. See
        [`aiostep.unregister_steps`][aiostep.unregister_steps]."""
        key = self.key
        await unregister_steps(
            key.user_id,
            self.listen.store,
            chat_id=key.chat_id,
            thread_id=key.thread_id,
            storage=self.listen.storage,
            bot_id=key.bot_id,
            forget=forget,
        )
