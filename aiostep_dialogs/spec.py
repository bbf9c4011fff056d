"""What a wizard declares, as data: its steps (`StepSpec`, made by the `step` decorator),
`Commands`, `Texts`, `Finish`, and how a prompt is shown (`UI`).

Nothing here knows a wizard class or runs an update: the class checks
(`aiostep_dialogs.compiling`), the runtime (`aiostep_dialogs.runtime`), the stored record
(`aiostep_dialogs.record`) and the prompts (`aiostep_dialogs.render`) read these declarations.
"""

from __future__ import annotations

import enum
import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from aiogram.types import InputFile
from aiogram.utils.formatting import Text

from aiostep_dialogs import choices as ch
from aiostep_dialogs.i18n import (
    N_,
    LazyProxy,
    Localized,
    check_localized,
    is_localized,
)
from aiostep_dialogs.injection import NOTHING, Needs, needs_of
from aiostep_dialogs.media import Media, MediaCall, MediaFunction, MediaSource
from aiostep_dialogs.requests import Request, request_kind
from aiostep_dialogs.timeouts import Duration
from aiostep_dialogs.validators import Validator, refuse_factories

logger = logging.getLogger("aiostep_dialogs")

__all__ = ["UI", "Commands", "Finish", "StepSpec", "Texts", "step"]

Prompt = (
    str | Text | Mapping[str, str] | LazyProxy | Callable[[Any], str | Text | Awaitable[str | Text]]
)


#: How a step's prompt is shown: ``"send"`` a new message each time, or ``"edit"`` the
#: message whose button was pressed.
UI = Literal["send", "edit"]


def check_ui(value: object, where: str) -> UI:
    """``value`` as a ``UI``; a ``ValueError`` naming ``where`` if it is not one."""
    if value == "send":
        return "send"
    if value == "edit":
        return "edit"
    raise ValueError(f"{where} must be 'send' or 'edit', got {value!r}")


def check_max_attempts(value: object, where: str) -> None:
    """Refuse a ``max_attempts`` that is not ``None`` or a whole number from 1.

    Raises:
        TypeError: not an int; ValueError: below 1.
    """
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(
            f"{where} must be an int (the rejected answers in a row before the wizard gives "
            f"up) or None, got {value!r}"
        )
    if value < 1:
        raise ValueError(f"{where} must be 1 or more (None: never give up), got {value!r}")


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
    ui: UI | None = None
    #: options from a callable, multi-select, pages or layout (``None``: a plain fixed list)
    picker: ch.Picker | None = None
    request: Request | None = None
    request_label: Localized | None = None
    #: a fixed medium, or one from a callable (`MediaCall`, its ``dynamic`` true)
    media: Media | MediaCall | None = None
    #: its prompt, ``error`` or a choice label depends on the language (worked out once, here,
    #: so a step of plain strings pays nothing per update)
    localized: bool = False
    #: reminders and timeout (see aiostep_dialogs.timeouts)
    timeout: Duration | None = None
    remind_after: Duration | tuple[Duration, ...] | None = None
    reminder: Localized | None = None
    #: the state's name (``state.name`` goes through enum's Python descriptor: read on
    #: every update, so read once here)
    name: str = field(init=False, repr=False, compare=False)
    #: whether its prompt has inline buttons, whose data carries the prompt's nonce (a
    #: prompt without them needs none stored)
    buttons: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.state.name)
        buttons = self.picker is not None or (bool(self.choices) and self.keyboard == "inline")
        object.__setattr__(self, "buttons", buttons)


def new_nonce(spec: StepSpec) -> str:
    """A fresh nonce for the buttons of ``spec``'s prompt (``""`` when it has none: a press
    of an older prompt's button is then stale, as with any other nonce)."""
    return secrets.token_hex(4) if spec.buttons else ""


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
    ui: UI | None = None,
    multi: bool = False,
    min: int | None = None,
    max: int | None = None,
    per_page: int | None = None,
    columns: int | None = None,
    request: Request | None = None,
    request_label: Localized | None = None,
    photo: MediaSource | MediaFunction | None = None,
    document: MediaSource | MediaFunction | None = None,
    video: MediaSource | MediaFunction | None = None,
    animation: MediaSource | MediaFunction | None = None,
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
            ``InputFile``. Or a sync/async callable taking the wizard (and handler data by
            name, as ``prompt=`` callables do) that returns one of those when the prompt is
            sent, or ``None`` to send the prompt as a text message: a picture that depends
            on the conversation (``lambda self: self.data["photo_id"]``). It is called each
            time the prompt is sent (after a restart, a reminder, ``/back`` too); a ``Path``
            it returns is uploaded once per bot. What it returns is checked when it returns
            it: a ``TypeError`` (``FileNotFoundError`` for a ``Path`` to no file) names the
            step and the value, and the user stays on the question they saw.
            ``document``, ``video`` and ``animation`` likewise; one per step.

        timeout: seconds (or a ``timedelta``) the user has to answer, from when the prompt
            was sent; then ``on_timeout`` runs, with no message needed (default: the
            wizard's ``timeout``). See the timeouts guide.
        remind_after: one or more durations after the prompt at which a reminder re-asks it
            (default: the wizard's ``remind_after``); they do not move the timeout.
        reminder: the reminder's text, sent above the prompt (default: ``texts.reminder``).
    Raises:
        TypeError: ``request`` is unknown or combined with ``choices``; a media source is of
            the wrong type, or more than one is given; a media callable has a positional-only
            parameter after the wizard.
        FileNotFoundError: a media ``Path`` names no file.
    """
    if validate is None:
        chain: tuple[Validator, ...] = ()
    elif callable(validate):
        chain = (validate,)
    else:
        chain = tuple(validate)
    refuse_factories(chain, f"@step({state!r})")
    check_max_attempts(max_attempts, f"@step({state!r}): max_attempts")
    options: dict[str, Localized] | None = None
    source = None
    if callable(choices) and not isinstance(choices, (Mapping, Sequence)):
        source = choices
    elif choices is not None:
        options = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
        if not options:
            raise ValueError("choices must not be empty")
        options = cast("dict[str, Localized]", ch.static_options(options, f"@step({state!r})"))
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
    shown = None if ui is None else check_ui(ui, "step(ui=...)")

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
    if picker is None and options is not None and keyboard == "inline":
        ch.check_button_count(len(options), f"@step({state!r})")
    if request is not None:
        request_kind(request)
        if options is not None:
            raise TypeError(
                f"step {state!r}: request= shows its own reply keyboard and cannot be combined "
                "with choices=; ask for the choice in a step of its own"
            )
    sources = {"photo": photo, "document": document, "video": video, "animation": animation}
    given = [(kind, medium) for kind, medium in sources.items() if medium is not None]
    if len(given) > 1:
        raise TypeError(
            f"step {state!r}: one medium per prompt; got {' and '.join(k for k, _ in given)}"
        )
    media: Media | MediaCall | None = None
    if given:
        kind, medium = given[0]
        if callable(medium) and not isinstance(medium, (str, Path, InputFile)):
            media = MediaCall.of(kind, medium, where=f"@step({state!r})")  # type: ignore[arg-type]
        else:
            media = Media.of(kind, medium)  # type: ignore[arg-type]

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
                if isinstance(remind_after, Iterable) and not isinstance(remind_after, (str, bytes))
                else cast("Duration | None", remind_after)  # or what the class refuses, naming it
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

    def __post_init__(self) -> None:
        # aiogram's Command compares names without their "/": "/back" would never match
        for action in ("back", "cancel", "skip"):
            name = getattr(self, action)
            if name is None:
                continue
            if not isinstance(name, str):
                raise TypeError(
                    f"Commands({action}={name!r}): give the command's name as a str "
                    f"(Commands({action}={action!r})), or None to turn it off"
                )
            if not name or name[0] == "/" or any(c.isspace() for c in name):
                fix = "_".join(name.lstrip("/").split()) or action
                raise ValueError(
                    f"Commands({action}={name!r}): give the name the user types after the "
                    f"'/', without it or spaces: Commands({action}={fix!r})"
                )


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
    #: said instead of a request step's prompt in a group, where its button cannot work
    private_only: Localized = N_("This step works only in a private chat with me.")
    #: a step's reminder (above its prompt again) and what the default on_timeout says
    reminder: Localized = N_("Still there?")
    timed_out: Localized = N_("Time is up; let's stop here. You can start again any time.")

    def __post_init__(self) -> None:
        # refused here, not when the text is first said (to a user who then gets nothing)
        for name, text in vars(self).items():
            where = f"Texts({name}=...)"
            if isinstance(text, (str, Mapping, LazyProxy)) or callable(text):
                check_localized(text, where)
                continue
            raise TypeError(
                f"{where}: got {text!r}; give a str, a {{locale: text}} dict, a callable "
                "(locale) -> str or a lazy_gettext(...) string (to say nothing, override the "
                "hook that says it, e.g. on_cancel)"
            )


@dataclass(frozen=True)
class Finish:
    """Returned by ``self.finish(result)``: end the wizard with ``result``."""

    result: Any = None


#: Hooks a subclass overrides with plain methods (never with a step).
_HOOKS = frozenset(
    ("on_start", "on_finish", "on_cancel", "on_give_up", "on_return", "on_leave", "on_timeout")
)


#: How many arguments the runtime passes a hook after ``self``; handler data may follow them.
_HOOK_ARGS = {"on_return": 2, "on_leave": 1}


_F = TypeVar("_F", bound=Callable[..., Any])


def default_hook(fn: _F) -> _F:
    """Mark ``fn`` as the `Wizard` base class's own hook (see `overrides_hook`)."""
    fn.__wizard_default_hook__ = True  # type: ignore[attr-defined]
    return fn


def overrides_hook(hook: object) -> bool:
    """Whether the hook function ``hook`` (looked up on a wizard class) is a subclass's own,
    not the one the `Wizard` base class defines."""
    return not getattr(hook, "__wizard_default_hook__", False)
