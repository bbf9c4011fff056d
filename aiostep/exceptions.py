"""Every exception aiostep raises, in one place."""

from __future__ import annotations

__all__ = [
    "AiostepError",
    "RecordTooLargeError",
    "StepNotRegisteredError",
    "StorageCorruptedError",
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
