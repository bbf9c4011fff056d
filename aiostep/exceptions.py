"""Every exception aiostep raises, in one place."""

from __future__ import annotations

import os

__all__ = [
    "AiostepError",
    "StepNotRegisteredError",
    "StorageCorruptedError",
    "StorageLockedError",
    "WaitCancelled",
    "WaitSuperseded",
]


class AiostepError(Exception):
    """Base class of aiostep's own exceptions."""


class WaitCancelled(AiostepError):
    """A pending ``wait_for`` was ended by ``unregister_steps``/``clear`` before any answer came."""


class WaitSuperseded(WaitCancelled):
    """A pending ``wait_for`` was ended by a newer ``wait_for`` on the same conversation."""


class StepNotRegisteredError(AiostepError, TypeError):
    """A step that must be persisted was given as a function that is not registered by name.

    Persistent storages store a step's *name*, never the callable; decorate the function with
    ``@aiostep.step("some.name")`` (or call ``aiostep.steps.registry.register``) first.
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
