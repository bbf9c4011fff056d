"""Every exception aiostep raises, in one place."""

from __future__ import annotations

import os

from aiogram.dispatcher.event.bases import SkipHandler

__all__ = [
    "AiostepError",
    "ClaimLostError",
    "MissingDependencyError",
    "NotThisConversation",
    "RecordTooLargeError",
    "StepNotRegisteredError",
    "StorageCorruptedError",
    "StorageLockedError",
    "StorageUnavailableError",
    "WaitCancelled",
    "WaitSuperseded",
]


class AiostepError(Exception):
    """Base class of aiostep's own exceptions."""


class WaitCancelled(AiostepError):
    """A pending ``wait_for`` was ended by ``unregister_steps``/``clear`` before any answer came."""


class WaitSuperseded(WaitCancelled):
    """A pending ``wait_for`` was ended by a newer ``wait_for`` on the same conversation."""


class NotThisConversation(SkipHandler):
    """Raised by a persisted step: this update is not for the step's conversation at all (a
    press on a button that another conversation sent, say).

    The step stays pending as it was, and the update is routed on as if its sender had
    nothing pending: to the chat-wide step of the chat when one takes it (``chat_wide=True``
    or [`Listen.route_chat_wide`][aiostep.Listen.route_chat_wide]), else to the normal
    handlers. aiogram's ``SkipHandler`` declines an update too, but sends it straight to the
    normal handlers, so a chat-wide step never sees what a member's own step let through.
    """


class StepNotRegisteredError(AiostepError, TypeError):
    """A step that must be persisted was given as a function that is not registered by name.

    Persistent storages store a step's *name*, never the callable; decorate the function with
    ``@aiostep.persisted_step("some.name")`` (or call ``aiostep.steps.registry.register``) first.
    """


class StorageCorruptedError(AiostepError):
    """A storage file or record cannot be read back; names the file and the byte offset."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"{path}: corrupt record at byte offset {offset}: {reason}. "
            "The file was left untouched; repair or move it aside to start fresh."
        )


class ClaimLostError(AiostepError):
    """A step's outcome was refused: the update running it no longer owns the conversation.

    Its claim's lease ran out (the worker was frozen or cut off from the storage longer than
    ``Listen(step_lease=...)``) and another update took the step over, or the conversation was
    ended meanwhile. Nothing was written; the conversation is as the other party left it.
    """

    def __init__(self, key: object, owner: str, holder: str | None) -> None:
        self.key = key
        self.owner = owner
        self.holder = holder
        now = "is ended" if holder is None else f"is claimed by {holder}"
        super().__init__(
            f"conversation {key}: the outcome of claim {owner} was refused because the step "
            f"{now}: the claim's lease ran out before the step finished (raise step_lease, or "
            "keep steps shorter), or the conversation was ended meanwhile; nothing was written"
        )


class StorageUnavailableError(AiostepError, ConnectionError):
    """The storage could not be reached (Redis down, frozen or out of connections), or a
    `FileStateStorage` journal could not be written (disk full, permissions, I/O error; then it
    is also an `OSError` with that ``errno``).

    Raised instead of the client's own error, naming the storage; the update fails into
    ``dp.errors`` and the conversation keeps its progress (see the reliability guide).
    """


class RecordTooLargeError(AiostepError, ValueError):
    """A write would make a stored record larger than its storage's ``max_record_bytes``.

    Nothing was written. ``key``, ``size`` (bytes of JSON) and ``limit`` say which record and by
    how much; keep large values out of the record (a file id, a URL) or raise the limit.
    """

    def __init__(self, key: str, size: int, limit: int, what: str) -> None:
        self.key = key
        self.size = size
        self.limit = limit
        super().__init__(
            f"record at key {key!r} would hold {size:,} bytes of JSON ({what}), over the limit "
            f"of {limit:,} bytes. Nothing was written. Keep large values out of the record "
            "(store a file id or a URL), or raise the storage's limit: "
            "max_record_bytes=... (e.g. RedisStateStorage(url, max_record_bytes=4 << 20))"
        )


class StorageLockedError(AiostepError):
    """A journal file is already in use by another ``FileStateStorage`` (one writer per file).

    The holder is another process, or another storage object in this process (``holder_pid``
    says which, when known). Close the other one first; for several workers sharing records,
    use ``RedisStateStorage``.
    """

    def __init__(self, path: str, lock_path: str, holder_pid: int | None) -> None:
        self.path = path
        self.lock_path = lock_path
        self.holder_pid = holder_pid
        if holder_pid is not None and holder_pid == os.getpid():
            holder = f"another FileStateStorage object in this process (pid {holder_pid})"
        elif holder_pid is not None:
            holder = f"another process (pid {holder_pid})"
        else:
            holder = "another process"
        super().__init__(
            f"{path}: {holder} holds this journal (lock file {lock_path}); a FileStateStorage "
            "journal has one writer at a time. Stop or close the other one first, or use "
            "RedisStateStorage for several workers."
        )


class MissingDependencyError(AiostepError, ImportError):
    """An option needs an optional package that is not installed; the message names the
    option, the package and the extra to install (``pip install 'aiostep[phone]'``)."""
