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
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast, overload
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
from aiostep_dialogs import button_data
from aiostep_dialogs import choices as ch
from aiostep_dialogs import ui as _ui
from aiostep_dialogs import validators as v
from aiostep_dialogs.formatting import Markup, effective_parse_mode, escape, fill
from aiostep_dialogs.i18n import (
    DEFAULT_LOCALE,
    N_,
    Language,
    LazyProxy,
    Localized,
    check_localized,
    is_localized,
    locale_now,
    locale_of,
)
from aiostep_dialogs.injection import NOTHING, Needs, call, needs_of
from aiostep_dialogs.media import Media, MediaSource, check_captions, send_media_prompt
from aiostep_dialogs.requests import CompiledRequest, Request, compile_request, request_kind
from aiostep_dialogs.timeouts import TICK, Duration, Timing, compile_tick, park_options, timings_of
from aiostep_dialogs.validators import ValidationError, Validator

if TYPE_CHECKING:
    from aiostep_dialogs.calls import Call, Jump

__all__ = ["Commands", "Finish", "StepSpec", "Texts", "Wizard", "step"]

logger = logging.getLogger("aiostep_dialogs")

#: Bumped when the stored layout of a running wizard changes. Stored as ``"v"`` with every
#: running wizard; a record of a version above this one is not read (see ``_record_version``).
RECORD_VERSION = 3
_HISTORY_LIMIT = 30
_BUTTON_PREFIX = button_data.BUTTON_PREFIX

Prompt = (
    str | Text | Mapping[str, str] | LazyProxy | Callable[[Any], str | Text | Awaitable[str | Text]]
)


@dataclass(frozen=True)
class StepSpec:
    """One declared step: its state, method, prompt, validation and choices."""

    state: enum.Enum
    method: Callable[..., Any]
    prompt: Prompt
    validate: tuple[Validator, ...] = ()
    error: Localized | None = None
    choices: Mapping[str, Localized] | None = None
    keyboard: Literal["inline", "reply"] = "inline"
    optional: bool = False
    default: Any = None
    max_attempts: int | None = None
    branches: tuple[enum.Enum, ...] = ()
    #: what the method asks for from the handler data, after ``self`` and ``value``
    needs: Needs = NOTHING
    #: what a prompt callable asks for, after the wizard
    prompt_needs: Needs = NOTHING
    ui: _ui.UI | None = None
    #: options from a callable, multi-select, pages or layout (``None``: a plain fixed list)
    picker: ch.Picker | None = None
    request: Request | None = None
    request_label: Localized | None = None
    media: Media | None = None
    #: its prompt, ``error`` or a choice label depends on the language (worked out once, here,
    #: so a step of plain strings pays nothing per update)
    localized: bool = False
    #: reminders and timeout (see aiostep_dialogs.timeouts)
    timeout: Duration | None = None
    remind_after: Duration | tuple[Duration, ...] | None = None
    reminder: Localized | None = None


def _takes_locale(fn: Callable[..., Any]) -> bool:
    """Whether the callable prompt ``fn`` asks for the locale (its one parameter is named
    ``locale``) rather than the wizard."""
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return params == ["locale"]


def _given_the_locale(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    """The prompt callable ``fn(locale)`` as one that takes the wizard."""

    def prompt(wizard: Any) -> Any:
        return fn(wizard.locale)

    prompt.__name__ = getattr(fn, "__name__", "prompt")
    return prompt


def step(
    state: enum.Enum,
    *,
    prompt: Prompt,
    validate: Validator | Sequence[Validator] | None = None,
    error: Localized | None = None,
    choices: Mapping[str, Localized] | Sequence[str] | ch.ChoiceSource | None = None,
    keyboard: Literal["inline", "reply"] = "inline",
    optional: bool = False,
    default: Any = None,
    max_attempts: int | None = None,
    branches: Sequence[enum.Enum] = (),
    ui: _ui.UI | None = None,
    multi: bool = False,
    min: int | None = None,
    max: int | None = None,
    per_page: int | None = None,
    columns: int | None = None,
    request: Request | None = None,
    request_label: Localized | None = None,
    photo: MediaSource | None = None,
    document: MediaSource | None = None,
    video: MediaSource | None = None,
    animation: MediaSource | None = None,
    timeout: Duration | None = None,
    remind_after: Duration | Sequence[Duration] | None = None,
    reminder: Localized | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a wizard step for ``state``.

    The decorated method is `async def name(self, value, ...)`: after ``value`` it may ask
    for anything in the update's handler data by name, as an aiogram handler does (``bot``,
    ``event_from_user``, ``state``, what a middleware or ``dp["db"] = ...`` put there).

    Args:
        prompt: what the bot asks: a string, a format string over the collected data
            (``"{name}, is that right?"``: the string is markup for the wizard's parse mode, the
            values are escaped for it), an aiogram formatting node (``Text``, ``Bold``...), or a
            sync/async callable taking the wizard and returning either (a returned string is
            sent as is: escape values in it with
            [`aiostep_dialogs.formatting.escape`][aiostep_dialogs.escape]). Like the step
            method, the callable may ask for handler data by name after the wizard. In the
            user's language: a ``{locale: template}`` dict, a ``lazy_gettext(...)``
            template, or a callable whose one parameter is named ``locale`` (it gets the
            locale; the others read ``self.locale``); see the Languages guide.
        validate: one validator or a list applied in order; the method gets the result.
            Default: a text message of at most 4096 characters (or one of ``choices``).
        error: shown instead of a validator's own reason when the input is rejected (a
            string, or a text in the user's language: see
            [`Localized`][aiostep_dialogs.i18n.Localized]).
        choices: ``{value: label}`` (or a list of values) offered as buttons; the method gets
            the value. Typed labels are accepted too. A label may be in the user's language
            (a ``Localized``). Or a sync/async callable taking the wizard (and handler data
            by name), or only ``locale``, that returns them when the prompt is shown; a
            press resolves against the values shown, which are stored with the conversation,
            so each value must be a str of at most 64 characters or an int.
        keyboard: ``"inline"`` buttons under the prompt, or a ``"reply"`` keyboard.
        optional: ``/skip`` is allowed; the method then gets ``default``.
        max_attempts: give up (``on_give_up``) after this many rejected inputs in a row.
        branches: states the method may return, for the flow diagram (returns of
            ``self.State.X`` in the method's source are found without it).
        ui: how this step's prompt is shown, overriding the wizard's ``ui``: ``"edit"``
            replaces the pressed message in place, ``"send"`` sends a new message.
        multi: several options may be picked (a press toggles a checkmark, Done submits);
            the method gets the list of values picked, between ``min`` (default 1) and
            ``max`` (default: any number) of them.
        per_page: options shown a page, with previous/next buttons (page turns and toggles
            are not answers).
        columns: option buttons a row (default: up to three short ones on a row, else one).
        request: a reply-keyboard button that makes the user's app send what only it can:
            ``"contact"`` (their own phone number), ``"location"``, ``"poll"``, ``"users"``,
            ``"chat"``, or aiogram's ``KeyboardButtonPollType`` / ``KeyboardButtonRequestUsers``
            / ``KeyboardButtonRequestChat`` for their options. Without ``validate`` the step
            takes only that answer (`v.contact()`, `v.location()`, `v.poll()`,
            `v.users_shared()`, `v.chat_shared()`); anything else gets ``texts.use_button``.
            The keyboard is removed by the next prompt.
        request_label: the button's text (default: ``texts.request_<kind>``).
        photo: send the prompt as the caption of this photo: a ``file_id`` or URL (``str``),
            a file on disk (``pathlib.Path``, uploaded once per process and bot) or an aiogram
            ``InputFile``. ``document``, ``video`` and ``animation`` likewise; one per step.

        timeout: seconds (or a ``timedelta``) the user has to answer, from when the prompt
            was sent; then ``on_timeout`` runs, with no message needed (default: the
            wizard's ``timeout``). See the timeouts guide.
        remind_after: one or more durations after the prompt at which a reminder re-asks it
            (default: the wizard's ``remind_after``); they do not move the timeout.
        reminder: the reminder's text, sent above the prompt (default: ``texts.reminder``).
    Raises:
        TypeError: ``request`` is unknown or combined with ``choices``; a media source is of
            the wrong type, or more than one is given.
        FileNotFoundError: a media ``Path`` names no file.
    """
    if validate is None:
        chain: tuple[Validator, ...] = ()
    elif callable(validate):
        chain = (validate,)
    else:
        chain = tuple(validate)
    options: dict[str, Localized] | None = None
    source = None
    if callable(choices) and not isinstance(choices, (Mapping, Sequence)):
        source = choices
    elif choices is not None:
        options = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
        if not options:
            raise ValueError("choices must not be empty")
    if keyboard not in ("inline", "reply"):
        raise ValueError(f"keyboard must be 'inline' or 'reply', got {keyboard!r}")
    check_localized(prompt, "prompt")
    check_localized(error, "error")
    check_localized(request_label, "request_label")
    check_localized(reminder, "reminder")
    for value, label in (options or {}).items():
        check_localized(label, f"choices[{value!r}]")
    if callable(prompt) and not isinstance(prompt, (Text, LazyProxy)) and _takes_locale(prompt):
        prompt = _given_the_locale(prompt)  # before its needs are read: it asks for none
    if source is not None and _takes_locale(source):
        source = _given_the_locale(source)
    localized = (
        not isinstance(prompt, (str, Text))
        or (error is not None and is_localized(error))
        or (options is not None and any(is_localized(label) for label in options.values()))
        or source is not None  # its labels may be lazy strings, said in the language
        or (request_label is not None and is_localized(request_label))
    )
    shown = None if ui is None else _ui.check_ui(ui, "step(ui=...)")

    prompt_needs = NOTHING
    if callable(prompt) and not isinstance(prompt, (str, Text, LazyProxy)):
        prompt_needs = needs_of(prompt, 1, owner=f"the prompt of {state!r}")

    picker = ch.make_picker(
        source,
        where=f"@step({state!r})",
        static=cast("Mapping[str, str] | None", options),
        keyboard=keyboard,
        multi=multi,
        min=min,
        max=max,
        per_page=per_page,
        columns=columns,
    )
    if request is not None:
        request_kind(request)
        if options is not None:
            raise TypeError(
                f"step {state!r}: request= shows its own reply keyboard and cannot be combined "
                "with choices=; ask for the choice in a step of its own"
            )
    sources = {"photo": photo, "document": document, "video": video, "animation": animation}
    given = [(kind, source) for kind, source in sources.items() if source is not None]
    if len(given) > 1:
        raise TypeError(
            f"step {state!r}: one medium per prompt; got {' and '.join(k for k, _ in given)}"
        )
    media = Media.of(given[0][0], given[0][1]) if given else None  # type: ignore[arg-type]

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
            needs=needs_of(fn, 2, owner=getattr(fn, "__qualname__", repr(fn))),
            prompt_needs=prompt_needs,
            ui=shown,
            picker=picker,
            request=request,
            request_label=request_label,
            media=media,
            localized=localized,
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
    """Every text a wizard says on its own; override per wizard (``texts = Texts(...)``).

    The defaults are said in the user's language (English, Russian, Spanish, Persian; else
    English). A text you give may be a plain string, or depend on the language: see
    [`Localized`][aiostep_dialogs.i18n.Localized].
    """

    cancelled: Localized = N_("Cancelled.")
    gave_up: Localized = N_("Too many attempts; let's stop here. You can start again any time.")
    cannot_go_back: Localized = N_("This is the first step; there is nothing to go back to.")
    cannot_skip: Localized = N_("This step can't be skipped.")
    stale_button: Localized = N_("This button is no longer active.")
    progress: Localized = N_("Step {index} of {total}")
    interrupted: Localized = N_("Sorry, I was interrupted and lost your last message.")
    #: the toast for a press on a button of another user's wizard
    not_yours: Localized = N_("This button is not for you.")
    #: multi-select and pages (see the dynamic and multi choices guide)
    done: Localized = N_("Done")
    previous_page: Localized = N_("« Previous")
    next_page: Localized = N_("Next »")
    selected_mark: Localized = "✅ "  # the same in every language
    too_few: Localized = N_("Choose at least {min}.")
    too_many: Localized = N_("You can choose at most {max}.")
    use_buttons: Localized = N_("Please use the buttons.")
    # the labels of request buttons (`@step(request=...)`), and the reason for another answer
    request_contact: Localized = N_("Share my phone number")
    request_location: Localized = N_("Send my location")
    request_poll: Localized = N_("Create a poll")
    request_users: Localized = N_("Choose a user")
    request_chat: Localized = N_("Choose a chat")
    use_button: Localized = N_('Please use the "{label}" button below.')
    #: a step's reminder (above its prompt again) and what the default on_timeout says
    reminder: Localized = N_("Still there?")
    timed_out: Localized = N_("Time is up; let's stop here. You can start again any time.")


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
    ui: ClassVar[_ui.UI] = "send"
    timeout: ClassVar[Duration | None] = None
    remind_after: ClassVar[Duration | Sequence[Duration] | None] = None

    _steps: ClassVar[tuple[StepSpec, ...]] = ()
    _timing: ClassVar[dict[str, Timing]] = {}
    _renamed: ClassVar[dict[str, str]] = {}
    _drift_step: ClassVar[aiostep.RegisteredStep | None] = None
    _by_state: ClassVar[dict[str, StepSpec]] = {}
    _fingerprint: ClassVar[str] = ""
    _storage: ClassVar[BaseStorage | None] = None
    _hook_needs: ClassVar[dict[str, Needs]] = {}
    #: the handler data of the update being handled (empty outside one): what aiogram would
    #: pass a handler (``bot``, ``event_from_user``, middleware data, ``dp["..."]`` values)
    middleware_data: Mapping[str, Any] = MappingProxyType({})
    _requests: ClassVar[dict[str, CompiledRequest]] = {}
    # set on a restored wizard: its stored state was removed, and it was moved (not yet
    # written); the fingerprint its last prompt's buttons were sent with
    _moved: bool = False
    _sent_fp: str = ""
    # the language of this update once worked out (only when a text depends on it), and the
    # locale stored with the conversation (kept for what is said with no update to answer)
    _language_now: Language | None = None
    _stored_locale: str | None = None
    # whether conversations store their user's language: only when the wizard has texts that
    # depend on it (set at class definition; a wizard that speaks with no update sets it too)
    _stores_locale: ClassVar[bool] = False
    # one-message mode (see aiostep_dialogs.ui): the states whose prompt edits in place, and
    # whether there is any (only then is the prompt's message id stored)
    _edit_states: ClassVar[frozenset[str]] = frozenset()
    _edits: ClassVar[bool] = False
    #: one-message mode: the id of the message showing the current prompt (stored as ``"m"``)
    prompt_message_id: int | None = None
    # one-message mode: the button press being handled, answered when its outcome is shown
    _press: CallbackQuery | None = None
    # the callers waiting for this wizard, outermost first (see aiostep_dialogs.calls)
    _stack: tuple[dict[str, Any], ...] = ()
    # a picker step's option values shown (stored), values picked (stored), and the labels
    # of the options shown by this update (not stored); see aiostep_dialogs.choices
    _shown: list[Any] | None = None
    _picked: tuple[Any, ...] = ()
    _labels: Mapping[Any, str] | None = None
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
        cls._stores_locale = cls._stores_locale or any(s.localized for s in specs)
        cls._renamed = _check_drift_options(cls, state_enum)
        shown = _ui.check_ui(cls.ui, f"{cls.__qualname__}.ui")
        cls._edit_states = frozenset(s.state.name for s in specs if (s.ui or shown) == "edit")
        cls._edits = bool(cls._edit_states)
        cls._requests = {
            s.state.name: compile_request(s, cls._step_name(s), cls.texts)
            for s in specs
            if s.request is not None
        }
        shape = cls.wizard_id + "|" + ",".join(s.state.name for s in specs)
        cls._fingerprint = hashlib.sha1(shape.encode()).hexdigest()[:8]
        cls._timing = timings_of(cls, specs)
        if cls._timing:
            # a reminder or a timeout speaks with no update: the user's language is stored
            cls._stores_locale = True
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
            from aiostep_dialogs.calls import Jump, check_target

            return Jump(check_target(self, state, "goto"))
        if state.name not in self._by_state:
            raise ValueError(f"{type(self).__qualname__} has no step for {state!r}")
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
        from aiostep_dialogs.calls import make_call

        return make_call(self, wizard, then, key, cancel, data)

    @classmethod
    def to_mermaid(cls) -> str:
        """This wizard's flow as a Mermaid flowchart (see `aiostep_dialogs.graph`)."""
        from aiostep_dialogs.graph import to_mermaid

        return to_mermaid(cls)

    async def answer(self, text: str | Text | Localized, **kwargs: Any) -> Message:
        """Send ``text`` to the wizard's chat (and forum topic).

        A string is markup for the wizard's ``parse_mode`` (escape user data in it with
        [`aiostep_dialogs.formatting.escape`][aiostep_dialogs.escape]); an aiogram formatting node
        (``Text``, ``Bold``...) is sent as text and entities, with nothing to escape. A text in
        the user's language (a [`Localized`][aiostep_dialogs.i18n.Localized]) is said in
        [`locale`][aiostep_dialogs.Wizard.locale], as markup like a string.
        """
        if self.key.thread_id is not None:
            kwargs.setdefault("message_thread_id", self.key.thread_id)
        if isinstance(text, Text):
            return await self.bot.send_message(self.key.chat_id, **{**text.as_kwargs(), **kwargs})
        if type(text) is not str and is_localized(text):
            text = (await self._language()).say(text)
        kwargs.setdefault("parse_mode", self.parse_mode)
        return await self.bot.send_message(self.key.chat_id, cast(str, text), **kwargs)

    @property
    def locale(self) -> str:
        """The language this wizard speaks to the user now: the choice of aiogram's i18n
        middleware if the bot installed one, else the sender's Telegram ``language_code``,
        else the one stored with the conversation (a message sent with no update), else
        ``"en"``."""
        return self._language_sync().locale

    def _language_sync(self) -> Language:
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

    def _keep_locale(self) -> None:
        """At a wizard's start: keep its user's language with the conversation, for what is
        said with no update (only a wizard with texts in several languages stores one)."""
        if self._stores_locale:
            locale = self.locale
            self._stored_locale = locale if locale != DEFAULT_LOCALE else None

    def _text(self, text: Localized) -> str:
        """One of ``texts`` in the user's language, escaped for the parse mode in effect unless
        it is ``Markup``: the defaults are plain text, and MarkdownV2 reserves the ``.`` they
        end in."""
        said = self._language_sync().say(text)
        return escape(said, effective_parse_mode(self.bot, self.parse_mode))

    def _say(self, text: Localized, **params: Any) -> str:
        """``text`` (a label, a toast) in the language of this update: the one worked out
        already, else found without awaiting. A plain string is said as it is."""
        if type(text) is str:
            return text.format(**params) if params else text
        return self._language_sync().say(text, **params)

    async def _said(self, text: Localized, **params: Any) -> str:
        """``text`` in the language of this update (asking a late i18n middleware once)."""
        if type(text) is str:
            return text.format(**params) if params else text
        return (await self._language()).say(text, **params)

    async def answer_in_place(self, text: str | Text) -> None:
        """Say a closing ``text`` (a summary, "Cancelled."): in one-message mode (``ui =
        "edit"``) the wizard's message is edited to it and loses its buttons (a new message if
        it can no longer be edited); otherwise it is sent like
        [`answer`][aiostep_dialogs.Wizard.answer]."""
        if self._edits:
            await _ui.close(self, text)
        else:
            await self.answer(text, reply_markup=self._closing_markup())

    async def _hook(self, name: str, *args: Any) -> Any:
        """Run the hook ``name`` with ``args`` and the handler data it asks for by name."""
        needs = self._hook_needs.get(name)
        hook = getattr(self, name)
        return await (hook(*args, **needs.kwargs(self.middleware_data)) if needs else hook(*args))

    async def on_start(self) -> None:
        """Called when the wizard starts, before the first prompt.

        Hooks may ask for handler data by name after ``self``, as step methods do
        (`async def on_finish(self, db: Database)`).
        """

    async def on_finish(self) -> None:
        """Called when the last step is done or a step returned ``self.finish(...)``."""

    async def on_cancel(self) -> None:
        """Called on the cancel command; by default says ``texts.cancelled``."""
        await self._language()
        await self.answer_in_place(self._text(self.texts.cancelled))

    async def on_timeout(self) -> Any:
        """Called when the current step's ``timeout`` passes with no answer, with no message
        needed (also after a restart). Return a ``State`` to go there (its prompt is sent),
        ``self.finish(result)`` to finish, or ``None`` (the default) to cancel with
        ``texts.timed_out``."""
        return None

    async def on_give_up(self) -> None:
        """Called after ``max_attempts`` rejected inputs; by default says ``texts.gave_up``."""
        await self._language()
        await self.answer_in_place(self._text(self.texts.gave_up))

    async def on_return(self, child: Wizard, result: Any) -> enum.Enum | Finish | None:
        """Called when a wizard this one called finished, after ``result`` was stored in
        ``self.data``; return ``None`` to go on at the call's ``then``, a ``State`` member
        to go there instead, or ``self.finish(...)``. ``child`` is the finished wizard."""
        return None

    async def on_leave(self, to: type[Wizard]) -> None:
        """Called when a step returned ``self.goto(to)`` with another wizard class: this
        wizard ends (``on_finish`` does not run) and ``to`` starts."""

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

    @classmethod
    def _router(cls, entry: Any) -> Router:
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

    @classmethod
    def _nav_handler(cls, action: str) -> Callable[..., Awaitable[None]]:
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

    # -- entry -----------------------------------------------------------------------------------
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
        if middleware_data is None:
            middleware_data = ctx.data if ctx is not None else {"bot": bot}
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
            if running is not None:
                running.middleware_data = middleware_data
            resumes = running is not None and (
                running_cls is cls or any(f["w"] == cls.wizard_id for f in running._stack)
            )  # this wizard runs here, or waits for a wizard it called: that one goes on
            if running is not None and resumes and cls.on_reentry == "resume":
                await running._settle()
                await running._send_prompt(running._spec())
                return running
            if running is not None and running_cls is not cls:
                # another wizard was running here: it gives way (and so do its callers)
                if running._stack:
                    from aiostep_dialogs.calls import give_way

                    await give_way(running)
                else:
                    await running._hook("on_cancel")
        wizard = cls(key=key, bot=bot, event=event)
        wizard.middleware_data = middleware_data
        wizard._keep_locale()
        await wizard._hook("on_start")
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
            **data: Any,
        ) -> None:
            wizard = cls._restore_stepping(step_context, conversation, data["bot"], event)
            if wizard is None:
                return
            wizard.middleware_data = data
            if step_context.claim is not None and isinstance(event, Message):
                # The process that ran this step last died before its outcome (the step was
                # offered again): the user's message it was handling is lost, and this one
                # may not be an answer ("hello?"). Ask again, so they know what is asked.
                await wizard._park_and_prompt(spec, error=cls.texts.interrupted)
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
        stored_locale = meta.get("l")
        if isinstance(stored_locale, str):
            wizard._stored_locale = stored_locale
        if cls._edits:
            wizard.prompt_message_id = _ui.stored_message_id(meta)
        if "st" in meta:
            from aiostep_dialogs.calls import read_stack

            wizard._stack = read_stack(meta["st"])
        if spec.picker is not None and not moved:
            ch.restore(wizard, meta)
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
            **data: Any,
        ) -> None:
            wizard = cls._restore_stepping(step_context, conversation, data["bot"], event)
            if wizard is None:
                return
            wizard.middleware_data = data
            spec = wizard._spec()
            if not wizard._moved:  # its state exists after all (stored under another name)
                await wizard._handle(spec, event)
                return
            if isinstance(event, CallbackQuery):
                stale = (await wizard._language()).say(cls.texts.stale_button)
                await _quietly(event.answer(stale))
            wizard._moved = False
            await wizard._park_and_prompt(spec)

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
            value: Any
            if spec.picker is not None:
                value = await ch.on_press(self, spec, event)
                if value is None:
                    return  # a toggle, a page turn or a refused press: answered there
            else:
                value = self._pressed(spec, event.data)
                if value is None:
                    refused = await self._said(button_data.refusal(self.texts, event))
                    await _quietly(event.answer(refused))
                    await self._park(spec)  # the claim took the step; put it back unchanged
                    return
            if self._edits:
                self._press = event  # answered, and its message edited, with the outcome
            else:
                await _quietly(event.answer())
                if isinstance(event.message, Message):
                    await _quietly(event.message.edit_reply_markup(reply_markup=None))
            raw = value
        snapshot = copy.deepcopy(self.data)
        try:
            value = await self._validate(spec, raw)
            outcome = await call(spec.method, spec.needs, self.middleware_data, self, value)
        except ValidationError as exc:
            self.data = snapshot  # rejected input is not stored
            await self._reject(spec, exc)
            return
        except Exception:
            # A bug in a validator or step method: the claim took the step, so put it back as
            # it was (the user can answer again) and let aiogram's error handlers see it.
            self.data = snapshot
            await self._park(spec)
            await _ui.drop_press(self)
            raise
        await self._advance(spec, outcome, snapshot)

    def _pressed(self, spec: StepSpec, data: str | None) -> str | None:
        """The choice value of a pressed button, or ``None`` if it is stale, forged or another
        conversation's."""
        if not spec.choices:
            return None
        press = button_data.parse(data)
        if press is None or not button_data.is_current(self, press):
            return None
        index = button_data.index_of(press.code, "", len(spec.choices))
        return None if index is None else list(spec.choices)[index]

    async def _validate(self, spec: StepSpec, raw: Any) -> Any:
        if spec.picker is not None:
            value = raw.value if isinstance(raw, ch.Picked) else await ch.typed(self, spec, raw)
            return await v.run(spec.validate, value)
        chain: list[Validator] = []
        if spec.choices is not None:
            if spec.localized:
                await self._language()
            labels = self._choice_labels(spec) if spec.localized else spec.choices
            chain.append(v.choice(cast("Mapping[str, str]", labels)))
        elif not spec.validate:
            # a request step takes only the button's answer, unless it says otherwise
            request = spec.request is not None and self._requests[spec.state.name]
            chain.append(request.validator if request else v.text())
        chain.extend(spec.validate)
        return await v.run(chain, raw)

    async def _reject(self, spec: StepSpec, reason: ValidationError | Localized) -> None:
        self.attempts += 1
        limit = spec.max_attempts if spec.max_attempts is not None else self.max_attempts
        if limit is not None and self.attempts >= limit:
            try:
                await self._hook("on_give_up")
            finally:
                await self._clear()
            return
        if self._press is not None and spec.state.name in self._edit_states:
            # a refused press: its reason as a toast; the message and its buttons stay
            await self._park(spec)
            said = await self._say_error(spec.error if spec.error is not None else reason)
            await _ui.refuse_press(self, said)
            return
        self.nonce = secrets.token_hex(4)
        if spec.picker is not None:
            await ch.prepare(self, spec)
        await self._park_and_prompt(spec, error=spec.error if spec.error is not None else reason)

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
            from aiostep_dialogs.calls import Call, Jump, follow

            if isinstance(outcome, (Call, Jump)):
                await follow(self, spec, outcome, before)
                return
            raise TypeError(
                f"{type(self).__qualname__}.{spec.method.__name__} returned {outcome!r}; "
                "return None, a State member, self.finish(...), self.call(...) or "
                "self.goto(...)"
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
        if self._shown is not None or self._picked:
            self._shown, self._picked, self._labels = None, (), None  # the previous step's
        if spec.picker is not None:
            await ch.prepare(self, spec)  # the options to show, stored by the park below
        if not self._edits:
            await self._park(spec)
        try:
            await self._send_prompt(spec, park=True)
        except Exception:
            try:
                if back_to is None:
                    await self._clear()
                else:
                    seen, self.data, self.history = back_to
                    self.state, self.nonce = seen.state, secrets.token_hex(4)
                    self._shown, self._picked, self._labels = None, (), None
                    await self._park(seen)
            except Exception:
                logger.exception("%s: could not undo a step whose prompt failed", self.key)
            raise

    async def _park(self, spec: StepSpec, *, step_only: bool = False) -> None:
        """Persist: the next step is ``spec``, with state, data and navigation, in one write
        (``step_only``: the step's kwargs alone, for a press that was not an answer)."""
        meta: dict[str, Any] = {
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
        if self._stored_locale is not None:
            meta["l"] = self._stored_locale
        if self.prompt_message_id is not None:
            meta["m"] = self.prompt_message_id
        if self._stack:
            meta["st"] = list(self._stack)
        if self._shown is not None:
            meta["c"] = self._shown
        if self._picked:
            meta["p"] = list(self._picked)
        if step_only:
            # a press that is not an answer (a toggle, a page turn) shows the user is there:
            # the step's deadline starts again, as for a new prompt
            await aiostep.register_next_step(
                self.key.user_id,
                self._step_name(spec),
                chat_id=self.key.chat_id,
                thread_id=self.key.thread_id,
                bot_id=self.key.bot_id,
                kwargs=meta,
                storage=self._storage_or_fail(),
                timeout=timeout,
                on_timeout=f"{self.wizard_id}:{TICK}" if timeout is not None else None,
            )
            return
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
        conversation, which nobody is answering, and the error is logged). In a called wizard
        the default (``None``) cancels through the stack, so every caller's ``on_cancel`` runs,
        as on ``/cancel``."""
        try:
            outcome = await self._hook("on_timeout")
        except Exception:
            await self._clear()
            raise
        if outcome is None:
            await self._language()
            if self._stack:
                from aiostep_dialogs.calls import cancel

                try:
                    await self.answer(self._text(self.texts.timed_out))
                finally:
                    await cancel(self)
                return
            try:
                await self.answer_in_place(self._text(self.texts.timed_out))
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
        if self._stack:  # a called wizard: its result goes to its caller
            from aiostep_dialogs.calls import give_back

            await give_back(self, result)
            return
        try:
            await self._hook("on_finish")
        finally:
            await self._clear()

    async def _clear(self) -> None:
        """End the conversation: its whole record goes (the outcome of this update's claim,
        so it is refused if another worker took the step over meanwhile)."""
        if self._edits:
            await _ui.close(self, None)  # the last prompt's buttons go, unless closed already
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
        elif spec.localized:  # a callable prompt too: it may read self.locale
            body = await self._render_localized(spec, mode)
        else:
            body = fill(cast(str, prompt), self.data, mode)
        if not self.show_progress:
            return body if isinstance(body, Text) else str(body)
        index = self._steps.index(spec) + 1
        language = await self._language()
        progress = language.say(self.texts.progress, index=index, total=len(self._steps))
        if isinstance(body, Text):
            return Text(progress, "\n", body)
        if isinstance(self.texts.progress, Markup):
            progress = Markup(progress)
        return f"{escape(progress, mode)}\n{body}"

    async def _render_localized(self, spec: StepSpec, mode: str | None) -> str | Text:
        """A prompt in the user's language: a template from a ``{locale: template}`` dict or a
        lazy string (filled like a string prompt), or what a callable returns."""
        language = await self._language()
        prompt = spec.prompt
        if callable(prompt) and not isinstance(prompt, LazyProxy):
            with language.speaking():  # aiogram's gettext(...) in it answers in this language
                body = await call(prompt, spec.prompt_needs, self.middleware_data, self)
            return body if isinstance(body, Text) else str(body)
        assert not isinstance(prompt, Text)
        return fill(language.say(prompt), self.data, mode)

    def _choice_labels(self, spec: StepSpec) -> dict[str, str] | None:
        """``spec``'s choices with their labels in the user's language (worked out by the
        caller: ``await self._language()`` first)."""
        if spec.choices is None:
            return None
        return {value: self._say(label) for value, label in spec.choices.items()}

    def _closing_markup(self) -> ReplyKeyboardRemove | None:
        uses_reply = any(
            (s.choices and s.keyboard == "reply") or s.request is not None for s in self._steps
        )
        return ReplyKeyboardRemove() if uses_reply else None

    def _markup(self, spec: StepSpec) -> Any:
        if spec.picker is not None:
            return ch.markup(self, spec)
        if spec.request is not None:
            return self._requests[spec.state.name].markup_for(self)
        if not spec.choices:
            return self._closing_markup()
        choices = self._choice_labels(spec) if spec.localized else spec.choices
        labels = cast("list[str]", list((choices or {}).values()))  # plain, or said
        if spec.keyboard == "reply":
            return ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text=label)] for label in labels],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        buttons = [
            InlineKeyboardButton(
                text=label,
                callback_data=f"{_BUTTON_PREFIX}:{self.key.user_id}:{self._fingerprint}:"
                f"{self.nonce}:{i}",
            )
            for i, label in enumerate(labels)
        ]
        one_row = len(buttons) <= 3 and sum(len(label) for label in labels) <= 30
        rows = [buttons] if one_row else [[b] for b in buttons]
        return InlineKeyboardMarkup(inline_keyboard=rows)

    async def _park_and_prompt(
        self, spec: StepSpec, error: ValidationError | Localized | None = None
    ) -> None:
        """Store ``spec`` as the next step and show its prompt (in one-message mode the prompt
        first: its message id is part of the write, still this update's claim's outcome)."""
        if not self._edits:
            await self._park(spec)
        await self._send_prompt(spec, error, park=True)

    async def _send_prompt(
        self,
        spec: StepSpec,
        error: ValidationError | Localized | None = None,
        *,
        park: bool = False,
    ) -> None:
        """Show the prompt of ``spec``. One-message mode: with ``park`` (the caller did not
        store the step), or when the prompt's message changed, the step is stored after it."""
        if spec.picker is not None:
            await ch.before_send(self, spec)
        if spec.localized or spec.picker is not None or spec.request is not None:
            await self._language()  # its labels are said in it (by the sync _markup)
        prompt = await self._render(spec)
        # a rejection's reason, ``error=`` or ``texts.interrupted``, in the user's language
        reason = None if error is None else await self._say_error(error)
        if spec.media is not None:
            sent = await send_media_prompt(self, spec.media, prompt, reason, self._markup(spec))
            # one-message mode: a medium is always a new message (text cannot become one)
            if self._edits and (await _ui.sent_anew(self, sent) or park):
                await self._park(spec)
            return
        if reason:
            # A rejection's reason is plain text: it often quotes what the user sent.
            if isinstance(prompt, Text):
                prompt = Text(reason, "\n\n", prompt)
            else:
                mode = effective_parse_mode(self.bot, self.parse_mode)
                prompt = f"{escape(reason, mode)}\n\n{prompt}"
        if not self._edits:
            await self.answer(prompt, reply_markup=self._markup(spec))
            return
        edit = spec.state.name in self._edit_states
        if await _ui.show_prompt(self, prompt, self._markup(spec), edit=edit) or park:
            await self._park(spec)

    async def _say_error(self, error: ValidationError | Localized) -> str:
        """A rejection's reason (or ``error=``, ``texts.interrupted``) in the user's language."""
        if isinstance(error, ValidationError):
            text, params = error.message, error.params
        else:
            text, params = error, {}
        if isinstance(text, str) and not params and not is_localized(text):
            return text  # a plain string: said as is, with no language to work out
        return (await self._language()).say(text, **params)

    async def _do_back(self) -> None:
        if not self.history and self._stack:
            from aiostep_dialogs.calls import back_to_caller

            await back_to_caller(self)
            return
        if not self.history:
            await self.answer(self._text(self.texts.cannot_go_back))
            await self._send_prompt(self._spec())
            return
        back_to = (self._spec(), self.data, list(self.history))
        entry = self.history.pop()
        self.data = _undo(entry, self.data)  # the answer given there is undone with it
        await self._enter(self._by_state[entry["s"]], back_to=back_to)

    async def _do_cancel(self) -> None:
        if self._stack:
            from aiostep_dialogs.calls import cancel

            await cancel(self)
            return
        try:
            await self._hook("on_cancel")
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
            outcome = await call(spec.method, spec.needs, self.middleware_data, self, spec.default)
        except ValidationError as exc:
            self.data = snapshot
            await self._reject(spec, exc)
            return
        await self._advance(spec, outcome, snapshot)


#: Hooks a subclass overrides with plain methods (never with a step).
_HOOKS = frozenset(
    ("on_start", "on_finish", "on_cancel", "on_give_up", "on_return", "on_leave", "on_timeout")
)
#: How many arguments the runtime passes a hook after ``self``; handler data may follow them.
_HOOK_ARGS = {"on_return": 2, "on_leave": 1}


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
    from aiostep_dialogs.graph import call_then_names, returned_names

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
            n
            for n in returned_names(spec.method) + call_then_names(spec.method)
            if n in state_enum.__members__
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
