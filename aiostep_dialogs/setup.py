"""Installing wizards on a Dispatcher: its registry of wizards and their steps (`WizardSteps`,
in its Listen's ``registry``), the entry, navigation and stale-button handlers, the prompt
guard, and the resolver of stored conversations whose step that registry does not register.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command
from aiogram.types import (
    CallbackQuery,
    Message,
    TelegramObject,
)

import aiostep
from aiostep.context import ListenLike
from aiostep.keys import ANYONE, ConversationKey, is_command, key_of, storage_key
from aiostep.storage import BaseStorage, MemoryStateStorage, StateContext, as_async
from aiostep_dialogs import button_data
from aiostep_dialogs.i18n import (
    locale_of,
)
from aiostep_dialogs.record import _record_version, stored_wizard_id
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


def _mark_handled() -> None:
    marker = _handled.get()
    if marker is not None:
        marker.handled = True


class WizardSteps(aiostep.StepRegistry):
    """A Dispatcher's step registry with its wizards: the steps of the wizards set up on it
    (``"<wizard>:<STATE>"``), over the registry its Listen had (the process-wide one, that
    `aiostep.persisted_step` fills, unless the Listen was given another).

    `install` puts one in its Listen's ``registry``; defining a Wizard subclass registers
    nothing anywhere, so two Dispatchers in one process run different wizard sets, or one
    wizard class with two storages.
    """

    def __init__(self, parent: aiostep.StepRegistry | None) -> None:
        super().__init__(parent)
        #: the wizards set up on this Dispatcher, by ``wizard_id``
        self.wizards: dict[str, type[Wizard]] = {}
        self._base: type[Wizard] | None = None  # the Wizard class, from the first one added
        self.add_resolver("", self._resolve_stored_wizard)

    def add(self, cls: type[Wizard]) -> None:
        """Register ``cls``'s steps here; the same class (or its redefinition under the same
        qualified name, a reload) again replaces it.

        Raises:
            ValueError: another wizard class with the same ``wizard_id`` is set up here.
        """
        previous = self.wizards.get(cls.wizard_id)
        if previous is not None and previous.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"wizard name {cls.wizard_id!r} of {cls.__qualname__} is already used by "
                f"{previous.__qualname__} on this Dispatcher; give one of them another name="
            )
        if previous is not None:
            # the same wizard defined again (a reload): its steps that are gone are gone
            for name in previous._registered_names() - cls._registered_names():
                self.unregister(name)
        self.wizards[cls.wizard_id] = cls
        if self._base is None:
            self._base = next(c for c in reversed(cls.__mro__) if "_steps" in c.__dict__)
        for entry in cls._step_entries:
            self.register(entry.callback, entry.name, updates=entry.updates, replace=True)

    def _resolve_stored_wizard(
        self, name: str, record: StateContext
    ) -> aiostep.RegisteredStep | None:
        """The step of a wizard conversation whose stored step name is not registered here:
        its wizard's, when the state was removed by a redeploy; one that leaves it as it is,
        when its wizard is defined but set up on another Dispatcher; one that removes it,
        when this process defines no wizard of that id. ``None`` for any other record."""
        meta = record.kwargs
        wizard_id = stored_wizard_id(record)
        if (
            wizard_id is None
            or not name.startswith(wizard_id + ":")
            or "fp" not in meta
            or _record_version(meta) is None
        ):
            return None
        cls = self.wizards.get(wizard_id)
        if cls is not None:
            return cls._drift_step
        if self._base is not None and _is_defined(self._base, wizard_id):
            return _NOT_HERE
        return _FORGET_UNKNOWN


def _is_defined(base: type[Wizard], wizard_id: str) -> bool:
    """Whether a subclass of ``base`` (the Wizard class) of this id is defined in this process
    (found from the class tree, as Python keeps it: asked only for a record no registry here
    resolves)."""
    todo: list[type[Wizard]] = [base]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__dict__.get("_steps") and sub.wizard_id == wizard_id:
                return True
            todo.append(sub)
    return False


def wizards_of(listen: ListenLike | None) -> dict[str, type[Wizard]]:
    """The wizards set up on the Dispatcher that ``listen`` serves, by ``wizard_id``."""
    registry = listen.registry if listen is not None else None
    return registry.wizards if isinstance(registry, WizardSteps) else {}


def wizard_named(listen: ListenLike | None, wizard_id: object) -> type[Wizard] | None:
    """The wizard set up on ``listen``'s Dispatcher whose ``wizard_id`` a stored record names
    (`aiostep_dialogs.record.stored_wizard_id`), or ``None``."""
    return wizards_of(listen).get(str(wizard_id))


def is_installed(listen: ListenLike | None, wizard_id: str) -> bool:
    """Whether the wizard ``wizard_id`` is set up on the Dispatcher that ``listen`` serves."""
    return wizard_id in wizards_of(listen)


def prepare(cls: type[Wizard]) -> None:
    """Compile a defined wizard's steps, once per class; this registers nothing anywhere
    (`install` adds them to a Dispatcher's `WizardSteps`)."""
    # only its own buttons: the bot's other buttons keep working mid-wizard
    updates = ("message", f"callback_query={_BUTTON_PREFIX}:")
    entries = [
        aiostep.RegisteredStep(cls._step_name(spec), cls._compile(spec), updates=updates)
        for spec in cls._steps
    ]
    # a conversation stored at the old name of a renamed state resolves to the renamed step
    entries += [
        aiostep.RegisteredStep(
            f"{cls.wizard_id}:{old}", cls._compile(cls._by_state[new]), updates=updates
        )
        for old, new in cls._renamed.items()
    ]
    # every wizard's deadlines (reminders, timeouts) fire through one registered step
    entries.append(aiostep.RegisteredStep(f"{cls.wizard_id}:{TICK}", compile_tick(cls)))
    cls._step_entries = tuple(entries)
    # a conversation stored at a removed state: see WizardSteps._resolve_stored_wizard
    cls._drift_step = aiostep.RegisteredStep(
        name=f"{cls.wizard_id}:*", callback=cls._compile_moved(), updates=updates
    )


def install(
    cls: type[Wizard],
    dp: Dispatcher | Router,
    *,
    entry: Any = None,
    storage: Any = None,
    dispatcher: Dispatcher | None = None,
) -> Router:
    """The body of [`Wizard.setup`][aiostep_dialogs.Wizard.setup] (its arguments are
    documented there): install ``cls`` on the root Dispatcher of ``dp``."""
    root = dispatcher if dispatcher is not None else dp
    if not isinstance(root, Dispatcher):
        raise TypeError("pass the root Dispatcher (dispatcher=dp) when dp is a Router")
    guard = _find_guard(root)
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
        if not isinstance(listen.registry, WizardSteps):
            # this Dispatcher's wizards register here; the steps the Listen resolved
            # before (aiostep.persisted_step's, at import) still resolve through it
            listen.registry = WizardSteps(listen.registry)
        guard = _PromptGuard(listen)
        root.message.outer_middleware(guard)
    elif storage is not None and as_async(storage) is not guard.listen.storage:
        raise ValueError("all wizards of one Dispatcher share one storage")
    assert guard.listen.storage is not None
    assert isinstance(guard.listen.registry, WizardSteps)
    guard.listen.registry.add(cls)  # what this Dispatcher runs, and what a call may run
    # outside an update, start/forget use the latest setup's Dispatcher
    cls._storage = guard.listen.storage
    cls._listen = guard.listen
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
        stored_wizard_id(step_context),
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


async def _not_here(event: TelegramObject) -> None:
    """A conversation of a wizard set up on another Dispatcher (sharing this storage): it is
    not this one's to run, so it stays as it is and the update goes to the normal handlers."""
    raise SkipHandler()


_NOT_HERE = aiostep.RegisteredStep(
    name="aiostep_dialogs:not-set-up-here",
    callback=_not_here,
    updates=("message", "callback_query"),
)


def _find_guard(dp: Dispatcher) -> _PromptGuard | None:
    for middleware in dp.message.outer_middleware:
        if isinstance(middleware, _PromptGuard):
            return middleware
    return None


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
        cls = wizard_named(self.listen, stored_wizard_id(record))
        bot = data.get("bot")
        if cls is None or bot is None:
            return result
        wizard = cls._restore(record, key, bot, event)
        if wizard is not None:
            wizard.middleware_data = data
            await wizard._settle()
            await wizard._send_prompt(wizard._spec())
        return result
