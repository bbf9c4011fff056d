"""The wizards a Dispatcher runs: its registry (`WizardSteps`, in its Listen's ``registry``),
looked up by the ``wizard_id`` a stored record names, and the resolver of stored
conversations whose step that registry does not register.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import TelegramObject

import aiostep
from aiostep.context import ListenLike
from aiostep.keys import ConversationKey
from aiostep.storage import BaseStorage, StateContext
from aiostep_dialogs.record import _record_version, stored_wizard_id

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard

logger = logging.getLogger("aiostep_dialogs")


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
        self.wizards: dict[str, type[RunningWizard]] = {}
        self._base: type[RunningWizard] | None = None  # the Wizard class, from the first one added
        self.add_resolver("", self._resolve_stored_wizard)

    def add(self, cls: type[RunningWizard]) -> None:
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
            for name in registered_names(previous) - registered_names(cls):
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


def _is_defined(base: type[RunningWizard], wizard_id: str) -> bool:
    """Whether a subclass of ``base`` (the Wizard class) of this id is defined in this process
    (found from the class tree, as Python keeps it: asked only for a record no registry here
    resolves)."""
    todo: list[type[RunningWizard]] = [base]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__dict__.get("_steps") and sub.wizard_id == wizard_id:
                return True
            todo.append(sub)
    return False


def wizards_of(listen: ListenLike | None) -> dict[str, type[RunningWizard]]:
    """The wizards set up on the Dispatcher that ``listen`` serves, by ``wizard_id``."""
    registry = listen.registry if listen is not None else None
    return registry.wizards if isinstance(registry, WizardSteps) else {}


def wizard_named(listen: ListenLike | None, wizard_id: object) -> type[RunningWizard] | None:
    """The wizard set up on ``listen``'s Dispatcher whose ``wizard_id`` a stored record names
    (`aiostep_dialogs.record.stored_wizard_id`), or ``None``."""
    return wizards_of(listen).get(str(wizard_id))


def is_installed(listen: ListenLike | None, wizard_id: str) -> bool:
    """Whether the wizard ``wizard_id`` is set up on the Dispatcher that ``listen`` serves."""
    return wizard_id in wizards_of(listen)


def registered_names(cls: type[RunningWizard]) -> set[str]:
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
