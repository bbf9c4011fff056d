"""The ``Wizard`` DSL, compiled onto aiostep's persisted next steps and storages.

Each step method becomes a step registered with aiostep under ``"<wizard>:<STATE>"``; moving
to a step is ``aiostep.register_next_step`` of that name, written together with the wizard's
state and collected data (one storage write). The pending step's JSON kwargs carry the rest of
a running wizard: navigation history, the prompt's button nonce, attempts and a schema
fingerprint. Nothing lives only in process memory.
"""

from __future__ import annotations

import contextvars
import copy
import enum
import hashlib
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Literal
from weakref import WeakKeyDictionary

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import Default
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    TelegramObject,
)
from aiogram.utils.formatting import Text

import aiostep
from aiostep.keys import ANYONE, ConversationKey, is_command, key_of, storage_key
from aiostep.storage import BaseStorage, MemoryStateStorage, StateContext, as_async
from aiostep_dialogs import validators as v
from aiostep_dialogs.formatting import Markup, effective_parse_mode, escape, fill
from aiostep_dialogs.timeouts import TICK, Duration, Timing, compile_tick, park_options, timings_of
from aiostep_dialogs.validators import ValidationError, Validator

__all__ = ["Commands", "Finish", "StepSpec", "Texts", "Wizard", "step"]

logger = logging.getLogger("aiostep_dialogs")

#: Bumped when the stored layout of a running wizard changes. Stored as ``"v"`` with every
#: running wizard; a record of a version above this one is not read (see ``_record_version``).
RECORD_VERSION = 3
_HISTORY_LIMIT = 30
_BUTTON_PREFIX = "aw"

Prompt = str | Text | Callable[[Any], str | Text | Awaitable[str | Text]]


@dataclass(frozen=True)
class StepSpec:
    """One declared step: its state, method, prompt, validation and choices."""

    state: enum.Enum
    method: Callable[..., Any]
    prompt: Prompt
    validate: tuple[Validator, ...] = ()
    error: str | None = None
    choices: Mapping[str, str] | None = None
    keyboard: Literal["inline", "reply"] = "inline"
    optional: bool = False
    default: Any = None
    max_attempts: int | None = None
    branches: tuple[enum.Enum, ...] = ()
    timeout: Duration | None = None
    remind_after: Duration | tuple[Duration, ...] | None = None
    reminder: str | None = None


def step(
    state: enum.Enum,
    *,
    prompt: Prompt,
    validate: Validator | Sequence[Validator] | None = None,
    error: str | None = None,
    choices: Mapping[str, str] | Sequence[str] | None = None,
    keyboard: Literal["inline", "reply"] = "inline",
    optional: bool = False,
    default: Any = None,
    max_attempts: int | None = None,
    branches: Sequence[enum.Enum] = (),
    timeout: Duration | None = None,
    remind_after: Duration | Sequence[Duration] | None = None,
    reminder: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a wizard step for ``state``.

    Args:
        prompt: what the bot asks: a string, a format string over the collected data
            (``"{name}, is that right?"``: the string is markup for the wizard's parse mode, the
            values are escaped for it), an aiogram formatting node (``Text``, ``Bold``...), or a
            sync/async callable taking the wizard and returning either (a returned string is
            sent as is: escape values in it with
            [`aiostep_dialogs.formatting.escape`][aiostep_dialogs.escape]).
        validate: one validator or a list applied in order; the method gets the result.
            Default: a text message of at most 4096 characters (or one of ``choices``).
        error: shown instead of a validator's own reason when the input is rejected.
        choices: ``{value: label}`` (or a list of values) offered as buttons; the method gets
            the value. Typed labels are accepted too.
        keyboard: ``"inline"`` buttons under the prompt, or a ``"reply"`` keyboard.
        optional: ``/skip`` is allowed; the method then gets ``default``.
        max_attempts: give up (``on_give_up``) after this many rejected inputs in a row.
        branches: states the method may return, for the flow diagram (returns of
            ``self.State.X`` in the method's source are found without it).
        timeout: seconds (or a ``timedelta``) the user has to answer, from when the prompt
            was sent; then ``on_timeout`` runs, with no message needed (default: the
            wizard's ``timeout``). See the timeouts guide.
        remind_after: one or more durations after the prompt at which a reminder re-asks it
            (default: the wizard's ``remind_after``); they do not move the timeout.
        reminder: the reminder's text, sent above the prompt (default: ``texts.reminder``).
    """
    if validate is None:
        chain: tuple[Validator, ...] = ()
    elif callable(validate):
        chain = (validate,)
    else:
        chain = tuple(validate)
    options: dict[str, str] | None = None
    if choices is not None:
        options = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
        if not options:
            raise ValueError("choices must not be empty")
    if keyboard not in ("inline", "reply"):
        raise ValueError(f"keyboard must be 'inline' or 'reply', got {keyboard!r}")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__wizard_step__ = StepSpec(  # type: ignore[attr-defined]
            state=state,
            method=fn,
            prompt=prompt,
            validate=chain,
            error=error,
            choices=options,
            keyboard=keyboard,
            optional=optional,
            default=default,
            max_attempts=max_attempts,
            branches=tuple(branches),
            timeout=timeout,
            remind_after=(
                tuple(remind_after)
                if remind_after is not None
                and not isinstance(remind_after, (int, float, timedelta))
                else remind_after
            ),
            reminder=reminder,
        )
        return fn

    return decorator


@dataclass(frozen=True)
class Commands:
    """Navigation command names (without ``/``); ``None`` turns one off."""

    back: str | None = "back"
    cancel: str | None = "cancel"
    skip: str | None = "skip"


@dataclass(frozen=True)
class Texts:
    """Every text a wizard says on its own; override per wizard (``texts = Texts(...)``)."""

    cancelled: str = "Cancelled."
    gave_up: str = "Too many attempts; let's stop here. You can start again any time."
    cannot_go_back: str = "This is the first step; there is nothing to go back to."
    cannot_skip: str = "This step can't be skipped."
    stale_button: str = "This button is no longer active."
    progress: str = "Step {index} of {total}"
    interrupted: str = "Sorry, I was interrupted and lost your last message."
    reminder: str = "Still there?"
    timed_out: str = "Time is up; let's stop here. You can start again any time."


@dataclass(frozen=True)
class Finish:
    """Returned by ``self.finish(result)``: end the wizard with ``result``."""

    result: Any = None


def _undo_entry(state: str, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The history entry of an answer at ``state`` that turned ``before`` into ``after``:
    only what ``/back`` needs to undo it (the record stays small, history or not)."""
    entry: dict[str, Any] = {"s": state}
    replaced = {k: v for k, v in before.items() if k not in after or after[k] != v}
    added = [k for k in after if k not in before]
    if replaced:
        entry["r"] = replaced
    if added:
        entry["x"] = added
    return entry


def _undo(entry: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the answer of history ``entry`` undone."""
    if "d" in entry:  # a record of version 2 or older: the whole data before the answer
        old = entry["d"]
        return dict(old) if isinstance(old, dict) else {}
    undone = {k: v for k, v in data.items() if k not in set(entry.get("x", ()))}
    replaced = entry.get("r")
    if isinstance(replaced, dict):
        undone.update(replaced)
    return undone


def _record_version(meta: Mapping[str, Any]) -> int | None:
    """The layout version of a running wizard's stored kwargs, or ``None`` when this code
    cannot read it (a newer version, or not a version at all). Versions 1 to 3 differ only in
    what a history entry holds (up to 2 the whole data before the answer, ``"d"``; from 3 the
    answer's changes to undo, ``"r"`` and ``"x"``), which ``/back`` reads entry by entry."""
    version = meta.get("v", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        return None
    return version if 1 <= version <= RECORD_VERSION else None


def _schema_of(meta: Mapping[str, Any]) -> int | None:
    """The ``schema_version`` a running wizard's data was stored with (``"sv"``, absent: 1),
    or ``None`` if it is not one."""
    schema = meta.get("sv", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        return None
    return schema


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


async def _quietly(call: Awaitable[Any]) -> None:
    """Run a cosmetic Bot API call (toast, removing buttons); its failure must not cost input."""
    try:
        await call
    except TelegramAPIError as exc:
        logger.warning("cosmetic Bot API call failed: %s", exc)


class Wizard:
    """Base class of a multi-step conversation.

    Subclass it, declare ``class State(Enum)`` and decorate one method per state with
    [`step`][aiostep_dialogs.step]. A step method gets the validated value and returns ``None`` (go
    to the next declared step), a ``State`` member (go there), or ``self.finish(result)``.

    Class options: ``wizard_id`` (stable id, stored with every conversation; default
    ``module.QualName``; set it with ``class Signup(Wizard, name="signup")``), ``commands``,
    ``texts``, ``show_progress``, ``scope`` (``"user"``: one wizard per user in each chat,
    the default; ``"chat"``: one per chat, anyone in it may answer), ``on_reentry``
    (``"resume"`` re-sends the current prompt when the wizard is started again mid-way,
    ``"restart"`` starts over), ``max_attempts`` (default for steps), ``parse_mode`` (what
    prompts and ``answer`` are sent with; default: the bot's ``DefaultBotProperties``).

    Options for redeploying a changed wizard under running conversations: ``renamed``
    (``{"OLD_NAME": State.NEW}``: a conversation stored at a state since renamed continues
    at the new one), ``fallback`` (where a conversation stored at a state since removed
    continues; default: the latest step it answered that still exists, else the first
    step), ``schema_version`` (an int, default 1: bump it when the shape of the collected
    data changes, and convert old data in [`migrate`][aiostep_dialogs.Wizard.migrate]).
    """

    State: ClassVar[type[enum.Enum]]
    wizard_id: ClassVar[str]
    commands: ClassVar[Commands] = Commands()
    texts: ClassVar[Texts] = Texts()
    show_progress: ClassVar[bool] = False
    on_reentry: ClassVar[Literal["resume", "restart"]] = "resume"
    scope: ClassVar[Literal["user", "chat"]] = "user"
    max_attempts: ClassVar[int | None] = None
    parse_mode: ClassVar[str | Default | None] = Default("parse_mode")
    renamed: ClassVar[Mapping[str, enum.Enum]] = {}
    fallback: ClassVar[enum.Enum | None] = None
    schema_version: ClassVar[int] = 1
    timeout: ClassVar[Duration | None] = None
    remind_after: ClassVar[Duration | Sequence[Duration] | None] = None

    _steps: ClassVar[tuple[StepSpec, ...]] = ()
    _timing: ClassVar[dict[str, Timing]] = {}
    _renamed: ClassVar[dict[str, str]] = {}
    _drift_step: ClassVar[aiostep.RegisteredStep | None] = None
    _by_state: ClassVar[dict[str, StepSpec]] = {}
    _fingerprint: ClassVar[str] = ""
    _storage: ClassVar[BaseStorage | None] = None
    # set on a restored wizard: its stored state was removed, and it was moved (not yet
    # written); the fingerprint its last prompt's buttons were sent with
    _moved: bool = False
    _sent_fp: str = ""
    # set by a reminder re-parking its step: when the step was asked, and reminders sent
    _wake: tuple[float, int] | None = None

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: list[StepSpec] = []
        for klass in reversed(cls.__mro__):
            if klass is Wizard or klass is object:
                continue
            # a subclass may replace a parent's step for a state; one class body may not
            # declare two, or the later one would silently win
            declared: dict[enum.Enum, str] = {}
            for attr_name, attr in vars(klass).items():
                spec = getattr(attr, "__wizard_step__", None)
                if isinstance(spec, StepSpec):
                    _check_step_method(cls, klass, attr_name, spec, declared)
                    declared[spec.state] = attr_name
                    specs = [s for s in specs if s.state != spec.state] + [spec]
        # only now: a step named wizard_id must be seen (and refused) before this replaces it
        cls.wizard_id = name or f"{cls.__module__}.{cls.__qualname__}"
        if not specs:
            return  # an abstract intermediate class
        state_enum = cls.__dict__.get("State") or getattr(cls, "State", None)
        if not (isinstance(state_enum, type) and issubclass(state_enum, enum.Enum)):
            raise TypeError(f"{cls.__qualname__} must declare `class State(Enum)`")
        for spec in specs:
            if not isinstance(spec.state, state_enum):
                raise TypeError(
                    f"{cls.__qualname__}.{spec.method.__name__}: {spec.state!r} is not a "
                    f"member of {cls.__qualname__}.State"
                )
        _check_targets(cls, state_enum, specs)
        cls._steps = tuple(specs)
        cls._by_state = {s.state.name: s for s in specs}
        cls._renamed = _check_drift_options(cls, state_enum)
        shape = cls.wizard_id + "|" + ",".join(s.state.name for s in specs)
        cls._fingerprint = hashlib.sha1(shape.encode()).hexdigest()[:8]
        cls._timing = timings_of(cls, specs)
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
        for spec in specs:
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

    # -- per update -----------------------------------------------------------------------------
    def __init__(
        self,
        *,
        key: ConversationKey,
        bot: Bot,
        event: TelegramObject | None = None,
        data: dict[str, Any] | None = None,
        state: enum.Enum | None = None,
        history: list[dict[str, Any]] | None = None,
        nonce: str = "",
        attempts: int = 0,
    ) -> None:
        self.key = key
        self.bot = bot
        self.event = event
        #: the data collected so far (JSON values); persisted after each step
        self.data: dict[str, Any] = data if data is not None else {}
        self.state = state
        #: the steps answered so far, newest last: ``{"s": state name, "r": {name: value the
        #: answer replaced}, "x": [names the answer added]}`` (empty parts left out)
        self.history: list[dict[str, Any]] = history if history is not None else []
        self.nonce = nonce
        self.attempts = attempts
        #: what ``finish(result)`` carried, for ``on_finish``
        self.result: Any = None

    # -- API for step methods and hooks --------------------------------------------------------
    def finish(self, result: Any = None) -> Finish:
        """End the wizard (``on_finish`` runs with ``self.result = result``)."""
        return Finish(result)

    def goto(self, state: enum.Enum) -> enum.Enum:
        """Go to ``state`` next (return it from a step method)."""
        if state.name not in self._by_state:
            raise ValueError(f"{type(self).__qualname__} has no step for {state!r}")
        return state

    @classmethod
    def to_mermaid(cls) -> str:
        """This wizard's flow as a Mermaid flowchart (see `aiostep_dialogs.graph`)."""
        from aiostep_dialogs.graph import to_mermaid

        return to_mermaid(cls)

    async def answer(self, text: str | Text, **kwargs: Any) -> Message:
        """Send ``text`` to the wizard's chat (and forum topic).

        A string is markup for the wizard's ``parse_mode`` (escape user data in it with
        [`aiostep_dialogs.formatting.escape`][aiostep_dialogs.escape]); an aiogram formatting node
        (``Text``, ``Bold``...) is sent as text and entities, with nothing to escape.
        """
        if self.key.thread_id is not None:
            kwargs.setdefault("message_thread_id", self.key.thread_id)
        if isinstance(text, Text):
            return await self.bot.send_message(self.key.chat_id, **{**text.as_kwargs(), **kwargs})
        kwargs.setdefault("parse_mode", self.parse_mode)
        return await self.bot.send_message(self.key.chat_id, text, **kwargs)

    def _text(self, text: str) -> str:
        """One of ``texts``, escaped for the parse mode in effect unless it is ``Markup``: the
        defaults are plain text, and MarkdownV2 reserves the ``.`` they end in."""
        return escape(text, effective_parse_mode(self.bot, self.parse_mode))

    async def on_start(self) -> None:
        """Called when the wizard starts, before the first prompt."""

    async def on_finish(self) -> None:
        """Called when the last step is done or a step returned ``self.finish(...)``."""

    async def on_cancel(self) -> None:
        """Called on the cancel command; by default says ``texts.cancelled``."""
        await self.answer(self._text(self.texts.cancelled), reply_markup=self._closing_markup())

    async def on_timeout(self) -> Any:
        """Called when the current step's ``timeout`` passes with no answer, with no message
        needed (also after a restart). Return a ``State`` to go there (its prompt is sent),
        ``self.finish(result)`` to finish, or ``None`` (the default) to cancel with
        ``texts.timed_out``."""
        return None

    async def on_give_up(self) -> None:
        """Called after ``max_attempts`` rejected inputs; by default says ``texts.gave_up``."""
        await self.answer(self._text(self.texts.gave_up), reply_markup=self._closing_markup())

    # -- setup ---------------------------------------------------------------------------------
    @classmethod
    def setup(
        cls,
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
        if cls.scope == "chat":
            # only this wizard's conversations are chat-wide: the Dispatcher's other
            # conversations keep their per-user routing, and cost nothing more
            guard.listen.route_chat_wide(cls._registered_names())
        elif cls.scope != "user":
            raise ValueError(f"{cls.__qualname__}.scope must be 'user' or 'chat'")
        router = cls._router(entry)
        dp.include_router(router)
        return router

    @classmethod
    def _router(cls, entry: Any) -> Router:
        router = Router(name=f"wizard:{cls.wizard_id}")
        if entry is not None:
            filters = entry if isinstance(entry, (list, tuple)) else (entry,)

            async def start_handler(message: Message) -> None:
                await cls.start(message)

            router.message.register(start_handler, *filters)
        for action in ("back", "cancel", "skip"):
            command = getattr(cls.commands, action)
            if command is not None:
                router.message.register(cls._nav_handler(action), Command(command))
        prefix = f"{_BUTTON_PREFIX}:"  # any wizard button that no pending step took

        async def stale_button(query: CallbackQuery) -> None:
            await _quietly(query.answer(cls.texts.stale_button))

        router.callback_query.register(stale_button, F.data.startswith(prefix))
        return router

    @classmethod
    def _nav_handler(cls, action: str) -> Callable[..., Awaitable[None]]:
        async def handler(
            message: Message, bot: Bot, aiostep_seen: aiostep.SeenRecords | None = None
        ) -> None:
            key = cls._key(message)
            if key is None:
                raise SkipHandler()
            if cls.scope == "chat" and await cls._sender_has_own_wizard(message, aiostep_seen):
                raise SkipHandler()  # the sender's own wizard comes first, as its answers do
            wizard = await cls._load(key, bot, message, aiostep_seen)
            if wizard is None:
                raise SkipHandler()  # not in this wizard: let other handlers have the command
            _mark_handled()
            await getattr(wizard, f"_do_{action}")()

        handler.__name__ = f"{cls.__name__}_{action}"
        return handler

    # -- entry -----------------------------------------------------------------------------------
    @classmethod
    async def start(cls, event: Message | CallbackQuery, bot: Bot | None = None) -> Wizard:
        """Start (or, per ``on_reentry``, resume) this wizard for the sender of ``event``.

        Another wizard running in the same conversation is ended first, with its
        ``on_cancel``.
        """
        _mark_handled()
        key = cls._key(event)
        if key is None:
            raise ValueError("cannot start a wizard for an update without a user and a chat")
        bot = bot or event.bot
        if bot is None:
            raise ValueError("no Bot: pass bot= or an event that came through a Dispatcher")
        storage = cls._storage_or_fail()
        # the routing of this update already read the record: reuse it (one round trip less)
        ctx = aiostep.current_update.get()
        seen = ctx.data.get("aiostep_seen") if ctx is not None else None
        if isinstance(seen, aiostep.SeenRecords) and seen.storage is storage:
            record = await seen.read(storage_key(key))
        else:
            record = await storage.read(storage_key(key))
        running_cls = None
        if record is not None and record.callback is not None:
            running_cls = _wizards.get(str(record.kwargs.get("w")))
        if running_cls is not None and record is not None:
            running = running_cls._restore(record, key, bot, event)
            if running is not None and running_cls is cls and cls.on_reentry == "resume":
                await running._settle()
                await running._send_prompt(running._spec())
                return running
            if running is not None and running_cls is not cls:
                await running.on_cancel()  # another wizard was running here: it gives way
        wizard = cls(key=key, bot=bot, event=event)
        await wizard.on_start()
        await wizard._enter(cls._steps[0])
        return wizard

    @classmethod
    async def forget(
        cls, chat_id: int, user_id: int | None = None, *, bot: Bot, thread_id: int | None = None
    ) -> None:
        """Forget the conversation this wizard runs in for ``user_id`` in ``chat_id``: its
        pending step, state and collected data are removed from the wizard's storage (a GDPR
        erasure, an admin reset). Works from any handler or from outside an update.

        No hook runs and nothing is sent; the user's next message goes to the normal handlers.
        The record is the conversation's, whichever wizard or step wrote it last.

        Args:
            chat_id: the chat (the user's id for a private chat).
            user_id: the user; not needed when ``scope = "chat"``, where the chat's one
                conversation is forgotten, whoever answered in it.
            bot: the bot the conversation is with (storage keys end in its id).
            thread_id: the forum topic, if the wizard ran in one.
        """
        if cls.scope == "chat":
            user_id = ANYONE
        elif user_id is None:
            raise ValueError(f"{cls.__qualname__}.forget needs the user_id (scope is 'user')")
        await aiostep.unregister_steps(
            user_id,
            chat_id=chat_id,
            thread_id=thread_id,
            bot_id=bot.id,
            storage=cls._storage_or_fail(),
            forget=True,
        )

    # -- internals -------------------------------------------------------------------------------
    @classmethod
    def _key(cls, event: TelegramObject) -> ConversationKey | None:
        """The conversation this wizard runs in for ``event`` (per user, or chat-wide)."""
        key = key_of(event)
        if key is not None and cls.scope == "chat":
            return key._replace(user_id=ANYONE)
        return key

    @classmethod
    async def _sender_has_own_wizard(
        cls, event: TelegramObject, seen: aiostep.SeenRecords | None
    ) -> bool:
        """Whether the sender of ``event`` runs a wizard of their own in this chat (routing
        already read that record: no round trip)."""
        own = key_of(event)
        if own is None:
            return False
        storage = cls._storage_or_fail()
        if seen is not None and seen.storage is storage:
            record = await seen.read(storage_key(own))
        else:
            record = await storage.read(storage_key(own))
        return (
            record is not None
            and record.callback is not None
            and (str(record.kwargs.get("w")) in _wizards)
        )

    @classmethod
    def _step_name(cls, spec: StepSpec) -> str:
        return f"{cls.wizard_id}:{spec.state.name}"

    @classmethod
    def _storage_or_fail(cls) -> BaseStorage:
        """The storage of the Dispatcher handling the current update (each bot keeps its own
        conversations), else that of the latest ``setup``."""
        ctx = aiostep.current_update.get()
        if ctx is not None and ctx.listen.storage is not None:
            return ctx.listen.storage
        if cls._storage is None:
            raise RuntimeError(f"{cls.__qualname__}.setup(dp, ...) was not called")
        return cls._storage

    @classmethod
    def _restore_stepping(
        cls, record: StateContext, key: ConversationKey, bot: Bot, event: TelegramObject
    ) -> Wizard | None:
        """The wizard a claimed step runs, or ``None`` (nothing to do). A newer deploy's
        record is left pending for it: ``SkipHandler`` sends the update on to the handlers."""
        wizard = cls._restore(record, key, bot, event)
        if wizard is None and cls._left_for_newer(record.kwargs):
            raise SkipHandler()
        return wizard

    @classmethod
    def _compile(cls, spec: StepSpec) -> Callable[..., Awaitable[None]]:
        async def on_update(
            event: Message | CallbackQuery,
            step_context: StateContext,
            conversation: ConversationKey,
            bot: Bot,
        ) -> None:
            wizard = cls._restore_stepping(step_context, conversation, bot, event)
            if wizard is None:
                return
            if step_context.claim is not None and isinstance(event, Message):
                # The process that ran this step last died before its outcome (the step was
                # offered again): the user's message it was handling is lost, and this one
                # may not be an answer ("hello?"). Ask again, so they know what is asked.
                await wizard._park(spec)
                await wizard._send_prompt(spec, error=cls.texts.interrupted)
                return
            await wizard._handle(spec, event)

        on_update.__qualname__ = f"{cls.__qualname__}.<step {spec.state.name}>"
        return on_update

    @classmethod
    def _restore(
        cls, record: StateContext, key: ConversationKey, bot: Bot, event: TelegramObject | None
    ) -> Wizard | None:
        """The running wizard stored in ``record``, as this deploy's class sees it: a renamed
        state under its new name, data of an older ``schema_version`` migrated, a removed
        state moved to the fallback (``_moved``; written by the next write). ``None`` when
        ``record`` is not this wizard's, or was written by a newer deploy."""
        meta = record.kwargs
        if _record_version(meta) is None:
            # its layout may mean anything: not misread, treated as not running, kept as is
            logger.error(
                "%s: conversation %s is stored as wizard record version %r, and this code reads "
                "versions 1 to %d (written by a newer deploy?): it is treated as not running "
                "and left as it is",
                cls.wizard_id,
                key,
                meta.get("v"),
                RECORD_VERSION,
            )
            return None
        if meta.get("w") != cls.wizard_id or record.current_state is None:
            return None
        schema = _schema_of(meta)
        if schema is None or schema > cls.schema_version:
            logger.error(
                "%s: conversation %s holds data of schema_version %r, and this class is "
                "schema_version %d (written by a newer deploy?): it is treated as not running "
                "and left as it is",
                cls.wizard_id,
                key,
                meta.get("sv"),
                cls.schema_version,
            )
            return None
        stored = record.current_state.rpartition(":")[2]
        state_name = cls._renamed.get(stored, stored)
        data = dict(record.data)
        history = [
            {**h, "s": cls._renamed[h["s"]]} if h.get("s") in cls._renamed else h
            for h in meta.get("h", [])
            if isinstance(h, dict) and isinstance(h.get("s"), str)
        ]
        if schema < cls.schema_version or any(h["s"] not in cls._by_state for h in history):
            data, history = cls._rebuild(data, history, schema)
        spec = cls._by_state.get(state_name)
        moved = spec is None
        if spec is None:
            spec, data, history = cls._fall_back(data, history)
            logger.warning(
                "%s: stored state %r has no step any more; conversation %s goes on at %s",
                cls.wizard_id,
                stored,
                key,
                spec.state.name,
            )
        elif meta.get("fp") != cls._fingerprint:
            logger.info("%s: conversation %s was stored by another version", cls.wizard_id, key)
        wizard = cls(
            key=key,
            bot=bot,
            event=event,
            data=data,
            state=spec.state,
            history=history,
            # a moved conversation gets the fallback's prompt anew: the old one's buttons die
            nonce=secrets.token_hex(4) if moved else str(meta.get("n", "")),
            attempts=0 if moved else int(meta.get("a", 0)),
        )
        wizard._moved = moved
        wizard._sent_fp = str(meta.get("fp", ""))
        return wizard

    @classmethod
    def _rebuild(
        cls, data: dict[str, Any], history: list[dict[str, Any]], schema: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """``data`` and ``history`` after a deploy that removed steps or changed the data's
        schema: every version of the data ``/back`` can return to is migrated, and the
        answers given at removed steps are undone together with the answer before them."""
        # versions[k]: the data before answer k; versions[-1]: the data now
        versions = [data]
        for entry in reversed(history):
            versions.append(_undo(entry, versions[-1]))
        versions.reverse()
        if schema < cls.schema_version:
            versions = [cls._migrated(version, schema) for version in versions]
        kept = [k for k, entry in enumerate(history) if entry["s"] in cls._by_state]
        rebuilt = [
            _undo_entry(
                history[k]["s"],
                versions[k],
                versions[kept[i + 1]] if i + 1 < len(kept) else versions[-1],
            )
            for i, k in enumerate(kept)
        ]
        return versions[-1], rebuilt

    @classmethod
    def _migrated(cls, data: dict[str, Any], schema: int) -> dict[str, Any]:
        migrated = cls.migrate(copy.deepcopy(data), schema)
        if not isinstance(migrated, dict):
            raise TypeError(
                f"{cls.__qualname__}.migrate returned {type(migrated).__name__}; return the "
                "data dict in the shape of the current schema_version"
            )
        return migrated

    @classmethod
    def _fall_back(
        cls, data: dict[str, Any], history: list[dict[str, Any]]
    ) -> tuple[StepSpec, dict[str, Any], list[dict[str, Any]]]:
        """Where a conversation stored at a removed state goes on: ``fallback``, else the
        latest step it answered, else the first step. A step it answered is gone back to as
        ``/back`` would (that answer and the later ones are undone)."""
        if cls.fallback is not None:
            target = cls.fallback.name
        elif history:
            target = history[-1]["s"]
        else:
            target = cls._steps[0].state.name
        if any(entry["s"] == target for entry in history):
            history = list(history)
            while history:
                entry = history.pop()
                data = _undo(entry, data)
                if entry["s"] == target:
                    break
        return cls._by_state[target], data, history

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Convert the data of a conversation stored at ``schema_version`` ``version`` (lower
        than this class's) to the current shape; override it when you bump
        ``schema_version``. By default the data is kept as it is.

        It runs when such a conversation is restored (its next update), before the steps
        see the data, for the data and for each earlier version of it that ``/back``
        returns to (a pure function of its arguments: it gets a copy and returns the new
        dict). The result is stored with the conversation's next step write, under the new
        ``schema_version``. A classmethod or a staticmethod ``migrate(data, version)``.

        Args:
            data: the collected data, as stored (JSON values).
            version: the ``schema_version`` it was stored with (1 if the class had none).
        """
        return data

    @classmethod
    def _left_for_newer(cls, meta: Mapping[str, Any]) -> bool:
        """Whether a stored conversation was written by a newer deploy (a layout or a data
        schema this one does not read): it is left pending for that deploy."""
        if _record_version(meta) is None:
            return True
        schema = _schema_of(meta)
        return schema is None or schema > cls.schema_version

    @classmethod
    def _registered_names(cls) -> set[str]:
        """The step names this wizard registers: its steps and its renamed states."""
        names = {cls._step_name(spec) for spec in cls._steps}
        return names | {f"{cls.wizard_id}:{old}" for old in cls._renamed}

    @classmethod
    def _compile_moved(cls) -> Callable[..., Awaitable[None]]:
        """The step of a conversation stored at a state this deploy removed: it goes on at
        the fallback, whose prompt is sent (the update answered a question that is gone)."""

        async def on_moved(
            event: Message | CallbackQuery,
            step_context: StateContext,
            conversation: ConversationKey,
            bot: Bot,
        ) -> None:
            wizard = cls._restore_stepping(step_context, conversation, bot, event)
            if wizard is None:
                return
            spec = wizard._spec()
            if not wizard._moved:  # its state exists after all (stored under another name)
                await wizard._handle(spec, event)
                return
            if isinstance(event, CallbackQuery):
                await _quietly(event.answer(cls.texts.stale_button))
            wizard._moved = False
            await wizard._park(spec)
            await wizard._send_prompt(spec)

        on_moved.__qualname__ = f"{cls.__qualname__}.<moved step>"
        return on_moved

    async def _settle(self) -> None:
        """Store where a restored conversation was moved (its stored state was removed) before
        its prompt is shown, so the user's answer reaches that step."""
        if self._moved:
            self._moved = False
            await self._park(self._spec())

    @classmethod
    async def _load(
        cls,
        key: ConversationKey,
        bot: Bot,
        event: TelegramObject | None,
        seen: aiostep.SeenRecords | None = None,
    ) -> Wizard | None:
        storage = cls._storage_or_fail()
        if seen is not None and seen.storage is storage:
            record = await seen.read(storage_key(key))
        else:
            record = await storage.read(storage_key(key))
        if record is None or record.callback is None:
            return None
        wizard = cls._restore(record, key, bot, event)
        if wizard is not None:
            await wizard._settle()
        return wizard

    def _spec(self) -> StepSpec:
        assert self.state is not None
        return self._by_state[self.state.name]

    async def _handle(self, spec: StepSpec, event: Message | CallbackQuery) -> None:
        raw: Any = event
        if isinstance(event, CallbackQuery):
            value = self._pressed(spec, event.data)
            if value is None:
                await _quietly(event.answer(self.texts.stale_button))
                await self._park(spec)  # the claim took the step; put it back unchanged
                return
            await _quietly(event.answer())
            if isinstance(event.message, Message):
                await _quietly(event.message.edit_reply_markup(reply_markup=None))
            raw = value
        snapshot = copy.deepcopy(self.data)
        try:
            value = await self._validate(spec, raw)
            outcome = await spec.method(self, value)
        except ValidationError as exc:
            self.data = snapshot  # rejected input is not stored
            await self._reject(spec, exc.reason)
            return
        except Exception:
            # A bug in a validator or step method: the claim took the step, so put it back as
            # it was (the user can answer again) and let aiogram's error handlers see it.
            self.data = snapshot
            await self._park(spec)
            raise
        await self._advance(spec, outcome, snapshot)

    def _pressed(self, spec: StepSpec, data: str | None) -> str | None:
        """The choice value of a pressed button, or ``None`` if it is stale or forged."""
        if not data or not spec.choices:
            return None
        parts = data.split(":")
        if len(parts) != 4 or parts[0] != _BUTTON_PREFIX:
            return None
        _, fingerprint, nonce, index = parts
        # the prompt may have been sent by the previous deploy: its buttons are still its
        if fingerprint != self._fingerprint and (not self._sent_fp or fingerprint != self._sent_fp):
            return None
        if not self.nonce or nonce != self.nonce:
            return None
        # every field is untrusted: "²".isdigit() is true but int("²") raises, so ASCII only
        if not (index.isascii() and index.isdigit()) or int(index) >= len(spec.choices):
            return None
        return list(spec.choices)[int(index)]

    async def _validate(self, spec: StepSpec, raw: Any) -> Any:
        chain: list[Validator] = []
        if spec.choices is not None:
            chain.append(v.choice(spec.choices))
        elif not spec.validate:
            chain.append(v.text())
        chain.extend(spec.validate)
        return await v.run(chain, raw)

    async def _reject(self, spec: StepSpec, reason: str) -> None:
        self.attempts += 1
        limit = spec.max_attempts if spec.max_attempts is not None else self.max_attempts
        if limit is not None and self.attempts >= limit:
            try:
                await self.on_give_up()
            finally:
                await self._clear()
            return
        self.nonce = secrets.token_hex(4)
        await self._park(spec)
        await self._send_prompt(spec, error=spec.error or reason)

    async def _advance(self, spec: StepSpec, outcome: Any, before: dict[str, Any]) -> None:
        """Go where ``outcome`` says; ``before`` is the data as it was before this answer,
        kept in the history so ``/back`` undoes the answer too."""
        if isinstance(outcome, Finish):
            await self._finish(outcome.result)
            return
        if outcome is None:
            index = self._steps.index(spec)
            if index + 1 >= len(self._steps):
                await self._finish(None)
                return
            target = self._steps[index + 1]
        elif isinstance(outcome, enum.Enum) and outcome.name in self._by_state:
            target = self._by_state[outcome.name]
        elif isinstance(outcome, self.State):
            raise ValueError(
                f"{type(self).__qualname__}.{spec.method.__name__} returned "
                f"State.{outcome.name}, which has no @step; declare one or return another state"
            )
        else:
            raise TypeError(
                f"{type(self).__qualname__}.{spec.method.__name__} returned {outcome!r}; "
                "return None, a State member, or self.finish(...)"
            )
        history = self.history
        self.history = [*self.history, _undo_entry(spec.state.name, before, self.data)][
            -_HISTORY_LIMIT:
        ]
        await self._enter(target, back_to=(spec, before, history))

    async def _enter(
        self,
        spec: StepSpec,
        *,
        back_to: tuple[StepSpec, dict[str, Any], list[dict[str, Any]]] | None = None,
    ) -> None:
        """Move to ``spec`` and send its prompt. If the prompt cannot be sent, the user never
        saw that question: go back to ``back_to`` (the step they did see, with the data and
        history before their answer; without it the conversation ends), then let the error
        reach ``dp.errors``. The user's next message answers the question they saw."""
        self.state = spec.state
        self.attempts = 0
        self.nonce = secrets.token_hex(4)
        await self._park(spec)
        try:
            await self._send_prompt(spec)
        except Exception:
            try:
                if back_to is None:
                    await self._clear()
                else:
                    seen, self.data, self.history = back_to
                    self.state, self.nonce = seen.state, secrets.token_hex(4)
                    await self._park(seen)
            except Exception:
                logger.exception("%s: could not undo a step whose prompt failed", self.key)
            raise

    async def _park(self, spec: StepSpec) -> None:
        """Persist: the next step is ``spec``, with state, data and navigation, in one write."""
        meta = {
            "v": RECORD_VERSION,
            "w": self.wizard_id,
            "fp": self._fingerprint,
            "h": self.history,
            "n": self.nonce,
            "a": self.attempts,
        }
        if self.schema_version != 1:
            meta["sv"] = self.schema_version
        timeout: float | None = None
        if self._timing:
            timeout, extra = park_options(self, spec, self._wake)
            self._wake = None
            meta.update(extra)
        await aiostep.register_next_step(
            self.key.user_id,
            self._step_name(spec),
            chat_id=self.key.chat_id,
            thread_id=self.key.thread_id,
            bot_id=self.key.bot_id,
            kwargs=meta,
            state=spec.state,
            data=self.data,
            storage=self._storage_or_fail(),
            timeout=timeout,
            on_timeout=f"{self.wizard_id}:{TICK}" if timeout is not None else None,
        )

    async def _time_out(self) -> None:
        """The step's timeout passed: go where ``on_timeout`` says (a failing hook ends the
        conversation, which nobody is answering, and the error is logged)."""
        try:
            outcome = await self.on_timeout()
        except Exception:
            await self._clear()
            raise
        if outcome is None:
            try:
                await self.answer(
                    self._text(self.texts.timed_out), reply_markup=self._closing_markup()
                )
            finally:
                await self._clear()
        elif isinstance(outcome, Finish):
            await self._finish(outcome.result)
        elif isinstance(outcome, enum.Enum) and outcome.name in self._by_state:
            await self._enter(self._by_state[outcome.name])
        else:
            await self._clear()
            raise TypeError(
                f"{type(self).__qualname__}.on_timeout returned {outcome!r}; return None, a "
                "State member with a @step, or self.finish(...)"
            )

    async def _finish(self, result: Any) -> None:
        self.result = result
        try:
            await self.on_finish()
        finally:
            await self._clear()

    async def _clear(self) -> None:
        """End the conversation: its whole record goes (the outcome of this update's claim,
        so it is refused if another worker took the step over meanwhile)."""
        await aiostep.unregister_steps(
            self.key.user_id,
            chat_id=self.key.chat_id,
            thread_id=self.key.thread_id,
            bot_id=self.key.bot_id,
            storage=self._storage_or_fail(),
            forget=True,
        )

    async def _render(self, spec: StepSpec) -> str | Text:
        """The prompt of ``spec``: markup for the wizard's parse mode, or a formatting node.

        Values formatted into a template come from users: they are escaped. ``texts.progress``
        is plain text like the other ``Texts``.
        """
        mode = effective_parse_mode(self.bot, self.parse_mode)
        prompt = spec.prompt
        body: str | Text
        if isinstance(prompt, Text):
            body = prompt
        elif callable(prompt):
            result = prompt(self)
            body = await result if inspect.isawaitable(result) else result
        else:
            body = fill(prompt, self.data, mode)
        if not self.show_progress:
            return body if isinstance(body, Text) else str(body)
        index = self._steps.index(spec) + 1
        progress = self.texts.progress.format(index=index, total=len(self._steps))
        if isinstance(body, Text):
            return Text(progress, "\n", body)
        if isinstance(self.texts.progress, Markup):
            progress = Markup(progress)
        return f"{escape(progress, mode)}\n{body}"

    def _closing_markup(self) -> ReplyKeyboardRemove | None:
        uses_reply = any(s.choices and s.keyboard == "reply" for s in self._steps)
        return ReplyKeyboardRemove() if uses_reply else None

    def _markup(self, spec: StepSpec) -> Any:
        if not spec.choices:
            return self._closing_markup()
        labels = list(spec.choices.values())
        if spec.keyboard == "reply":
            return ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text=label)] for label in labels],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        buttons = [
            InlineKeyboardButton(
                text=label,
                callback_data=f"{_BUTTON_PREFIX}:{self._fingerprint}:{self.nonce}:{i}",
            )
            for i, label in enumerate(labels)
        ]
        one_row = len(buttons) <= 3 and sum(len(label) for label in labels) <= 30
        rows = [buttons] if one_row else [[b] for b in buttons]
        return InlineKeyboardMarkup(inline_keyboard=rows)

    async def _send_prompt(self, spec: StepSpec, error: str | None = None) -> None:
        prompt = await self._render(spec)
        if error:
            # A rejection's reason is plain text: it often quotes what the user sent.
            if isinstance(prompt, Text):
                prompt = Text(error, "\n\n", prompt)
            else:
                mode = effective_parse_mode(self.bot, self.parse_mode)
                prompt = f"{escape(error, mode)}\n\n{prompt}"
        await self.answer(prompt, reply_markup=self._markup(spec))

    async def _do_back(self) -> None:
        if not self.history:
            await self.answer(self._text(self.texts.cannot_go_back))
            await self._send_prompt(self._spec())
            return
        back_to = (self._spec(), self.data, list(self.history))
        entry = self.history.pop()
        self.data = _undo(entry, self.data)  # the answer given there is undone with it
        await self._enter(self._by_state[entry["s"]], back_to=back_to)

    async def _do_cancel(self) -> None:
        try:
            await self.on_cancel()
        finally:
            await self._clear()

    async def _do_skip(self) -> None:
        spec = self._spec()
        if not spec.optional:
            await self.answer(self._text(self.texts.cannot_skip))
            await self._send_prompt(spec)
            return
        snapshot = copy.deepcopy(self.data)
        try:
            outcome = await spec.method(self, spec.default)
        except ValidationError as exc:
            self.data = snapshot
            await self._reject(spec, exc.reason)
            return
        await self._advance(spec, outcome, snapshot)


#: Hooks a subclass overrides with plain methods (never with a step).
_HOOKS = frozenset(("on_start", "on_finish", "on_cancel", "on_give_up", "on_timeout"))


def _reserved_names() -> frozenset[str]:
    """Every name the Wizard runtime itself uses on a wizard: the base class's attributes
    and options, and what ``__init__`` sets on an instance. A step method named so would
    replace it."""
    probe = Wizard(key=ConversationKey(0, 0, None, 0), bot=Bot.__new__(Bot))
    return frozenset(dir(Wizard)) | frozenset(Wizard.__annotations__) | frozenset(vars(probe))


_RESERVED = _reserved_names()


def _check_step_method(
    cls: type[Wizard], klass: type, attr: str, spec: StepSpec, declared: dict[enum.Enum, str]
) -> None:
    """Refuse, at class definition, a step method the runtime could not use as declared."""
    where = f"{cls.__qualname__}.{attr}" if klass is cls else f"{klass.__qualname__}.{attr}"
    if attr in _HOOKS:
        raise TypeError(
            f"{where}: {attr} is a Wizard hook, not a step: override it without @step, and "
            f"give the step for {spec.state!r} another name"
        )
    if attr in _RESERVED:
        raise TypeError(
            f"{where}: the step for {spec.state!r} is named {attr!r}, which the Wizard "
            "runtime itself uses (a method, option or attribute of every wizard); rename the "
            "step method"
        )
    if spec.state in declared:
        raise TypeError(
            f"{where}: {klass.__qualname__} declares two steps for {spec.state!r} "
            f"({declared[spec.state]} and {attr}); keep one, or declare the other for "
            "another state"
        )
    if not inspect.iscoroutinefunction(spec.method):
        raise TypeError(
            f"{where}: a step method must be `async def` (it is awaited with the user's "
            f"answer); write `async def {attr}(self, value)`"
        )


def _check_targets(cls: type[Wizard], state_enum: type[enum.Enum], specs: list[StepSpec]) -> None:
    """Refuse a step whose ``branches=``, or a ``State.X`` its source returns, names a state
    without a step: the wizard would fail only when a user got there."""
    from aiostep_dialogs.graph import returned_names

    with_step = {s.state.name for s in specs}
    for spec in specs:
        name = spec.method.__name__
        for target in spec.branches:
            if not isinstance(target, state_enum):
                raise TypeError(
                    f"{cls.__qualname__}.{name}: branches= names {target!r}, which is not a "
                    f"member of {cls.__qualname__}.State"
                )
        named = [t.name for t in spec.branches] + [
            n for n in returned_names(spec.method) if n in state_enum.__members__
        ]
        for target_name in named:
            if target_name not in with_step:
                raise TypeError(
                    f"{cls.__qualname__}.{name} can go to State.{target_name}, which has no "
                    f"@step: declare a step for State.{target_name}, or go to another state"
                )


def _check_drift_options(cls: type[Wizard], state_enum: type[enum.Enum]) -> dict[str, str]:
    """Refuse, at class definition, ``renamed``/``fallback``/``schema_version`` values a
    redeploy could not use; return ``renamed`` as old name -> new name."""
    where = cls.__qualname__
    version = cls.schema_version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TypeError(f"{where}.schema_version must be an int from 1, got {version!r}")
    if cls.fallback is not None and not (
        isinstance(cls.fallback, state_enum) and cls.fallback.name in cls._by_state
    ):
        raise TypeError(
            f"{where}.fallback is {cls.fallback!r}: name a member of {where}.State that has "
            "a @step (or leave it None)"
        )
    if not isinstance(cls.renamed, Mapping):
        raise TypeError(f"{where}.renamed must be a dict {{'OLD_NAME': State.NEW}}")
    renamed: dict[str, str] = {}
    for old, new in cls.renamed.items():
        if not isinstance(new, state_enum) or new.name not in cls._by_state:
            raise TypeError(
                f"{where}.renamed[{old!r}] is {new!r}: name a member of {where}.State that has "
                "a @step"
            )
        if not isinstance(old, str) or not old or old in cls._by_state:
            raise TypeError(
                f"{where}.renamed has the key {old!r}: give the old state name, as a string, "
                "of a state that has no step any more"
            )
        renamed[old] = new.name
    return renamed


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
            await wizard._settle()
            await wizard._send_prompt(wizard._spec())
        return result
