"""A running wizard conversation, as the runtime sees it: `RunningWizard`, the base class of
`aiostep_dialogs.Wizard` that holds a conversation's state (its key, bot, event, data, state,
history, the callers waiting for it...) and the class-level declarations the runtime reads
(its steps, texts, options and what was compiled from them at class definition), with the
language it speaks. Also the outcomes a step may return besides a ``State`` (`Call`, `Jump`).

The runtime's modules (`aiostep_dialogs.record`, `render`, `picking`, `calls`, `runtime`,
`setup`...) take a `RunningWizard` and call each other as plain functions, downward only;
none of them imports `aiostep_dialogs.wizard`, which is the class users subclass.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeGuard, cast

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.types import CallbackQuery, Message, TelegramObject
from aiogram.utils.formatting import Text

import aiostep
from aiostep.keys import ConversationKey
from aiostep.storage import BaseStorage
from aiostep_dialogs.formatting import effective_parse_mode, escape
from aiostep_dialogs.i18n import (
    DEFAULT_LOCALE,
    Language,
    Localized,
    is_localized,
)
from aiostep_dialogs.injection import Needs
from aiostep_dialogs.requests import CompiledRequest
from aiostep_dialogs.spec import UI, Commands, StepSpec, Texts
from aiostep_dialogs.timeouts import Duration, Timing

__all__ = ["Call", "Jump", "RunningWizard"]


class RunningWizard:
    """A wizard conversation being run: its state, its class's declarations, its language.

    Users subclass `aiostep_dialogs.Wizard` (which adds the API of step methods, the hooks and
    ``setup``/``start``); the runtime's functions take this base, so they need not import the
    class they serve.
    """

    #: tells `is_wizard_class` a wizard class from any other
    __aiostep_wizard__: ClassVar[bool] = True
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
    ui: ClassVar[UI] = "send"
    timeout: ClassVar[Duration | None] = None
    remind_after: ClassVar[Duration | Sequence[Duration] | None] = None

    _steps: ClassVar[tuple[StepSpec, ...]] = ()
    _timing: ClassVar[dict[str, Timing]] = {}
    _renamed: ClassVar[dict[str, str]] = {}
    _drift_step: ClassVar[aiostep.RegisteredStep | None] = None
    # its compiled steps (set at class definition), registered by each setup
    _step_entries: ClassVar[tuple[aiostep.RegisteredStep, ...]] = ()
    _by_state: ClassVar[dict[str, StepSpec]] = {}
    # the step after each state's in declaration order (the last has none): found once, as
    # ``_steps.index`` compares frozen dataclasses field by field
    _after: ClassVar[dict[str, StepSpec]] = {}
    _fingerprint: ClassVar[str] = ""
    # the storage and Listen of the latest setup: what start/forget use outside an update
    # (in one, the Listen handling it)
    _storage: ClassVar[BaseStorage | None] = None
    _listen: ClassVar[aiostep.Listen | None] = None
    _hook_needs: ClassVar[dict[str, Needs]] = {}
    #: the handler data of the update being handled (empty outside one): what aiogram would
    #: pass a handler (``bot``, ``event_from_user``, middleware data, ``dp["..."]`` values)
    middleware_data: Mapping[str, Any] = MappingProxyType({})
    _requests: ClassVar[dict[str, CompiledRequest]] = {}
    # set on a restored wizard: its stored state was removed, and it was moved (not yet
    # written); the fingerprint its last prompt's buttons were sent with
    _moved: bool = False
    _sent_fp: str = ""
    # set on a wizard restored as its record holds it (no rename, migration or move): a
    # refused or failed answer, its data back to the snapshot taken before the step method
    # ran, need not write state and data again (what a step method changed in place was its
    # own copy: every storage hands out the caller's own record)
    _as_stored: bool = False
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
    #: whether a step shows a reply keyboard (choices or a request button), which the next
    #: prompt without one removes
    _uses_reply: ClassVar[bool] = False
    #: set when a wizard that uses one handed the conversation over in this update (a call,
    #: a return, a cancel): this one's prompts and closing messages remove its keyboard too
    _shows_reply: bool = False
    #: one-message mode: the id of the message showing the current prompt (stored as ``"m"``)
    prompt_message_id: int | None = None
    # one-message mode: the button press being handled, answered when its outcome is shown
    _press: CallbackQuery | None = None
    # the callers waiting for this wizard, outermost first (see aiostep_dialogs.calls)
    _stack: tuple[dict[str, Any], ...] = ()
    # a picker step's option values shown (stored), values picked (stored), and the labels
    # of the options shown by this update (not stored); see aiostep_dialogs.picking
    _shown: list[Any] | None = None
    _picked: tuple[Any, ...] = ()
    _labels: Mapping[Any, str] | None = None
    # set by a reminder re-parking its step: when the step was asked, and reminders sent
    _wake: tuple[float, int] | None = None

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

    @classmethod
    def migrate(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Convert data stored at ``schema_version`` ``version``; see
        [`Wizard.migrate`][aiostep_dialogs.Wizard.migrate]."""
        return data

    @classmethod
    def _step_name(cls, spec: StepSpec) -> str:
        return f"{cls.wizard_id}:{spec.name}"

    def _spec(self) -> StepSpec:
        assert self.state is not None
        return self._by_state[self.state.name]

    async def _hook(self, name: str, *args: Any) -> Any:
        """Run the hook ``name`` with ``args`` and the handler data it asks for by name."""
        needs = self._hook_needs.get(name)
        hook = getattr(self, name)
        return await (hook(*args, **needs.kwargs(self.middleware_data)) if needs else hook(*args))

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

    # -- the language it speaks ----------------------------------------------------------------
    # how the language is worked out is the Wizard's (aiostep_dialogs.wizard): only declared here
    def _language_sync(self) -> Language:
        """The language of this update, found without awaiting."""
        raise NotImplementedError

    async def _language(self) -> Language:
        """The language of this update, worked out once (only when a text depends on it)."""
        raise NotImplementedError

    async def answer_in_place(self, text: str | Text) -> None:
        """Say a closing ``text``. The `aiostep_dialogs.Wizard` class implements it (one-message
        mode edits the wizard's message); the runtime calls it through the instance, so a
        subclass's override applies wherever the wizard closes (a timeout too)."""
        raise NotImplementedError

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

    def _choice_labels(self, spec: StepSpec) -> dict[str, str] | None:
        """``spec``'s choices with their labels in the user's language (worked out by the
        caller: ``await self._language()`` first)."""
        if spec.choices is None:
            return None
        return {value: self._say(label) for value, label in spec.choices.items()}


def is_wizard_class(obj: object) -> TypeGuard[type[RunningWizard]]:
    """Whether ``obj`` is a wizard class (told by a marker the base class carries)."""
    return isinstance(obj, type) and getattr(obj, "__aiostep_wizard__", False) is True


@dataclass(frozen=True)
class Call:
    """Returned by ``self.call(...)`` from a step: run ``wizard``, then come back."""

    wizard: type[RunningWizard]
    then: enum.Enum | None = None
    key: str = ""
    cancel: Literal["both", "child"] = "both"
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Jump:
    """Returned by ``self.goto(OtherWizard)`` from a step: end this wizard, start ``wizard``."""

    wizard: type[RunningWizard]
