"""Installing wizards on a Dispatcher: the registries of defined wizards and of installed
Dispatchers, the entry, navigation and stale-button handlers, the prompt guard, and the
resolver of stored conversations whose step this deploy does not register.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from aiogram import Dispatcher, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command
from aiogram.types import (
    CallbackQuery,
    Message,
    TelegramObject,
)

import aiostep
from aiostep.keys import ANYONE, ConversationKey, is_command, key_of, storage_key
from aiostep.storage import BaseStorage, MemoryStateStorage, StateContext, as_async
from aiostep_dialogs import button_data
from aiostep_dialogs.i18n import (
    locale_of,
)
from aiostep_dialogs.record import _record_version
from aiostep_dialogs.timeouts import TICK, compile_tick
from aiostep_dialogs.ui import quietly as _quietly

if TYPE_CHECKING:
    from aiostep_dialogs.wizard import Wizard

logger = logging.getLogger("aiostep_dialogs")
_BUTTON_PREFIX = button_data.BUTTON_PREFIX


@dataclass
class _Marker:
    handled: bool = False


# Set by the prompt guard around a command's handlers; wizard handlers mark it.
_handled: contextvars.ContextVar[_Marker | None] = contextvars.ContextVar(
    "aiostep_dialogs_handled", default=None
)


_wizards: dict[str, type[Wizard]] = {}


_guards: WeakKeyDictionary[Dispatcher, _PromptGuard] = WeakKeyDictionary()


def _mark_handled() -> None:
    marker = _handled.get()
    if marker is not None:
        marker.handled = True


def wizard_named(wizard_id: object) -> type[Wizard] | None:
    """The defined wizard whose ``wizard_id`` a stored record names (``"w"``), or ``None``."""
    return _wizards.get(str(wizard_id))


def is_installed(listen: aiostep.Listen, wizard_id: str) -> bool:
    """Whether the wizard ``wizard_id`` is set up on the Dispatcher that ``listen`` serves."""
    return any(
        guard.listen is listen and wizard_id in guard.wizards for guard in list(_guards.values())
    )


def register(cls: type[Wizard]) -> None:
    """Register a defined wizard: by its id (a redefinition under the same class name
    replaces it), and its steps in aiostep's registry, under ``"<wizard>:<STATE>"``."""
    previous = _wizards.get(cls.wizard_id)
    if previous is not None and previous.__qualname__ != cls.__qualname__:
        raise ValueError(f"wizard name {cls.wizard_id!r} is already used by {previous!r}")
    if previous is not None:
        # the same wizard defined again (a reload): its steps that are gone are gone
        for name in previous._registered_names() - cls._registered_names():
            aiostep.registry.unregister(name)
    _wizards[cls.wizard_id] = cls
    # only its own buttons: the bot's other buttons keep working mid-wizard
    updates = ("message", f"callback_query={_BUTTON_PREFIX}:")
    for spec in cls._steps:
        aiostep.registry.register(
            cls._compile(spec), cls._step_name(spec), updates=updates, replace=True
        )
    for old, new in cls._renamed.items():
        # a conversation stored at the old name resolves to the renamed step
        aiostep.registry.register(
            cls._compile(cls._by_state[new]),
            f"{cls.wizard_id}:{old}",
            updates=updates,
            replace=True,
        )
    # every wizard's deadlines (reminders, timeouts) fire through one registered step
    aiostep.registry.register(compile_tick(cls), f"{cls.wizard_id}:{TICK}", replace=True)
    # a conversation stored at a removed state: see _resolve_stored_wizard
    cls._drift_step = aiostep.RegisteredStep(
        name=f"{cls.wizard_id}:*", callback=cls._compile_moved(), updates=updates
    )
    aiostep.registry.add_resolver("", _resolve_stored_wizard)


def install(
    cls: type[Wizard],
    dp: Dispatcher | Router,
    *,
    entry: Any = None,
    storage: Any = None,
    dispatcher: Dispatcher | None = None,
) -> Router:
    """Install this wizard: entry handler, navigation commands, and aiostep's ``Listen``.

    Args:
        dp: the Dispatcher (or pass a Router and ``dispatcher=`` the root Dispatcher).
        entry: the filter of the message that starts the wizard, e.g.
            ``Command("signup")``, or a list of filters that must all pass (use
            ``Command("start", "signup")`` for either command).
        storage: Memory (default), File or Redis storage; shared by all wizards of ``dp``.
    Returns:
        the wizard's router (already included).
    """
    root = dispatcher if dispatcher is not None else dp
    if not isinstance(root, Dispatcher):
        raise TypeError("pass the root Dispatcher (dispatcher=dp) when dp is a Router")
    guard = _guards.get(root)
    if guard is None:
        listen = _find_listen(root)
        store = as_async(storage) if storage is not None else None
        if listen is None:
            listen = aiostep.setup(
                root,
                storage=store or MemoryStateStorage(),
                updates=("message", "callback_query"),  # what wizard steps take
            )
        elif listen.storage is None:
            raise ValueError(
                "this Dispatcher's aiostep Listen has no storage, and wizards keep their "
                "progress in one: aiostep.setup(dp, storage=...) (or let Wizard.setup "
                "install Listen)"
            )
        elif store is not None and listen.storage is not store:
            raise ValueError(
                "this Dispatcher already has an aiostep Listen with another storage; "
                "give the wizard the same storage (or let Wizard.setup install Listen)"
            )
        elif listen not in root.callback_query.outer_middleware:
            # installed the 0.3 way, on messages only: buttons must reach it too
            root.callback_query.outer_middleware(listen)
        guard = _PromptGuard(listen)
        root.message.outer_middleware(guard)
        _guards[root] = guard
    elif storage is not None and as_async(storage) is not guard.listen.storage:
        raise ValueError("all wizards of one Dispatcher share one storage")
    assert guard.listen.storage is not None
    cls._storage = guard.listen.storage
    guard.wizards.add(cls.wizard_id)  # what a call may run (aiostep_dialogs.calls)
    if cls.scope == "chat":
        # only this wizard's conversations are chat-wide: the Dispatcher's other
        # conversations keep their per-user routing, and cost nothing more
        guard.listen.route_chat_wide(cls._registered_names())
    elif cls.scope != "user":
        raise ValueError(f"{cls.__qualname__}.scope must be 'user' or 'chat'")
    router = cls._router(entry)
    dp.include_router(router)
    return router


def router_for(cls: type[Wizard], entry: Any) -> Router:
    """The wizard's router: the entry handler, the navigation commands and stale buttons."""
    router = Router(name=f"wizard:{cls.wizard_id}")
    if entry is not None:
        filters = entry if isinstance(entry, (list, tuple)) else (entry,)

        async def start_handler(message: Message, **data: Any) -> None:
            await cls.start(message, middleware_data=data)

        router.message.register(start_handler, *filters)
    for action in ("back", "cancel", "skip"):
        command = getattr(cls.commands, action)
        if command is not None:
            router.message.register(cls._nav_handler(action), Command(command))
    prefix = f"{_BUTTON_PREFIX}:"  # any wizard button that no pending step took

    async def stale_button(query: CallbackQuery, **data: Any) -> None:
        # another user's button (their conversation did not take the press), or a stale one
        language = await locale_of(query, data)
        await _quietly(query.answer(language.say(button_data.refusal(cls.texts, query))))

    router.callback_query.register(stale_button, F.data.startswith(prefix))
    return router


def nav_handler(cls: type[Wizard], action: str) -> Callable[..., Awaitable[None]]:
    """The handler of the navigation command ``action`` (back, cancel or skip)."""

    async def handler(message: Message, **data: Any) -> None:
        key = cls._key(message)
        if key is None:
            raise SkipHandler()
        seen = data.get("aiostep_seen")
        if cls.scope == "chat" and await cls._sender_has_own_wizard(message, seen):
            raise SkipHandler()  # the sender's own wizard comes first, as its answers do
        wizard = await cls._load(key, data["bot"], message, seen)
        if wizard is None:
            raise SkipHandler()  # not in this wizard: let other handlers have the command
        wizard.middleware_data = data
        _mark_handled()
        await getattr(wizard, f"_do_{action}")()

    handler.__name__ = f"{cls.__name__}_{action}"
    return handler


def registered_names(cls: type[Wizard]) -> set[str]:
    """The step names this wizard registers: its steps and its renamed states."""
    names = {cls._step_name(spec) for spec in cls._steps}
    return names | {f"{cls.wizard_id}:{old}" for old in cls._renamed}


def _resolve_stored_wizard(name: str, record: StateContext) -> aiostep.RegisteredStep | None:
    """The step of a wizard conversation whose stored step name is not registered: its
    wizard's, when the state was removed by a redeploy; one that removes the conversation,
    when this deploy has no wizard of that id. ``None`` for any other record."""
    meta = record.kwargs
    wizard_id = meta.get("w")
    if (
        not isinstance(wizard_id, str)
        or not name.startswith(wizard_id + ":")
        or "fp" not in meta
        or _record_version(meta) is None
    ):
        return None
    cls = _wizards.get(wizard_id)
    if cls is None:
        return _FORGET_UNKNOWN
    return cls._drift_step


async def _forget_unknown_wizard(
    event: TelegramObject,
    step_context: StateContext,
    conversation: ConversationKey,
    aiostep_storage: BaseStorage,
) -> None:
    """A conversation of a wizard this deploy does not define cannot go on: its whole record
    goes (not only the step), and the update goes on to the normal handlers."""
    logger.error(
        "conversation %s: stored next step %r belongs to wizard %r, which this deploy does "
        "not define (renamed or removed? give wizards a stable name=); the conversation, its "
        "state and data are removed, and the update goes to the normal handlers",
        conversation,
        step_context.callback,
        step_context.kwargs.get("w"),
    )
    await aiostep.unregister_steps(
        conversation.user_id,
        chat_id=conversation.chat_id,
        thread_id=conversation.thread_id,
        bot_id=conversation.bot_id,
        storage=aiostep_storage,
        forget=True,
    )
    raise SkipHandler()


_FORGET_UNKNOWN = aiostep.RegisteredStep(
    name="aiostep_dialogs:unknown-wizard",
    callback=_forget_unknown_wizard,
    updates=("message", "callback_query"),
)


def _find_listen(dp: Dispatcher) -> aiostep.Listen | None:
    for middleware in dp.message.outer_middleware:
        if isinstance(middleware, aiostep.Listen):
            return middleware
    return None


class _PromptGuard:
    """After a command that interrupted a running wizard (``/help``...) and did not end it,
    send the current prompt again so the user knows what is being asked."""

    def __init__(self, listen: aiostep.Listen) -> None:
        self.listen = listen
        #: the ids of the wizards set up on this Dispatcher
        self.wizards: set[str] = set()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not is_command(event):
            return await handler(event, data)
        marker = _Marker()
        reset = _handled.set(marker)
        try:
            result = await handler(event, data)
        finally:
            _handled.reset(reset)
        key = key_of(event)
        storage = self.listen.storage
        if marker.handled or key is None or storage is None:
            return result
        seen = data.get("aiostep_seen")
        read = seen.read if isinstance(seen, aiostep.SeenRecords) else storage.read
        record = await read(storage_key(key))
        if (record is None or record.callback is None) and (
            self.listen.chat_wide or self.listen.chat_wide_steps
        ):
            key = key._replace(user_id=ANYONE)
            record = await read(storage_key(key))
        if record is None or record.callback is None:
            return result
        cls = _wizards.get(str(record.kwargs.get("w")))
        bot = data.get("bot")
        if cls is None or bot is None:
            return result
        wizard = cls._restore(record, key, bot, event)
        if wizard is not None:
            wizard.middleware_data = data
            await wizard._settle()
            await wizard._send_prompt(wizard._spec())
        return result
