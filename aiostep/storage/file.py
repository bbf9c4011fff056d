"""A persistent, single-process storage: an append-only journal of JSON lines on disk.

Every acknowledged write is one line appended to the journal, flushed and fsync'ed before the
call returns; the whole journal is read into memory once, on first use, and reads are served
from there. When superseded lines outnumber the live records the journal is rewritten
(compacted) through a temporary file and an atomic ``os.replace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import json
import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from aiostep.clock import get_clock
from aiostep.exceptions import StorageCorruptedError, StorageLockedError
from aiostep.storage.base import (
    UNSET,
    BaseStorage,
    Claim,
    ClaimStatus,
    ExpiryT,
    Patch,
    StateContext,
    StorageKey,
    _key,
    _Unset,
    apply_patch,
    check_patch,
    decide_claim,
    drop_step,
    ensure_json,
)

__all__ = ["FileStateStorage"]

logger = logging.getLogger("aiostep")

T = TypeVar("T")

#: A live record and the epoch second it expires at (``None``: never).
_Entry: TypeAlias = "tuple[StateContext, float | None]"
_Records: TypeAlias = "dict[str, _Entry]"

#: Compaction runs once superseded lines exceed ``max(_COMPACT_MIN_DEAD, live records)``, so
#: its cost (proportional to the live records) is spread over at least as many cheap appends.
_COMPACT_MIN_DEAD = 1000

# The fields of a journal record and the JSON types each may hold.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "current_state": (str,),
    "callback": (str,),
    "chat_id": (int, str),
    "data": (dict,),
    "kwargs": (dict,),
    "deadline": (int, float),
    "on_timeout": (str,),
    "token": (str,),
    "accepts": (str,),
}


class FileStateStorage(BaseStorage):
    """Records in a local journal file: they survive restarts of a single process.

    One writer per file: the journal is read once and then trusted, so on first use the storage
    takes an exclusive OS lock (``flock``) on ``<path>.lock`` and holds it until :meth:`close`.
    Another process, or another ``FileStateStorage`` object in this process, on the same path
    gets :class:`~aiostep.exceptions.StorageLockedError` instead of overwriting its records (the
    OS drops the lock of a process that dies). For several workers use
    :class:`~aiostep.storage.redis.RedisStateStorage`.

    Each write appends one line, ``{"key": ..., "record": {...}, "expires_at": ...}`` (the whole
    resulting record, :meth:`StateContext.to_json`) or ``{"key": ..., "deleted": true}``, and
    flushes and fsyncs it before the call returns, so an acknowledged write survives a crash and a
    crash never leaves an unreadable file: a cut-off last line (a write that was never
    acknowledged) is dropped with a warning when the file is next loaded. Any other unreadable line
    raises :class:`~aiostep.exceptions.StorageCorruptedError` and leaves the file untouched.

    The file is created with mode ``0600``. Compaction writes ``<path>.compact`` in the same
    directory and renames it over the journal.

    Args:
        path: the journal file (created on first use; its directory must exist).
        ex: default time to live of a record, in seconds or as a ``timedelta``.
        fsync: ``False`` skips ``fsync`` (writes still reach the OS before a call returns, so a
            crash of the process loses nothing, but a power loss or OS crash may).
    """

    persistent = True

    def __init__(
        self, path: str | os.PathLike[str], ex: ExpiryT = None, *, fsync: bool = True
    ) -> None:
        super().__init__(ex)
        self.path: str = os.fspath(path)
        self.fsync = fsync
        # Invariant: _records and _file are both None (not loaded) or both set.
        self._records: _Records | None = None
        self._file: AsyncBufferedIOBase | None = None
        self._size = 0  # bytes in the journal: where the next line starts
        self._lines = 0  # complete lines in the journal; lines - live records = dead lines
        self._compact_retry_at = 0
        self._lock = asyncio.Lock()
        self._journal_lock: _JournalLock | None = None  # held while loaded

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def _compact_path(self) -> str:
        return self.path + ".compact"

    # -- primitives ---------------------------------------------------------------------------
    async def read(self, key: StorageKey) -> StateContext | None:
        """The record at ``key`` (a copy), or ``None``."""
        k = _key(key)
        records = self._records
        if records is None:
            records = await self._serialised(_records_of)
        entry = _live(records, k)
        return None if entry is None else copy.deepcopy(entry[0])

    async def _write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """Apply ``patch`` at ``key`` and append it to the journal; return the record as it was."""
        check_patch(patch)
        k = _key(key)
        seconds = self._ex(ex)

        async def op(records: _Records) -> StateContext | None:
            before = _live(records, k)
            new = apply_patch(None if before is None else before[0], patch)
            entry: _Entry | None = None
            if new is not None:
                expires_at: float | None = None if before is None else before[1]
                if seconds is not None:
                    expires_at = get_clock().now() + seconds
                entry = (new, expires_at)
            if before is None:
                if entry is not None:
                    await self._commit(records, k, entry)
                return None
            if entry == before:
                return copy.deepcopy(before[0])  # nothing to write; still stored, so copy
            await self._commit(records, k, entry)
            return before[0]

        return await self._serialised(op)

    async def _remove(self, key: StorageKey) -> StateContext | None:
        """Delete the record at ``key`` and return it."""
        k = _key(key)

        async def op(records: _Records) -> StateContext | None:
            before = _live(records, k)
            if before is None:
                return None
            await self._commit(records, k, None)
            return before[0]

        return await self._serialised(op)

    async def claim(
        self,
        key: StorageKey,
        *,
        now: float,
        kind: str,
        is_command: bool,
        callback_data: str | None = None,
        lease: float | None = None,  # one process: its ordering gate does the job of a lease
    ) -> Claim:
        """Take the pending step at ``key`` for an update (see :func:`decide_claim`)."""
        k = _key(key)
        records = self._records
        if records is not None:
            # The hot path: no pending step means nothing to change, so no lock and no I/O.
            entry = _live(records, k)
            if entry is None:
                return Claim(ClaimStatus.NONE, None)
            if entry[0].callback is None:
                return Claim(ClaimStatus.NONE, copy.deepcopy(entry[0]))

        async def op(records: _Records) -> Claim:
            before = _live(records, k)
            record = None if before is None else before[0]
            status = decide_claim(record, now, kind, is_command, callback_data)
            if before is not None and status in (ClaimStatus.CLAIMED, ClaimStatus.EXPIRED):
                await self._commit(records, k, _without_step(before))
                return Claim(status, before[0])
            return Claim(status, copy.deepcopy(record))

        return await self._serialised(op)

    async def _claim_token(
        self, key: StorageKey, token: str, lease: float | None = None
    ) -> StateContext | None:
        """Remove the pending step at ``key`` if it is still registration ``token``."""
        k = _key(key)
        records = self._records
        if records is not None:
            entry = _live(records, k)
            if entry is None or entry[0].callback is None or entry[0].token != token:
                return None

        async def op(records: _Records) -> StateContext | None:
            before = _live(records, k)
            if before is None or before[0].callback is None or before[0].token != token:
                return None
            await self._commit(records, k, _without_step(before))
            return before[0]

        return await self._serialised(op)

    async def close(self) -> None:
        """Close the journal file and release its lock. A later call loads the journal again."""
        async with self._lock:
            file, self._file, self._records = self._file, None, None
            lock, self._journal_lock = self._journal_lock, None
            try:
                if file is not None:
                    await file.close()
            finally:
                if lock is not None:
                    lock.release()

    # -- serialisation ------------------------------------------------------------------------
    async def _serialised(self, op: Callable[[_Records], Awaitable[T]]) -> T:
        """Run ``op`` on the loaded records under the lock, to completion even if cancelled.

        ``op`` runs in its own task: cancelling the caller must not release the lock while a
        write is still under way in an aiofiles worker thread, nor leave memory and disk apart.
        """
        task = asyncio.ensure_future(self._locked(op))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_log_orphaned_failure)
            raise

    async def _locked(self, op: Callable[[_Records], Awaitable[T]]) -> T:
        async with self._lock:
            records = self._records
            if records is None:
                records = await self._load()
            return await op(records)

    # -- the journal ----------------------------------------------------------------------------
    async def _load(self) -> _Records:
        """Lock the journal, read it into memory and open it for appending (under the lock)."""
        lock = self._journal_lock
        if lock is None:
            lock = await asyncio.to_thread(_JournalLock.acquire, self.path)
        try:
            records = await self._read_journal()
        except BaseException:
            if self._journal_lock is None:
                lock.release()
            raise
        self._journal_lock = lock
        return records

    async def _read_journal(self) -> _Records:
        try:
            async with aiofiles.open(self.path, "rb") as reader:
                raw = await reader.read()
            existed = True
        except FileNotFoundError:
            raw, existed = b"", False
        records, lines, good = _parse(self.path, raw, get_clock().now())

        file = await aiofiles.open(self.path, "ab", opener=_private_opener)
        try:
            if good < len(raw) and good > 0:
                logger.warning(
                    "%s: dropped an incomplete last line at byte offset %d (%d bytes): a write "
                    "that was cut off before it was acknowledged",
                    self.path,
                    good,
                    len(raw) - good,
                )
                await file.truncate(good)
                await self._sync(file)
            if good == 0:  # a new journal (or one whose header write was cut off)
                await file.truncate(0)
                await file.write(HEADER)
                await file.flush()
                await self._sync(file)
                good = len(HEADER)
            if not existed and self.fsync:
                await asyncio.to_thread(_fsync_dir, self.path)
        except BaseException:
            await file.close()
            raise
        self._file, self._size, self._lines, self._records = file, good, lines, records
        self._compact_retry_at = 0
        try:
            # A crash during compaction may leave its temporary file; the journal is intact.
            await _remove_if_exists(self._compact_path)
        except OSError:
            logger.warning("%s: could not remove %s", self.path, self._compact_path, exc_info=True)
        return records

    async def _sync(self, file: AsyncBufferedIOBase) -> None:
        if self.fsync:
            await asyncio.to_thread(os.fsync, file.fileno())

    async def _commit(self, records: _Records, key: str, entry: _Entry | None) -> None:
        """Make ``entry`` (``None``: deleted) durable at ``key``, then visible in memory."""
        line = _encode(key, entry)  # raises TypeError before any I/O
        await self._append(line)
        if entry is None:
            records.pop(key, None)
        else:
            records[key] = entry
        self._lines += 1
        await self._maybe_compact(records)

    async def _append(self, line: bytes) -> None:
        file = self._file
        if file is None:  # pragma: no cover - _locked loads before any op runs
            raise RuntimeError(f"{self!r}: journal is not open; this is a bug in aiostep")
        start = self._size
        try:
            await file.write(line)
            await file.flush()
            await self._sync(file)
        except BaseException:
            await self._abandon(file, start)
            raise
        self._size = start + len(line)

    async def _abandon(self, file: AsyncBufferedIOBase, size: int) -> None:
        """Undo an append that failed (never acknowledged) and reload on next use."""
        self._file, self._records = None, None
        try:
            await file.close()
        except Exception:
            logger.exception("%s: closing the journal after a failed write also failed", self.path)
        try:
            await asyncio.to_thread(os.truncate, self.path, size)
        except OSError:
            # The next load drops a cut-off line, or applies the line if it was written whole.
            logger.exception("%s: could not cut off a failed write at offset %d", self.path, size)

    async def _maybe_compact(self, records: _Records) -> None:
        live = len(records)
        dead = self._lines - live
        threshold = max(_COMPACT_MIN_DEAD, live)
        if dead <= threshold or dead < self._compact_retry_at:
            return
        try:
            await self._compact(records)
        except Exception:
            # The write that triggered compaction is already durable; don't fail it, and don't
            # retry on every write (each try costs a pass over all the live records).
            self._compact_retry_at = dead + threshold
            logger.exception(
                "%s: compaction failed; the journal is intact and is compacted later", self.path
            )

    async def _compact(self, records: _Records) -> None:
        """Rewrite the journal with only the live records (under the lock)."""
        now = get_clock().now()
        live = {k: e for k, e in records.items() if e[1] is None or e[1] > now}
        data = HEADER + b"".join(_encode(k, e) for k, e in live.items())
        tmp = self._compact_path
        await _remove_if_exists(tmp)
        try:
            async with aiofiles.open(tmp, "wb", opener=_new_private_opener) as out:
                await out.write(data)
                await out.flush()
                await self._sync(out)
            await aiofiles.os.replace(tmp, self.path)
        except BaseException:
            try:
                await _remove_if_exists(tmp)
            except OSError:
                logger.exception("%s: could not remove %s", self.path, tmp)
            raise
        # The journal on disk is now the new file; the open handle still points at the old one.
        old, self._file = self._file, None
        try:
            if self.fsync:
                await asyncio.to_thread(_fsync_dir, self.path)
            new = await aiofiles.open(self.path, "ab", opener=_private_opener)
        except BaseException:
            self._records = None  # force a reload from the (complete) new journal
            raise
        finally:
            if old is not None:
                try:
                    await old.close()
                except Exception:
                    logger.exception("%s: closing the old journal failed", self.path)
        self._file, self._size, self._lines = new, len(data), len(live)
        self._compact_retry_at = 0
        records.clear()  # in place: expired records go; readers may hold this dict
        records.update(live)


async def _records_of(records: _Records) -> _Records:
    return records


def _live(records: _Records, key: str) -> _Entry | None:
    """The entry at ``key`` unless it has expired (an expired one is forgotten from memory)."""
    entry = records.get(key)
    if entry is None:
        return None
    if entry[1] is not None and entry[1] <= get_clock().now():
        records.pop(key, None)  # its journal lines are dead now and go at the next compaction
        return None
    return entry


def _without_step(entry: _Entry) -> _Entry | None:
    record = drop_step(entry[0])
    return None if record is None else (record, entry[1])


def _log_orphaned_failure(task: asyncio.Future[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("a storage write whose caller was cancelled failed", exc_info=exc)


def _encode(key: str, entry: _Entry | None) -> bytes:
    """One journal line for ``entry`` at ``key`` (``None``: a delete marker)."""
    obj: dict[str, Any]
    if entry is None:
        obj = {"key": key, "deleted": True}
    else:
        obj = {"key": key, "record": entry[0].to_json(), "expires_at": entry[1]}
    try:
        # ensure_ascii: any str (even a lone surrogate) round-trips through UTF-8 bytes.
        text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        if entry is not None:  # name the offending key when it is in data or kwargs
            ensure_json(entry[0].data, "data")
            ensure_json(entry[0].kwargs, "kwargs")
        raise TypeError(f"record at key {key!r} is not JSON-serializable: {exc}") from exc
    return text.encode("ascii") + b"\n"


#: The first line of every journal: a file without it is not ours and is never modified.
HEADER = b'{"aiostep":"journal","v":1}\n'


def _parse(path: str, raw: bytes, now: float) -> tuple[_Records, int, int]:
    """Replay a journal: ``(live records, complete lines, bytes up to the last newline)``."""
    records: _Records = {}
    lines = 0
    if len(raw) < len(HEADER) and HEADER.startswith(raw):
        return records, 0, 0  # empty, or created by a crash before its header was complete
    if not raw.startswith(HEADER):
        raise StorageCorruptedError(
            path,
            0,
            "not an aiostep journal (its first line is not the journal header); "
            "point FileStateStorage at a new file",
        )
    offset = len(HEADER)
    while True:
        end = raw.find(b"\n", offset)
        if end == -1:
            return records, lines, offset  # anything after offset is a cut-off last line
        key, entry = _decode(path, offset, raw[offset:end])
        if entry is None or (entry[1] is not None and entry[1] <= now) or entry[0].is_empty():
            records.pop(key, None)
        else:
            records[key] = entry
        lines += 1
        offset = end + 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode(path: str, offset: int, line: bytes) -> tuple[str, _Entry | None]:
    """Decode the journal line at ``offset``; raise :class:`StorageCorruptedError` if bad."""
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise StorageCorruptedError(path, offset, f"not a JSON line ({exc})") from exc
    if not isinstance(obj, dict):
        raise StorageCorruptedError(path, offset, "a journal line must be a JSON object")
    key = obj.get("key")
    if not isinstance(key, str):
        raise StorageCorruptedError(path, offset, 'missing or non-string "key"')
    if obj.get("deleted") is True:
        return key, None
    record = obj.get("record")
    if not isinstance(record, dict):
        raise StorageCorruptedError(
            path, offset, f'line for key {key!r} has neither a "record" object nor "deleted"'
        )
    expires_at = obj.get("expires_at")
    if expires_at is not None and not _is_number(expires_at):
        raise StorageCorruptedError(
            path, offset, f"line for key {key!r} has a non-numeric expires_at {expires_at!r:.40}"
        )
    for name, types in _FIELD_TYPES.items():
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            raise StorageCorruptedError(
                path,
                offset,
                f"record for key {key!r} has {name}={value!r:.40} of type {type(value).__name__}",
            )
    return key, (StateContext.from_json(record), None if expires_at is None else float(expires_at))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _JournalLock:
    """An exclusive OS lock on ``<journal>.lock``: one FileStateStorage writes a journal at a time.

    ``flock`` locks belong to an open file, so a second open of the lock file conflicts even in
    the same process; the OS drops the lock when the process dies, so a crash never leaves the
    journal locked. The lock file is never removed (removing it would let two processes lock two
    different files) and holds the pid of the holder, for the error message.
    """

    def __init__(self, fd: int) -> None:
        # An unreachable storage can write nothing more: its lock goes with it.
        self.release = weakref.finalize(self, os.close, fd)

    @classmethod
    def acquire(cls, journal: str) -> _JournalLock:
        """Take the lock of ``journal`` or raise :class:`StorageLockedError` (blocking calls)."""
        directory = os.path.dirname(journal) or "."
        if not os.path.isdir(directory):
            # FileStateStorage("path/to/file.json") works as written: make its directories
            # (private, like the file)
            os.makedirs(directory, mode=0o700, exist_ok=True)
        lock_path = journal + ".lock"
        fd = _private_opener(lock_path, os.O_RDWR)
        try:
            _try_lock(fd)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK):
                os.close(fd)
                raise
            holder = _read_pid(fd)
            os.close(fd)
            raise StorageLockedError(journal, lock_path, holder) from None
        if sys.platform != "win32":  # a Windows byte-range lock forbids writing the pid
            os.ftruncate(fd, 0)
            os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        return cls(fd)


def _try_lock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0) if sys.platform != "win32" else b""
        return int(text.strip())
    except (OSError, ValueError):
        return None


def _chmod_private(fd: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)  # exactly 0600, whatever the umask


def _private_opener(path: str, flags: int) -> int:
    """``open()`` opener: create the file with mode 0600 (an existing file keeps its mode)."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return os.open(path, flags, 0o600)
    _chmod_private(fd)
    return fd


def _new_private_opener(path: str, flags: int) -> int:
    """``open()`` opener: create a new file with mode 0600; fail if it exists."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    _chmod_private(fd)
    return fd


def _fsync_dir(path: str) -> None:
    """Make a create or rename in ``path``'s directory durable."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows: directories cannot be opened and fsync'ed
        return
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _remove_if_exists(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)
