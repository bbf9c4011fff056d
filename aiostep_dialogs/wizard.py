"""The ``Wizard`` DSL, compiled onto aiostep's persisted next steps and storages.

Each step method becomes a step registered with aiostep under ``"<wizard>:<STATE>"``; moving
to a step is ``aiostep.register_next_step`` of that name, written together with the wizard's
state and collected data (one storage write). The pending step's JSON kwargs carry the rest of
a running wizard: navigation history, the prompt's button nonce, attempts and a schema
fingerprint. Nothing lives only in process memory.

This module is the class you subclass: its options, hooks and the API of step methods. Its
base, `aiostep_dialogs.running.RunningWizard`, holds a running conversation's state; the work
is done by modules below it that take that base and never import this one:
`aiostep_dialogs.spec` (the declarations), `aiostep_dialogs.record` (the stored record),
`aiostep_dialogs.render` (prompts and keyboards), `aiostep_dialogs.runtime` (the per-update
machinery) and `aiostep_dialogs.setup` (installing wizards on a Dispatcher); see the
Architecture page.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, cast, overload

from aiogram import Bot, Dispatcher, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.formatting import Text

import aiostep
from aiostep.keys import ANYONE, ConversationKey, key_of, storage_key
from aiostep_dialogs import calls as _calls
from aiostep_dialogs import graph as _graph
from aiostep_dialogs import record as _record
from aiostep_dialogs import registry as _registry
from aiostep_dialogs import render as _rendering
from aiostep_dialogs import runtime as _runtime
from aiostep_dialogs import setup as _setup
from aiostep_dialogs import ui as _ui
from aiostep_dialogs.compiling import (
    _check_drift_options,
    _check_step_method,
    _check_targets,
    _reserved_names,
    check_captions,
    requests_of,
    timings_of,
)
from aiostep_dialogs.i18n import DEFAULT_LOCALE, Language, locale_now, locale_of
from aiostep_dialogs.injection import needs_of

# re-exported: the declarations, the record and the setup helpers were defined here before
# they got modules of their own, and code (tests, users' tools) imports them from here
from aiostep_dialogs.record import (  # noqa: F401
    _HISTORY_LIMIT,
    RECORD_VERSION,
    _record_version,
    _schema_of,
    _undo,
    _undo_entry,
)
from aiostep_dialogs.registry import _FORGET_UNKNOWN, _forget_unknown_wizard  # noqa: F401
from aiostep_dialogs.running import Call, Jump, RunningWizard
from aiostep_dialogs.setup import (  # noqa: F401
    _find_listen,
    _handled,
    _mark_handled,
    _Marker,
    _PromptGuard,
)
from aiostep_dialogs.spec import (  # noqa: F401
    _HOOK_ARGS,
    _HOOKS,
    Commands,
    Finish,
    Prompt,
    StepSpec,
    Texts,
    _given_the_locale,
    _takes_locale,
    check_max_attempts,
    check_ui,
    default_hook,
    overrides_hook,
    step,
)
from aiostep_dialogs.ui import quietly as _quietly  # noqa: F401

__all__ = ["Commands", "Finish", "StepSpec", "Texts", "Wizard", "step"]


class Wizard(RunningWizard):
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

    What a step method, hook or prompt callable can use on ``self``: ``data`` (the answers
    collected so far, JSON values, persisted after each step), ``state`` (the current
    ``State`` member), ``key`` (the conversation: ``chat_id``, ``user_id``, ``thread_id``,
    ``bot_id``), ``bot`` (the `Bot` of the update), ``event`` (the `Message` or
    `CallbackQuery` being handled; ``None`` outside an update), ``middleware_data`` (the
    update's handler data), ``result`` (in ``on_finish``: what ``finish(result)`` carried),
    and ``answer(text)`` to say something in the conversation's chat. Anything from the
    handler data can also be asked for by parameter name, as aiogram handlers do:
    `async def age(self, value: int, db: Database)`. Dependencies come from the update
    being handled, never from storage, so they are there after a restart too.

    ``ui``: ``"send"`` (default) sends each prompt as a new message; ``"edit"`` (one-message
    mode) edits the message whose button was pressed into the next prompt (a typed answer
    gets a new message, and the old one loses its buttons); a step's ``ui=`` overrides it.
    """

    # whether the class has an ``on_start`` of its own (found at class definition)
    _hooks_on_start: ClassVar[bool] = False

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
                    _check_step_method(cls, klass, attr_name, spec, declared, _RESERVED)
                    declared[spec.state] = attr_name
                    specs = [s for s in specs if s.state != spec.state] + [spec]
        # only now: a step named wizard_id must be seen (and refused) before this replaces it
        cls.wizard_id = name or f"{cls.__module__}.{cls.__qualname__}"
        cls._hook_needs = {
            hook: needs
            for hook in _HOOKS
            if (
                needs := needs_of(
                    getattr(cls, hook),
                    1 + _HOOK_ARGS.get(hook, 0),
                    owner=f"{cls.__qualname__}.{hook}",
                )
            )
        }
        cls._hooks_on_start = overrides_hook(cls.on_start)
        check_max_attempts(cls.max_attempts, f"{cls.__qualname__}.max_attempts")
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
        check_captions(cls.__qualname__, specs)
        cls._steps = tuple(specs)
        cls._by_state = {s.state.name: s for s in specs}
        cls._after = {a.state.name: b for a, b in itertools.pairwise(specs)}
        cls._stores_locale = cls._stores_locale or any(s.localized for s in specs)
        cls._renamed = _check_drift_options(cls, state_enum)
        shown = check_ui(cls.ui, f"{cls.__qualname__}.ui")
        cls._edit_states = frozenset(s.state.name for s in specs if (s.ui or shown) == "edit")
        cls._edits = bool(cls._edit_states)
        cls._uses_reply = any(
            (s.choices and s.keyboard == "reply") or s.request is not None for s in specs
        )
        cls._requests = requests_of(cls, specs)
        shape = cls.wizard_id + "|" + ",".join(s.state.name for s in specs)
        cls._fingerprint = hashlib.sha1(shape.encode()).hexdigest()[:8]
        cls._timing = timings_of(cls, specs)
        if cls._timing:
            # a reminder or a timeout speaks with no update: the user's language is stored
            cls._stores_locale = True
        _setup.prepare(cls)

    # -- API for step methods and hooks --------------------------------------------------------
    def finish(self, result: Any = None) -> Finish:
        """End the wizard (``on_finish`` runs with ``self.result = result``)."""
        return Finish(result)

    @overload
    def goto(self, state: enum.Enum) -> enum.Enum: ...

    @overload
    def goto(self, state: type[Wizard]) -> Jump: ...

    def goto(self, state: enum.Enum | type[Wizard]) -> enum.Enum | Jump:
        """Go to ``state`` next (return it from a step method).

        Given another wizard class instead (``return self.goto(Other)``), this wizard ends
        (its ``on_leave`` runs, not ``on_finish``) and ``Other`` starts from its first step in
        the same conversation; if this wizard was called, ``Other`` returns to that caller.
        """
        if isinstance(state, type):
            return Jump(_calls.check_target(self, state, "goto"))
        here = type(self).__qualname__
        if not isinstance(state, self.State):
            raise ValueError(f"{here}.goto({state!r}): not a member of {here}.State")
        if state.name not in self._by_state:
            raise ValueError(f"{here} has no step for {state!r}")
        return state

    def call(
        self,
        wizard: type[Wizard],
        *,
        then: enum.Enum | None = None,
        key: str | None = None,
        cancel: Literal["both", "child"] = "both",
        data: Mapping[str, Any] | None = None,
    ) -> Call:
        """Run ``wizard`` as a sub-wizard, then come back (return it from a step method).

        The called wizard runs in this conversation with its own steps, texts and commands;
        ``/back`` on its first step asks this step again. When it finishes
        (``self.finish(result)`` or its last step), its ``on_finish`` runs, ``result`` is
        stored in this wizard's ``data[key]``, ``on_return`` runs, and this wizard goes on at
        ``then``.

        Args:
            wizard: the Wizard class to run; it must be set up on the same Dispatcher.
            then: the step to go on at; default: the step after this one.
            key: where the result goes in ``self.data``; default: the called wizard's
                ``wizard_id``.
            cancel: what ``/cancel`` in the called wizard ends: ``"both"`` (default) or
                ``"child"`` (only the called wizard; this step is asked again).
            data: the called wizard's starting ``self.data``.
        Raises:
            WizardNotSetUpError: ``wizard`` is not set up on this update's Dispatcher.
            CallDepthError: ``MAX_CALL_DEPTH`` callers are already waiting.
        """
        return _calls.make_call(self, wizard, then, key, cancel, data)

    @classmethod
    def to_mermaid(cls) -> str:
        """This wizard's flow as a Mermaid flowchart (see `aiostep_dialogs.graph`)."""
        return _graph.to_mermaid(cls)

    def _language_sync(self) -> Language:
        """The language of this update, found without awaiting."""
        if self._language_now is not None:
            return self._language_now
        return locale_now(self.event, self.middleware_data, self._stored_locale)

    async def _language(self) -> Language:
        """The language of this update, worked out once (only when a text depends on it)."""
        if self._language_now is None:
            language = await locale_of(self.event, self.middleware_data, self._stored_locale)
            self._language_now = language
            if self.event is not None and self._stores_locale:
                # kept with the conversation for what is said with no update to answer
                self._stored_locale = language.locale if language.locale != DEFAULT_LOCALE else None
        return self._language_now

    async def answer_in_place(self, text: str | Text) -> None:
        """Say a closing ``text`` (a summary, "Cancelled."): in one-message mode (``ui =
        "edit"``) the wizard's message is edited to it and loses its buttons (a new message if
        it can no longer be edited); otherwise it is sent like
        [`answer`][aiostep_dialogs.Wizard.answer]."""
        await _ui.answer_in_place(self, text)

    @default_hook
    async def on_start(self) -> None:
        """Called when the wizard starts, before the first prompt.

        Hooks may ask for handler data by name after ``self``, as step methods do
        (`async def on_finish(self, db: Database)`).
        """

    @default_hook
    async def on_finish(self) -> None:
        """Called when the last step is done or a step returned ``self.finish(...)``."""

    @default_hook
    async def on_cancel(self) -> None:
        """Called on the cancel command; by default says ``texts.cancelled``."""
        await self._language()
        await self.answer_in_place(self._text(self.texts.cancelled))

    @default_hook
    async def on_timeout(self) -> Any:
        """Called when the current step's ``timeout`` passes with no answer, with no message
        needed (also after a restart). Return a ``State`` to go there (its prompt is sent),
        ``self.finish(result)`` to finish, or ``None`` (the default) to cancel with
        ``texts.timed_out``."""
        return None

    @default_hook
    async def on_give_up(self) -> None:
        """Called after ``max_attempts`` rejected inputs; by default says ``texts.gave_up``."""
        await self._language()
        await self.answer_in_place(self._text(self.texts.gave_up))

    @default_hook
    async def on_return(self, child: Wizard, result: Any) -> enum.Enum | Finish | None:
        """Called when a wizard this one called finished, after ``result`` was stored in
        ``self.data``; return ``None`` to go on at the call's ``then``, a ``State`` member
        to go there instead, or ``self.finish(...)``. ``child`` is the finished wizard."""
        return None

    @default_hook
    async def on_leave(self, to: type[Wizard]) -> None:
        """Called when a step returned ``self.goto(to)`` with another wizard class: this
        wizard ends (``on_finish`` does not run) and ``to`` starts."""

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

        Its steps are registered in the registry of that Dispatcher's Listen (a wizard id is
        unique per Dispatcher; a `ValueError` names the other class). One wizard may be set up
        on several Dispatchers, each with its own storage; code outside an update
        (``start(..., bot=)``, ``forget``) uses the Dispatcher set up last.

        Args:
            dp: the Dispatcher (or pass a Router and ``dispatcher=`` the root Dispatcher).
            entry: the filter of the message that starts the wizard, e.g.
                ``Command("signup")``, or a list of filters that must all pass (use
                ``Command("start", "signup")`` for either command).
            storage: Memory (default), File or Redis storage; shared by all wizards of ``dp``.
        Returns:
            the wizard's router (already included).
        """
        return _setup.install(
            cls, dp, entry=entry, storage=storage, dispatcher=dispatcher, start=cls.start
        )

    @classmethod
    async def start(
        cls,
        event: Message | CallbackQuery,
        bot: Bot | None = None,
        *,
        middleware_data: Mapping[str, Any] | None = None,
    ) -> Wizard:
        """Start (or, per ``on_reentry``, resume) this wizard for the sender of ``event``.

        Another wizard running in the same conversation is ended first, with its
        ``on_cancel`` (and its callers with theirs, if it was called). If this wizard is
        waiting there for a wizard it called, ``on_reentry = "resume"`` resumes that one.

        Args:
            middleware_data: the handler data hooks and prompts may ask for by name; by
                default that of the update being handled (what Listen saw), else none.

        Raises:
            WizardNotSetUpError: called in an update of a Dispatcher this wizard is not set
                up on.
        """
        _mark_handled()
        ctx = aiostep.current_update.get()  # read once: every step below asks for it
        key: ConversationKey | None
        if ctx is not None and ctx.event is event:
            # the update being routed (an entry command): its key is made, and its bot is in
            # its handler data (Listen knows both; event.bot is pydantic's slow path)
            key = ctx.key
            if bot is None:
                bot = ctx.data.get("bot")
        else:
            key = key_of(event)
        if key is None:
            raise ValueError("cannot start a wizard for an update without a user and a chat")
        if cls.scope == "chat":
            key = key._replace(user_id=ANYONE)
        bot = bot or event.bot
        if bot is None:
            raise ValueError("no Bot: pass bot= or an event that came through a Dispatcher")
        if ctx is not None and ctx.listen.storage is not None:
            if not _registry.is_installed(ctx.listen, cls.wizard_id):
                raise _calls.WizardNotSetUpError(
                    f"{cls.__qualname__}.start(...): {cls.__qualname__} is not set up on the "
                    f"Dispatcher handling this update; call {cls.__qualname__}.setup(dp) on it "
                    "(entry= may be left out)"
                )
            storage = ctx.listen.storage  # what storage_or_fail answers in an update
        else:
            storage = _record.storage_or_fail(cls)
        # the routing of this update already read the record: reuse it (one round trip less)
        if ctx is None:
            if middleware_data is None:
                middleware_data = {"bot": bot}
            record = await storage.read(storage_key(key))
        else:
            data = ctx.data
            if middleware_data is None:
                middleware_data = data
            # the update's own conversation: the storage key Listen worked out for it
            skey = ctx.skey if key is ctx.key and ctx.skey is not None else storage_key(key)
            seen = data.get("aiostep_seen")
            if isinstance(seen, aiostep.SeenRecords) and seen.storage is storage:
                record = await seen.read(skey)
            else:
                record = await storage.read(skey)
        running_cls = None
        if record is not None and record.callback is not None:
            running_cls = _registry.wizard_named(
                _runtime.listen_of(cls), _record.stored_wizard_id(record)
            )
        if running_cls is not None and record is not None:
            running = _record.restore(running_cls, record, key, bot, event)
            if running is not None:
                running.middleware_data = middleware_data
            resumes = running is not None and (
                running_cls is cls or any(f["w"] == cls.wizard_id for f in running._stack)
            )  # this wizard runs here, or waits for a wizard it called: that one goes on
            if running is not None and resumes and cls.on_reentry == "resume":
                await _runtime.settle(running)
                await _rendering.send_prompt(running, running._spec())
                return cast("Wizard", running)  # a class set up as a Wizard
            if running is not None and running_cls is not cls:
                # another wizard was running here: it gives way (and so do its callers)
                if running._stack:
                    await _calls.give_way(running)
                else:
                    await running._hook("on_cancel")
            if running is not None and running._edits:
                # its last prompt loses its buttons, whatever on_cancel did (or a restart)
                await _ui.close(running, None)
        wizard = cls(key=key, bot=bot, event=event)
        wizard.middleware_data = middleware_data
        wizard._keep_locale()
        if cls._hooks_on_start:  # the base class's does nothing: no coroutine made for it
            await wizard._hook("on_start")
        await _runtime.enter(wizard, cls._steps[0])
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
            storage=_record.storage_or_fail(cls),
            forget=True,
        )

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

    # the runtime's functions, bound for code that calls them on a wizard (the playgrounds,
    # tests); the runtime itself calls the functions directly
    _restore = classmethod(_record.restore)
    _park = _record.park
    _send_prompt = _rendering.send_prompt


_RESERVED = _reserved_names(Wizard)
