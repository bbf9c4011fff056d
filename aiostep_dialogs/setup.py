"""Installing wizards on a Dispatcher: a wizard's compiled steps (`prepare`), its entry,
navigation and stale-button handlers, the prompt guard, and the Listen and registry
(`aiostep_dialogs.registry`) it is added to.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiogram import Dispatcher, Router
from aiogram.dispatcher.event.bases import UNHANDLED, SkipHandler
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import (
    CallbackQuery,
    Message,
    TelegramObject,
)

import aiostep
from aiostep.keys import ANYONE, is_command, key_of, storage_key
from aiostep.storage import MemoryStateStorage, as_async
from aiostep_dialogs import button_data
from aiostep_dialogs.i18n import (
    locale_of,
)
from aiostep_dialogs.record import restore, stored_wizard_id
from aiostep_dialogs.registry import WizardSteps, registered_names, wizard_named
from aiostep_dialogs.render import send_prompt
from aiostep_dialogs.runtime import (
    compile_moved,
    compile_step,
    compile_tick,
    do_back,
    do_cancel,
    do_skip,
    key_for,
    load,
    sender_has_own_wizard,
    settle,
)
from aiostep_dialogs.timeouts import TICK
from aiostep_dialogs.ui import quietly as _quietly

if TYPE_CHECKING:
    from aiogram import Bot

    from aiostep_dialogs.running import RunningWizard

#: what a navigation command runs, by its action
_NAVIGATION = {"back": do_back, "cancel": do_cancel, "skip": do_skip}

logger = logging.getLogger("aiostep_dialogs")
_BUTTON_PREFIX = button_data.BUTTON_PREFIX


class _WizardButton(Filter):
    """A press on a wizard's button (its data starts with ``aw:``). An async ``Filter``, which
    aiogram awaits: a magic filter (``F.data.startswith(...)``) is a sync callable, which
    aiogram runs in a thread, and every button press of the bot that reaches a wizard's router
    would pay that hop."""

    async def __call__(self, query: CallbackQuery) -> bool:
        data = query.data
        return data is not None and data.startswith(_BUTTON_PREFIX + ":")


class _CommandLike(Filter):
    """A message whose text (or caption) starts with one of ``prefix``'s characters: what
    aiogram's ``Command`` filter needs before it parses anything. Put before a ``Command``, it
    turns away the many messages that are not commands at a fraction of the cost (``Command``
    splits the text, builds a ``CommandObject`` and raises to refuse)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    async def __call__(self, message: Message) -> bool:
        # ``Command`` splits on whitespace first, so a command after spaces is one too
        return _starts_with(message, self.prefix)


class _WizardRouter(Router):
    """A wizard's router. It propagates as aiogram's ``Router`` does, except for an update
    none of its handlers could take: every update of the bot reaches every wizard's router,
    and aiogram's propagation alone (middleware wrapping, filter calls) costs ~12 µs per
    router, so an ordinary message paid that once per wizard set up.

    An update is turned away at once only while the router is as `router_for` built it: no
    handler, filter, outer middleware or sub-router added by its user, so nothing else could
    have seen it. Then a message is let in only when its text or caption starts with one of
    ``message_prefixes`` (the first filter of each of its message handlers checks exactly
    that), a button press only when its data is a wizard button's, and no other update at
    all. Otherwise (``message_prefixes`` is ``None``: an entry that is not a command) it
    propagates as usual.
    """

    def __init__(self, *, name: str) -> None:
        super().__init__(name=name)
        #: the characters a message's first one must be for any handler here to take it
        self.message_prefixes: str | None = None
        #: the number of handlers `router_for` registered, by update type
        self._built: dict[str, int] = {}

    def seal(self, message_prefixes: str | None) -> None:
        """Record the router as built: its handlers so far are the wizard's own."""
        self.message_prefixes = message_prefixes
        self._built = {name: len(observer.handlers) for name, observer in self.observers.items()}

    def _untouched(self, update_type: str) -> bool:
        """Whether nothing but the wizard's own handlers could see an ``update_type``."""
        observer = self.observers.get(update_type)
        if observer is None or self.sub_routers:
            return False
        root = getattr(observer, "_handler", None)  # the observer's filters (aiogram 3.x)
        return (
            len(observer.handlers) == self._built.get(update_type, -1)
            and not len(observer.outer_middleware)
            and root is not None
            and not root.filters
        )

    async def propagate_event(self, update_type: str, event: TelegramObject, **kwargs: Any) -> Any:
        """``Router.propagate_event``, returning ``UNHANDLED`` at once for an update that no
        handler here could take (see the class)."""
        if self._untouched(update_type):
            if update_type == "message":
                prefixes = self.message_prefixes
                if prefixes is not None and not _starts_with(event, prefixes):
                    return UNHANDLED
            elif update_type == "callback_query":
                data = getattr(event, "data", None)
                if data is None or not data.startswith(_BUTTON_PREFIX + ":"):
                    return UNHANDLED
            elif not self._built.get(update_type):
                return UNHANDLED
        return await super().propagate_event(update_type, event, **kwargs)


def _starts_with(message: Any, prefixes: str) -> bool:
    """What `_CommandLike` checks, for any of ``prefixes``."""
    text = message.text or message.caption
    if not text:
        return False
    if text[0] in prefixes:
        return True
    text = text.lstrip()
    return bool(text) and text[0] in prefixes


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


def prepare(cls: type[RunningWizard]) -> None:
    """Compile a defined wizard's steps, once per class; this registers nothing anywhere
    (`install` adds them to a Dispatcher's `WizardSteps`)."""
    # only its own buttons: the bot's other buttons keep working mid-wizard
    updates = ("message", f"callback_query={_BUTTON_PREFIX}:")
    entries = [
        aiostep.RegisteredStep(cls._step_name(spec), compile_step(cls, spec), updates=updates)
        for spec in cls._steps
    ]
    # a conversation stored at the old name of a renamed state resolves to the renamed step
    entries += [
        aiostep.RegisteredStep(
            f"{cls.wizard_id}:{old}", compile_step(cls, cls._by_state[new]), updates=updates
        )
        for old, new in cls._renamed.items()
    ]
    # every wizard's deadlines (reminders, timeouts) fire through one registered step
    entries.append(aiostep.RegisteredStep(f"{cls.wizard_id}:{TICK}", compile_tick(cls)))
    cls._step_entries = tuple(entries)
    # a conversation stored at a removed state: see WizardSteps._resolve_stored_wizard
    cls._drift_step = aiostep.RegisteredStep(
        name=f"{cls.wizard_id}:*", callback=compile_moved(cls), updates=updates
    )


def install(
    cls: type[RunningWizard],
    dp: Dispatcher | Router,
    *,
    entry: Any = None,
    storage: Any = None,
    dispatcher: Dispatcher | None = None,
    start: Callable[..., Awaitable[Any]],
) -> Router:
    """The body of [`Wizard.setup`][aiostep_dialogs.Wizard.setup] (its arguments are
    documented there): install ``cls`` on the root Dispatcher of ``dp``."""
    root = dispatcher if dispatcher is not None else dp
    if not isinstance(root, Dispatcher):
        raise TypeError("pass the root Dispatcher (dispatcher=dp) when dp is a Router")
    _check_entry(cls, entry)
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
        guard.listen.route_chat_wide(registered_names(cls))
    elif cls.scope != "user":
        raise ValueError(f"{cls.__qualname__}.scope must be 'user' or 'chat'")
    router = router_for(cls, entry, start)
    dp.include_router(router)
    return router


def _check_entry(cls: type[RunningWizard], entry: Any) -> None:
    """Refuse an ``entry`` that is not a filter (aiogram would fail on every message later)."""
    if entry is None:
        return  # no entry handler: the wizard is started from code (or only called)
    for given in entry if isinstance(entry, (list, tuple)) else (entry,):
        if callable(given) and not isinstance(given, type):
            continue
        if isinstance(given, str):
            fix = f"Command({given.lstrip('/')!r})"
        elif isinstance(given, type):
            fix = "an instance, such as Command('signup')"
        else:
            fix = "a filter, such as Command('signup')"
        raise TypeError(
            f"{cls.__qualname__}.setup(entry={given!r}): entry takes a filter of the message "
            f"that starts the wizard (or a list of them); give {fix}"
        )


def router_for(
    cls: type[RunningWizard], entry: Any, start: Callable[..., Awaitable[Any]]
) -> Router:
    """The wizard's router: the entry handler (which calls ``start``, the wizard's
    ``Wizard.start``), the navigation commands and stale buttons."""
    router = _WizardRouter(name=f"wizard:{cls.wizard_id}")
    # what a message's text must start with for a handler here to take it (None: anything)
    prefixes: str | None = ""
    if entry is not None:
        filters = entry if isinstance(entry, (list, tuple)) else (entry,)

        async def start_handler(message: Message, **data: Any) -> None:
            await start(message, middleware_data=data)

        command = next((f for f in filters if isinstance(f, Command)), None)
        if command is not None:  # a command entry: non-commands turned away cheaply first
            filters = (_CommandLike(command.prefix), *filters)
            prefixes = command.prefix
        else:
            prefixes = None
        router.message.register(start_handler, *filters)
    actions: dict[str, str] = {}  # command -> action (the first one named, if two share it)
    for action in ("back", "cancel", "skip"):
        command = getattr(cls.commands, action)
        if command is not None:
            actions.setdefault(command, action)
    if actions:
        # one handler and one filter for the three commands: every message that reaches this
        # router is checked against it, and most messages are not commands at all
        router.message.register(nav_handler(cls, actions), _CommandLike("/"), Command(*actions))
        if prefixes is not None:
            prefixes += "/"

    async def stale_button(query: CallbackQuery, **data: Any) -> None:
        # another user's button (their conversation did not take the press), or a stale one
        language = await locale_of(query, data)
        await _quietly(query.answer(language.say(button_data.refusal(cls.texts, query))))

    # any wizard button that no pending step took
    router.callback_query.register(stale_button, _WizardButton())
    router.seal(prefixes)
    return router


def nav_handler(
    cls: type[RunningWizard], actions: dict[str, str]
) -> Callable[..., Awaitable[None]]:
    """The handler of the wizard's navigation commands: ``actions`` maps each command (as
    ``Command`` parsed it) to its action (back, cancel or skip)."""

    navigations = {command: _NAVIGATION[action] for command, action in actions.items()}

    async def handler(message: Message, command: CommandObject, **data: Any) -> None:
        navigate = navigations[command.command]
        data["command"] = command
        key = key_for(cls, message)
        if key is None:
            raise SkipHandler()
        seen = data.get("aiostep_seen")
        if cls.scope == "chat" and await sender_has_own_wizard(cls, message, seen):
            raise SkipHandler()  # the sender's own wizard comes first, as its answers do
        wizard = await load(cls, key, data["bot"], message, seen)
        if wizard is None:
            raise SkipHandler()  # not in this wizard: let other handlers have the command
        wizard.middleware_data = data
        _mark_handled()
        await navigate(wizard)

    handler.__name__ = f"{cls.__name__}_navigation"
    return handler


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


async def _for_another_bot(message: Any, bot: Bot | None) -> bool:
    """Whether the command ``message`` starts with names another bot (``/help@other_bot``);
    only such commands cost a look at this bot's username (``bot.me()``, cached by aiogram)."""
    text = message.text if message.text is not None else message.caption
    first = (text or "").split(maxsplit=1)[0] if text else ""
    _, at, mention = first.partition("@")
    if not at or bot is None:
        return False
    me = await bot.me()
    return mention.lower() != (me.username or "").lower()


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
        if marker.handled:
            return result  # (the usual case, as an entry command: no key worked out)
        # the bot from the handler data: event.bot is pydantic's slow path
        key = key_of(event, data.get("bot"))
        storage = self.listen.storage
        if key is None or storage is None:
            return result
        if await _for_another_bot(event, data.get("bot")):
            return result  # /help@other_bot: not this bot's business, as for Command filters
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
        wizard = restore(cls, record, key, bot, event)
        if wizard is not None:
            wizard.middleware_data = data
            await settle(wizard)
            await send_prompt(wizard, wizard._spec())
        return result
