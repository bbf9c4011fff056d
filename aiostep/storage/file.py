"""A persistent, single-writer storage: an append-only journal of checksummed JSON lines on disk.

Every acknowledged write is one line appended to the journal, flushed and fsync'ed before the
call returns; the whole journal is read into memory once, on first use (in a worker thread),
and reads are served from there. When superseded lines outnumber the live records the journal
is rewritten (compacted) in the background, through a temporary file and an atomic
``os.replace``, while writes go on.

The journal format (version 2): a header line, then one line per write:

```python
KKKKKKKK CCCCCCCC {"key":...,...} KKKKKKKK
```

``CCCCCCCC`` is the CRC-32 of the JSON payload, ``KKKKKKKK`` (at both ends) the CRC-32 of the
record's key, so a damaged line is detected and, even when its JSON is unreadable, the
conversation it belonged to is known from whichever end survived. The payload holds the whole
record (``"record"``), a delete marker (``"deleted"``) or only a change (``"change"``: the
fields set, the data items set, the data items dropped). Version 1 journals (aiostep 0.4: bare
JSON lines of whole records, no checksums) are read and rewritten as version 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import itertools
import json
import logging
import math
import os
import re
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from aiostep.clock import get_clock
from aiostep.deadlines import DeadlineIndex
from aiostep.exceptions import StorageCorruptedError, StorageLockedError, StorageUnavailableError
from aiostep.storage.base import (
    MAX_RECORD_BYTES,
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
    check_owner,
    check_patch,
    check_record_size,
    claim_alive,
    drop_step,
    ensure_json,
    mark_claimed,
    new_owner,
)

__all__ = ["FileStateStorage"]

logger = logging.getLogger("aiostep")

T = TypeVar("T")

#: A live record and the epoch second it expires at (``None``: never).
_Entry: TypeAlias = "tuple[StateContext, float | None]"

#: Compaction starts once superseded lines exceed ``max(_COMPACT_MIN_DEAD, live records)``, so
#: its cost (proportional to the live records) is spread over at least as many cheap appends.
_COMPACT_MIN_DEAD = 1000

#: A compaction catches up with the keys written since its snapshot in the background until
#: at most this many are left; those are written under the lock, so writers wait only for them.
_CATCH_UP_KEYS = 64
_CATCH_UP_ROUNDS = 4

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
    "claim": (str,),
    "seq": (int,),
    "inflight": (int,),
}


class FileStateStorage(BaseStorage):
    """Records in a local journal file: they survive restarts of a single process.

    One writer per file: the journal is read once and then trusted, so on first use the storage
    takes an exclusive OS lock (``flock``) on ``<path>.lock`` and holds it until
    [`close`][aiostep.FileStateStorage.close]. Another process, or another ``FileStateStorage``
    object in this process, on the same path gets `StorageLockedError` instead of overwriting its
    records (the OS drops the lock of a process that dies). For several workers use
    [`RedisStateStorage`][aiostep.storage.RedisStateStorage].

    Guarantees:

    - Each write appends one line and flushes and fsyncs it before the call returns, so an
      acknowledged write survives a crash (``kill -9``, and with ``fsync=True`` an OS crash or
      power loss), also one during a compaction. A cut-off last line (a write that was never
      acknowledged) is dropped with a warning on the next load.
    - A line holds the whole record only when it is new (or as small as a change); otherwise
      only what changed, so ``update_data`` of a small item next to a large value appends a
      small line.
    - Every line carries CRC-32 checksums (see the module docs), so any single damaged byte
      is detected rather than read back as other data. A damaged line (bad checksum, bad JSON,
      bad field types) does not stop the bot: it is appended to ``<path>.quarantine`` (one
      JSON line with the journal's path, the byte offset, the reason, the conversation keys
      reset and the raw line), logged as an error naming the file, offset and key (when it
      can be told), and that conversation starts fresh: its later change lines are skipped
      (and quarantined) until a whole-record line starts it again. The journal is then
      rewritten without them. A file whose first line is not a journal header raises
      [`StorageCorruptedError`][aiostep.StorageCorruptedError] and is left untouched.
    - Loading parses in a worker thread, and compaction encodes a snapshot in a worker thread
      while writes keep being appended to the old journal; only the last few keys written
      meanwhile are carried over under the lock, before ``<path>.compact`` is renamed over the
      journal (a ``<path>.compact`` left by a crash is removed on the next load). The event
      loop keeps running meanwhile. Records are held in memory as their checked journal lines
      and decoded when used (those written since the last compaction stay decoded until the
      next), so a large journal gives CPython's garbage collector nothing to traverse and its
      pauses do not grow with the number of records.

    Files are created with mode ``0600``.

    Args:
        path: the journal file (created on first use, with its directories).
        ex: default time to live of a record, in seconds or as a ``timedelta``.
        fsync: ``False`` skips ``fsync`` (writes still reach the OS before a call returns, so a
            crash of the process loses nothing, but a power loss or OS crash may).
        compact_threshold: compaction starts once superseded lines exceed
            ``max(compact_threshold, live records)``; small values make it frequent (tests).
        max_record_bytes: the most bytes of JSON a record's data and kwargs may hold
            (``None``: no limit); see [`BaseStorage`][aiostep.BaseStorage].
    """

    persistent = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        ex: ExpiryT = None,
        *,
        fsync: bool = True,
        compact_threshold: int = _COMPACT_MIN_DEAD,
        max_record_bytes: int | None = MAX_RECORD_BYTES,
    ) -> None:
        super().__init__(ex, max_record_bytes=max_record_bytes)
        if compact_threshold < 1:
            raise ValueError(f"compact_threshold must be at least 1, got {compact_threshold!r}")
        self.path: str = os.fspath(path)
        self.fsync = fsync
        self.compact_threshold = compact_threshold
        # Invariant: _records and _file are both None (not loaded) or both set.
        self._records: _Records | None = None
        self._file: AsyncBufferedIOBase | None = None
        self._size = 0  # bytes in the journal: where the next line starts
        self._lines = 0  # complete lines in the journal; lines - live records = dead lines
        self._compact_retry_at = 0
        self._lock = asyncio.Lock()
        self._journal_lock: _JournalLock | None = None  # held while loaded
        self._compaction: asyncio.Task[None] | None = None
        self._compaction_stop = threading.Event()
        #: keys written since the running compaction took its snapshot
        self._touched: set[str] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    @property
    def _compact_path(self) -> str:
        return self.path + ".compact"

    # -- primitives ---------------------------------------------------------------------------
    def holds_nothing(self, key: str) -> bool:
        """Whether the loaded journal holds no record at ``key`` (``False`` before it is
        loaded: the claim loads it)."""
        records = self._records
        return records is not None and records.slot(key) is None

    async def read(self, key: StorageKey) -> StateContext | None:
        """The record at ``key`` (a copy), or ``None``."""
        k = _key(key)
        records = self._records
        if records is None:
            records = await self._serialised(_records_of)
        entry = _live(records, k, keep=False)
        if entry is None:
            return None
        return _copy(records, k, entry)

    async def _write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """Apply ``patch`` at ``key`` and append it to the journal; return the record as it was."""
        check_patch(patch)
        k = _key(key)
        seconds = self._ex(ex)
        # Which data items the patch can change: lets the change line skip comparing the rest.
        data_keys: frozenset[str] | None = None
        if patch.data is UNSET:
            data_keys = frozenset() if patch.data_update is UNSET else frozenset(patch.data_update)

        async def op(records: _Records) -> StateContext | None:
            before = _live(records, k)
            check_owner(k, None if before is None else before[0], patch)
            new = apply_patch(None if before is None else before[0], patch)
            if before is not None:
                check_record_size(new, patch, k, self.max_record_bytes)
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
            if entry == before and _same(entry[0].to_json(), before[0].to_json()):
                # nothing to write; still stored, so copy. (== alone takes True for 1.)
                return copy.deepcopy(before[0])
            await self._commit(records, k, entry, data_keys=data_keys)
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
        lease: float | None = None,  # one process: a claim lives while this process does
        owner: str | None = None,
        update_id: int | None = None,
        window: float = 0.0,  # one process: its ordering gate keeps arrival order
        turn: bool = False,  # one process: no turn across workers
    ) -> Claim:
        """Claim the pending step at ``key`` for an update (see `decide_claim`).

        The claim is journaled, but a claim found after a restart has no live owner: its step
        is offered again, with everything it had.
        """
        k = _key(key)
        records = self._records
        if records is not None:
            # The hot path: no pending step means nothing to change, so no lock and no I/O.
            entry = _live(records, k, keep=False)
            if entry is None:
                return Claim(ClaimStatus.NONE, None)
            if entry[0].callback is None:
                return Claim(ClaimStatus.NONE, _copy(records, k, entry))
        claimer = owner or new_owner()

        async def op(records: _Records) -> Claim:
            before = _live(records, k)
            record = None if before is None else before[0]
            status, after = self._decide_here(
                record,
                now=now,
                kind=kind,
                is_command=is_command,
                callback_data=callback_data,
                owner=claimer,
                update_id=update_id,
            )
            if before is not None and after is not UNSET:
                await self._commit(records, k, None if after is None else (after, before[1]))
                # the claimed record stored now shares its data and kwargs with ``before``
                return Claim(status, copy.deepcopy(before[0]), claimer)
            return Claim(status, copy.deepcopy(record), claimer)

        return await self._serialised(op)

    async def _claim_token(
        self,
        key: StorageKey,
        token: str,
        lease: float | None,
        owner: str | None,
        update_id: int | None,
    ) -> StateContext | None:
        """Claim (or, without ``owner``, remove) the pending step if it is still ``token``."""
        k = _key(key)

        def takeable(entry: _Entry | None) -> bool:
            return (
                entry is not None
                and entry[0].callback is not None
                and entry[0].token == token
                and not claim_alive(entry[0], get_clock().now(), self._owners)
            )

        records = self._records
        if records is not None and not takeable(_live(records, k, keep=False)):
            return None

        async def op(records: _Records) -> StateContext | None:
            before = _live(records, k)
            if before is None or not takeable(before):
                return None
            if owner is None:
                await self._commit(records, k, _without_step(before))
            else:
                claimed = mark_claimed(before[0], owner, None, update_id)
                await self._commit(records, k, (claimed, before[1]))
            return copy.deepcopy(before[0])  # ``claimed`` shares its data and kwargs

        return await self._serialised(op)

    async def next_deadline(self) -> float | None:
        """The earliest deadline of a pending step, or ``None``; loads the journal first, so
        the deadlines stored by an earlier process are found (and overdue ones fire) at once."""
        if self._records is None:
            await self._serialised(_records_of)
        return await super().next_deadline()

    async def due_deadlines(self, now: float, lease: float, limit: int = 100) -> list[str]:
        """Take due deadlines (see `BaseStorage.due_deadlines`); loads the journal first."""
        if self._records is None:
            await self._serialised(_records_of)
        return await super().due_deadlines(now, lease, limit)

    async def compact(self) -> None:
        """Rewrite the journal with only the live records, now, and wait until it is done.

        Writes go on meanwhile. A compaction already under way is waited for first.

        Raises:
            OSError: the rewrite failed; the journal is intact and every write is in it.
        """
        await self._serialised(_records_of)  # loaded (and locked) first
        await self._compaction_finished()
        task = self._start_compaction(background=False)
        await asyncio.shield(task)

    async def close(self) -> None:
        """Stop any compaction, close the journal and release its lock.

        A later call loads the journal again.
        """
        task = self._compaction
        if task is not None:
            self._compaction_stop.set()
            await asyncio.wait([task])
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
        """Lock the journal, read it into memory and open it for appending (under the lock).

        The reading, parsing, quarantining and any rewrite run in a worker thread.
        """
        lock = self._journal_lock
        if lock is None:
            lock = await asyncio.to_thread(_JournalLock.acquire, self.path)
        try:
            # A compaction of an earlier load that is still winding down removes its own file.
            leftover = self._compaction is None
            loaded = await asyncio.to_thread(
                _open_journal, self.path, get_clock().now(), self.fsync, leftover
            )
            file = await aiofiles.open(self.path, "ab", opener=_private_opener)
        except BaseException:
            if self._journal_lock is None:
                lock.release()
            raise
        self._journal_lock = lock
        self._file, self._size, self._lines = file, loaded.size, loaded.lines
        self._records = records = loaded.records
        self._compact_retry_at = 0
        _index_deadlines(records, self.deadlines)
        return records

    async def _sync(self, file: AsyncBufferedIOBase) -> None:
        if self.fsync:
            await asyncio.to_thread(os.fsync, file.fileno())

    async def _commit(
        self,
        records: _Records,
        key: str,
        entry: _Entry | None,
        *,
        data_keys: frozenset[str] | None = None,
    ) -> None:
        """Make ``entry`` (``None``: deleted) durable at ``key``, then visible in memory.

        ``data_keys``: the only data items that can differ from the record in memory (``None``:
        any), so the change line need not compare the others.
        """
        line = _write_line(key, records.get(key), entry, data_keys)  # TypeError before any I/O
        await self._append(line)
        if entry is None:
            records.pop(key)
        else:
            records.set(key, entry)
        self._lines += 1
        if self._touched is not None:
            self._touched.add(key)
        self._maybe_compact(records)

    async def _append(self, line: bytes) -> None:
        file = self._file
        if file is None:  # pragma: no cover - _locked loads before any op runs
            raise RuntimeError(f"{self!r}: journal is not open; this is a bug in aiostep")
        start = self._size
        try:
            await file.write(line)
            await file.flush()
            await self._sync(file)
        except OSError as exc:
            await self._abandon(file, start)
            # the bare OSError of a full disk names no file and says nothing of what was kept
            raise StorageUnavailableError(
                exc.errno,
                f"{self.path}: could not append to the journal ({exc.strerror or exc}); this "
                "write was not written and nothing acknowledged is lost (the conversation "
                "keeps its progress). Free disk space or fix the file's permissions: the next "
                "write reloads the journal and goes on",
            ) from exc
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

    # -- compaction ---------------------------------------------------------------------------
    def _maybe_compact(self, records: _Records) -> None:
        live = len(records)
        dead = self._lines - live
        threshold = max(self.compact_threshold, live)
        if dead <= threshold or dead < self._compact_retry_at or self._compaction is not None:
            return
        self._start_compaction(background=True)

    def _start_compaction(self, *, background: bool) -> asyncio.Task[None]:
        self._compaction_stop = threading.Event()
        task = asyncio.ensure_future(self._run_compaction(self._compaction_stop, background))
        self._compaction = task
        return task

    async def _compaction_finished(self) -> None:
        """Wait until no compaction is under way (whatever its outcome)."""
        while (task := self._compaction) is not None:
            await asyncio.wait([task])

    async def _run_compaction(self, stop: threading.Event, background: bool) -> None:
        try:
            await self._compact(stop)
        except _Stopped:
            logger.debug("%s: compaction stopped (the storage was closed or reloaded)", self.path)
        except Exception:
            # The writes are all in the old journal; don't retry on every write (each try costs
            # a pass over all the live records).
            live = len(self._records or ())
            self._compact_retry_at = self._lines - live + max(self.compact_threshold, live)
            if not background:
                raise
            logger.exception(
                "%s: compaction failed; the journal is intact and is compacted later", self.path
            )
        finally:
            self._touched = None
            if self._compaction is asyncio.current_task():
                self._compaction = None

    async def _compact(self, stop: threading.Event) -> None:
        """Rewrite the journal with only the live records, without stopping writers.

        A snapshot of the records is encoded into ``<path>.compact`` in a worker thread while
        writes go on to the old journal and note their keys. Those keys' current records are
        then appended in rounds, the last (small) one under the lock, just before the atomic
        rename. Records handed to callers may be changed by them after their key was replaced,
        so a key written meanwhile is always re-encoded from memory, never trusted from the
        snapshot.
        """
        async with self._lock:
            records = self._records
            if records is None:
                raise _Stopped
            # The records held as lines are copied a shard at a time by the worker thread, as
            # writes go on: a key written meanwhile is in _touched and is written again below.
            # The decoded ones are copied here (a copy of the dict only: the entries are the
            # records' own tuples, no new objects for the garbage collector to traverse).
            decoded = records.entries.copy()
            self._touched = set()
            now = get_clock().now()
        logger.debug("%s: compacting %d records", self.path, len(records))
        tmp = self._compact_path
        old: AsyncBufferedIOBase | None = None
        try:
            size, lines, expired, encoded = await asyncio.to_thread(
                _write_snapshot, tmp, records.lines, records.expiry, decoded, now, stop, self.fsync
            )
            for _ in range(_CATCH_UP_ROUNDS):
                async with self._lock:
                    self._check_current(records, stop)
                    if self._touched is None or len(self._touched) <= _CATCH_UP_KEYS:
                        break
                    keys, self._touched = self._touched, set()
                    entries = [(k, _live(records, k)) for k in keys]
                data = await asyncio.to_thread(_encode_entries, entries)
                await asyncio.to_thread(_append_to, tmp, data, self.fsync)
                size, lines = size + len(data), lines + len(entries)
            async with self._lock:
                self._check_current(records, stop)
                entries = [(k, _live(records, k)) for k in self._touched or ()]
                self._touched = None
                data = _encode_entries(entries)
                await asyncio.to_thread(_append_to, tmp, data, self.fsync)
                await aiofiles.os.replace(tmp, self.path)
                old = await self._reopen(size + len(data), lines + len(entries))
                for key, slot in expired:  # gone from the new journal: forget them here too
                    if records.slot(key) is slot:
                        records.pop(key)
        except BaseException:
            try:
                await asyncio.to_thread(_remove_quietly, tmp)
            except OSError:
                logger.exception("%s: could not remove %s", self.path, tmp)
            raise
        finally:
            await self._close_old(old)  # with the lock released
        await self._let_go(records, decoded, encoded)

    async def _let_go(
        self, records: _Records, decoded: dict[str, _Entry], encoded: list[bytes | None]
    ) -> None:
        """Hold the records that the compaction encoded as their lines again, unless written
        since (a few thousand per turn of the event loop; no I/O, so no lock needed)."""
        items = iter(zip(decoded.items(), encoded, strict=True))
        while self._records is records:
            batch = list(itertools.islice(items, _LET_GO_BATCH))
            if not batch:
                return
            for (key, entry), line in batch:
                if line is not None and records.entries.get(key) is entry:
                    records.set_line(key, line, entry[1])
            del batch
            await asyncio.sleep(0)

    def _check_current(self, records: _Records, stop: threading.Event) -> None:
        if stop.is_set() or self._records is not records or self._file is None:
            raise _Stopped

    async def _reopen(self, size: int, lines: int) -> AsyncBufferedIOBase | None:
        """Append to the journal that was just renamed into place (under the lock).

        Returns the old journal's file for the caller to close once the lock is released:
        closing the last handle of a replaced file frees its blocks, which takes milliseconds
        for a big journal (measured: 5-13 ms at 17 MB), and writers need not wait for that.
        """
        old, self._file = self._file, None
        try:
            if self.fsync:
                await asyncio.to_thread(_fsync_dir, self.path)
            new = await aiofiles.open(self.path, "ab", opener=_private_opener)
        except BaseException:
            self._records = None  # force a reload from the (complete) new journal
            await self._close_old(old)
            raise
        self._file, self._size, self._lines = new, size, lines
        self._compact_retry_at = 0
        return old

    async def _close_old(self, old: AsyncBufferedIOBase | None) -> None:
        if old is not None:
            try:
                await old.close()
            except Exception:
                logger.exception("%s: closing the old journal failed", self.path)


#: How many decoded records a finished compaction turns back into lines per turn of the loop.
_LET_GO_BATCH = 2000


class _Stopped(Exception):
    """A compaction gave up: the storage was closed or reloaded meanwhile."""


async def _records_of(records: _Records) -> _Records:
    return records


def _live(records: _Records, key: str, *, keep: bool = True) -> _Entry | None:
    """The entry at ``key`` unless it has expired (an expired one is forgotten from memory).

    ``keep``: hold the record decoded from now on (a write is about to replace it); a read
    decodes a record kept as its line afresh each time and leaves it as it was.
    """
    entry = records.get(key, keep=keep)
    if entry is None:
        return None
    if entry[1] is not None and entry[1] <= get_clock().now():
        records.pop(key)  # its journal lines are dead now and go at the next compaction
        return None
    return entry


def _index_deadlines(records: _Records, index: DeadlineIndex | None) -> None:
    """Note the deadline of every loaded record that has one: only lines that mention one
    are decoded, so a journal without deadlines costs a substring search per record."""
    if index is None:
        return
    for key, line in records.lines.items():
        if b'"deadline"' in line:
            record = _decode_line(line)
            if record.callback is not None and record.deadline is not None:
                index.note(key, record.deadline)
    for key, (record, _) in records.entries.items():
        if record.callback is not None and record.deadline is not None:
            index.note(key, record.deadline)


def _copy(records: _Records, key: str, entry: _Entry) -> StateContext:
    """A record for a caller: a copy of one held decoded; one just decoded is already new."""
    return copy.deepcopy(entry[0]) if records.entries.get(key) is entry else entry[0]


def _without_step(entry: _Entry) -> _Entry | None:
    record = drop_step(entry[0])
    return None if record is None else (record, entry[1])


def _log_orphaned_failure(task: asyncio.Future[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        logger.error("a storage write whose caller was cancelled failed", exc_info=exc)


_V = TypeVar("_V")

#: How many dicts a `_Sharded` splits its items into (a power of two).
_SHARDS = 256


class _Sharded(Generic[_V]):
    """A dict split by key hash into `_SHARDS` dicts.

    Growing a dict rehashes all of its items in one call, and copying or freeing one is one
    call too: a worker thread holds the interpreter lock (and the event loop waits) for all of
    it, 2.3 ms per 100,000 items. A shard holds a 256th of them.
    """

    __slots__ = ("_len", "shards")

    def __init__(self) -> None:
        self.shards: list[dict[str, _V]] = [{} for _ in range(_SHARDS)]
        self._len = 0

    def get(self, key: str) -> _V | None:
        return self.shards[hash(key) & (_SHARDS - 1)].get(key)

    def __setitem__(self, key: str, value: _V) -> None:
        shard = self.shards[hash(key) & (_SHARDS - 1)]
        if key not in shard:
            self._len += 1
        shard[key] = value

    def pop(self, key: str) -> _V | None:
        value = self.shards[hash(key) & (_SHARDS - 1)].pop(key, None)
        if value is not None:
            self._len -= 1
        return value

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        for shard in self.shards:
            yield from shard

    def items(self) -> Iterator[tuple[str, _V]]:
        for shard in self.shards:
            yield from shard.items()


class _Records:
    """The live records, most of them as their journal line: an object the garbage collector
    never looks at.

    Every record built in memory is a handful of objects that CPython's cyclic collector
    tracks; 100,000 of them made its full collections (which stop every thread, the event
    loop's too) run while a journal loaded, each longer than the last. So a record is held as
    the whole-record line that holds it on disk (``bytes``, checked when the journal was read),
    and decoded when it is used; only the records written since the last compaction are held
    decoded (``entries``), until the compaction has their lines again.
    """

    __slots__ = ("entries", "expiry", "lines")

    def __init__(self, lines: _Sharded[bytes], expiry: _Sharded[float]) -> None:
        #: whole-record journal lines (without their newline) of records not held decoded
        self.lines = lines
        #: when the records in ``lines`` expire (those that do)
        self.expiry = expiry
        #: the records held decoded, with their expiry
        self.entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self.lines) + len(self.entries)

    def get(self, key: str, *, keep: bool = True) -> _Entry | None:
        """The entry at ``key``, expired or not; ``keep``: hold it decoded from now on."""
        entry = self.entries.get(key)
        if entry is not None:
            return entry
        line = self.lines.get(key)
        if line is None:
            return None
        entry = (_decode_line(line), self.expiry.get(key))
        if keep:
            self.set(key, entry)
        return entry

    def slot(self, key: str) -> bytes | _Entry | None:
        """What holds ``key`` now: its line or its decoded entry (compared by identity)."""
        return self.entries.get(key) or self.lines.get(key)

    def set(self, key: str, entry: _Entry) -> None:
        self.entries[key] = entry
        if self.lines.pop(key) is not None:
            self.expiry.pop(key)

    def set_line(self, key: str, line: bytes, expiry: float | None) -> None:
        self.entries.pop(key, None)
        self.lines[key] = line
        if expiry is None:
            self.expiry.pop(key)
        else:
            self.expiry[key] = expiry

    def pop(self, key: str) -> None:
        if self.entries.pop(key, None) is None and self.lines.pop(key) is not None:
            self.expiry.pop(key)


def _decode_line(line: bytes) -> StateContext:
    """The record of a whole-record line that was checked when the journal was read."""
    return StateContext.from_json(json.loads(line[18:-9])["record"])


# -- lines ------------------------------------------------------------------------------------
#: The first line of every journal: a file without it is not ours and is never modified.
HEADER = b'{"aiostep":"journal","v":2,"checksum":"crc32"}\n'
#: The header of version 1 journals (aiostep 0.4): whole-record JSON lines, no checksums.
HEADER_V1 = b'{"aiostep":"journal","v":1}\n'

_HEX8 = re.compile(rb"[0-9a-f]{8}")
_MIN_LINE = len(b"00000000 00000000 {} 00000000")


def _key_crc(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass"))


def _dumps(obj: Any) -> bytes:
    # ensure_ascii: any str (even a lone surrogate) round-trips, and no raw newline is written.
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode("ascii")


def _frame(key: str, obj: dict[str, Any]) -> bytes:
    """One journal line: the payload between its checksum and the key's checksum at both ends."""
    try:
        payload = _dumps(obj)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"record at key {key!r} is not JSON-serializable: {exc}") from exc
    kc = b"%08x" % _key_crc(key)
    return b"%s %08x %s %s\n" % (kc, zlib.crc32(payload), payload, kc)


def _whole_line(key: str, entry: _Entry | None) -> bytes:
    """The line that sets ``key`` to ``entry`` whatever came before (``None``: deleted)."""
    if entry is None:
        return _frame(key, {"key": key, "deleted": True})
    return _frame(key, {"key": key, "record": entry[0].to_json(), "expires_at": entry[1]})


def _write_line(
    key: str, before: _Entry | None, entry: _Entry | None, data_keys: frozenset[str] | None
) -> bytes:
    """The line for a write: only the change from ``before`` when that is smaller."""
    try:
        if entry is not None and before is not None:
            change = _change(before[0], entry[0], data_keys)
            if change is not None:
                return _frame(key, {"key": key, "change": change, "expires_at": entry[1]})
        return _whole_line(key, entry)
    except TypeError:
        if entry is not None:  # name the offending key when it is in data or kwargs
            ensure_json(entry[0].data, "data")
            ensure_json(entry[0].kwargs, "kwargs")
        raise


def _change(
    old: StateContext, new: StateContext, data_keys: frozenset[str] | None
) -> dict[str, Any] | None:
    """What turns ``old`` into ``new``, or ``None`` when it holds every data item anyway."""
    o, n = old.to_json(), new.to_json()
    fields_set = {
        name: n.get(name)
        for name in [*o, *(name for name in n if name not in o)]
        if name != "data" and not _same(o.get(name), n.get(name))
    }
    od: dict[str, Any] = o.get("data", {})
    nd: dict[str, Any] = n.get("data", {})
    candidates: Iterable[str] = nd if data_keys is None else (k for k in data_keys if k in nd)
    data = {k: nd[k] for k in candidates if k not in od or not _same(od[k], nd[k])}
    if len(data) == len(nd):
        return None  # the whole record is no bigger, and simpler to read back
    change: dict[str, Any] = {}
    if fields_set:
        change["set"] = fields_set
    if data:
        change["data"] = data
    if data_keys is None:
        drop = [k for k in od if k not in nd]
        if drop:
            change["drop"] = drop
    return change


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: ``1``, ``1.0`` and ``True`` (which ``==`` confuses) differ."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        return bool(a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    if kind is dict or kind is list:
        return bool(a == b) and _dumps(a) == _dumps(b)
    return bool(a == b)


def _encode_entries(entries: Sequence[tuple[str, _Entry | None]]) -> bytes:
    return b"".join(_whole_line(k, e) for k, e in entries)


# -- reading a journal --------------------------------------------------------------------------
class _Damaged(Exception):
    """A journal line that cannot be applied; ``key`` when its payload names one."""

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key


@dataclass
class _Damage:
    offset: int
    line: bytes
    reason: str
    keys: list[str]  # the conversations reset
    key_crcs: list[int]  # the key checksums read from the line


@dataclass
class _Loaded:
    records: _Records
    lines: int = 0  # complete lines (after the header) in the journal as it is now
    size: int = 0  # bytes of the journal as it is now
    version: int = 2
    header_damaged: bool = False
    torn: int = 0  # bytes of a cut-off last line that were dropped
    damage: list[_Damage] = field(default_factory=list)


class _Replay:
    """Applies journal lines in order; a damaged line resets the conversation it names."""

    def __init__(self, path: str, version: int) -> None:
        self.path = path
        self.version = version
        #: whole-record lines (version 2, without the newline), expired ones too until the end:
        #: a change may renew them. Each line's JSON was read and checked, then let go: a
        #: record kept as bytes gives the garbage collector nothing to traverse.
        self.lines: _Sharded[bytes] = _Sharded()
        self.expiry: _Sharded[float] = _Sharded()
        self.empty: set[str] = set()  # keys whose record holds nothing worth keeping
        #: the fields of records that change lines changed lately, decoded (a bounded few, so
        #: a run of changes to one record decodes and encodes it once, not once per change)
        self.folding: dict[str, dict[str, Any]] = {}
        self.pace = _Pacer()
        self.damage: list[_Damage] = []
        self.count = 0
        #: key checksums of conversations reset by a damaged line: their changes are skipped
        #: until a whole record (or a delete) starts them again
        self.reset: set[int] = set()

    def line(self, offset: int, line: bytes) -> None:
        self.count += 1
        try:
            good_key, obj = self._payload(line) if self.version == 2 else self._payload_v1(line)
            self._apply(good_key, obj, line)
        except _Damaged as exc:
            key = exc.key
            crcs = self._key_crcs(line) if self.version == 2 else set()
            if key is None and crcs:
                # The payload may still name its key: trust it if the key checksum agrees.
                with contextlib.suppress(_Damaged):
                    named = _decode_json(line[18:-9])[0]
                    key = named if _key_crc(named) in crcs else None
            elif key is None:
                # No checksum to go by (not a version 2 line at all): its JSON may name a key.
                with contextlib.suppress(_Damaged):
                    key = _decode_json(line)[0]
            if key is not None:
                crcs.add(_key_crc(key))
            keys = self._reset(crcs, key)
            self.damage.append(_Damage(offset, line, exc.reason, keys, sorted(crcs)))

    def _payload(self, line: bytes) -> tuple[str, dict[str, Any]]:
        if len(line) < _MIN_LINE:
            raise _Damaged("a line too short to be a journal line")
        crc, payload = line[9:17], line[18:-9]
        if not _HEX8.fullmatch(crc) or zlib.crc32(payload) != int(crc, 16):
            raise _Damaged("checksum mismatch")
        return _decode_json(payload)

    @staticmethod
    def _payload_v1(line: bytes) -> tuple[str, dict[str, Any]]:
        key, obj = _decode_json(line)
        if "change" in obj:
            raise _Damaged("a change line in a version 1 journal", key)
        return key, obj

    @staticmethod
    def _key_crcs(line: bytes) -> set[int]:
        """The key checksums found at either end of a damaged line."""
        crcs = set()
        if len(line) >= 9 and line[8:9] == b" " and _HEX8.fullmatch(line[:8]):
            crcs.add(int(line[:8], 16))
        if len(line) >= 9 and line[-9:-8] == b" " and _HEX8.fullmatch(line[-8:]):
            crcs.add(int(line[-8:], 16))
        return crcs

    def _reset(self, crcs: set[int], key: str | None) -> list[str]:
        """Forget the conversations with these key checksums; return the keys forgotten."""
        self.reset |= crcs
        gone = [k for k in self.lines if _key_crc(k) in crcs]
        for k in gone:
            self._forget(k)
        if key is not None and key not in gone:
            gone.append(key)
        return gone

    def _apply(self, key: str, obj: dict[str, Any], line: bytes) -> None:
        if self.reset:
            crc = _key_crc(key)
            if crc in self.reset:
                if "change" in obj:
                    raise _Damaged("a change to a conversation reset by a damaged line", key)
                self.reset.discard(crc)
        if obj.get("deleted") is True:
            self._forget(key)
            return
        expires_at = obj.get("expires_at")
        if expires_at is not None and not _is_number(expires_at):
            raise _Damaged(f"a non-numeric expires_at {expires_at!r:.40}", key)
        change = obj.get("change")
        if isinstance(change, dict):
            fields_ = self.folding.pop(key, None)
            if fields_ is None:
                base = self.lines.get(key)
                if base is None:
                    raise _Damaged("a change to a record the journal does not hold", key)
                fields_ = _fields_of(base)
            self.folding[key] = _apply_change(fields_, change, key)
            self._set_expiry(key, expires_at)
            if len(self.folding) > _FOLDING:
                oldest = next(iter(self.folding))
                self._settle(oldest, self.folding.pop(oldest))
            return
        record = obj.get("record")
        if not isinstance(record, dict):
            raise _Damaged('neither a "record", a "change" nor "deleted"', key)
        _check_fields(record, key)
        self.folding.pop(key, None)
        self._set_expiry(key, expires_at)
        if self.version == 2:
            self.lines[key] = line
            self._set_empty(key, record)
        else:  # given its checksums now
            self._settle(key, record)

    def _set_expiry(self, key: str, expires_at: float | None) -> None:
        if expires_at is None:
            self.expiry.pop(key)
        else:
            self.expiry[key] = float(expires_at)

    def _set_empty(self, key: str, record: dict[str, Any]) -> None:
        if (
            record.get("current_state") is None
            and record.get("callback") is None
            and not record.get("data")
        ):
            self.empty.add(key)
        else:
            self.empty.discard(key)

    def _settle(self, key: str, record: dict[str, Any]) -> None:
        """Hold ``record`` as its whole-record line."""
        obj = {"key": key, "record": record, "expires_at": self.expiry.get(key)}
        self.lines[key] = _frame(key, obj)[:-1]
        self._set_empty(key, record)

    def _forget(self, key: str) -> None:
        self.lines.pop(key)
        self.expiry.pop(key)
        self.folding.pop(key, None)
        self.empty.discard(key)

    def records(self, now: float) -> _Records:
        """The live records, once every line is replayed."""
        for key, fields_ in self.folding.items():
            self._settle(key, fields_)
            self.pace()
        self.folding.clear()
        gone = [*self.empty]
        for key, expires_at in self.expiry.items():
            if expires_at <= now:
                gone.append(key)
            self.pace()
        for key in gone:
            self._forget(key)
        return _Records(self.lines, self.expiry)


#: How many records a replay holds decoded while change lines change them.
_FOLDING = 64

#: A worker thread that replays or rewrites a journal hands the interpreter lock to any thread
#: that waits for it (the event loop's) after this many seconds of work, rather than keeping it
#: for a whole switch interval (5 ms by default) while the event loop waits.
_SLICE = 0.001


class _Pacer:
    """Call it often from a busy worker thread: every `_SLICE` it lets other threads run."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = time.perf_counter() + _SLICE

    def __call__(self) -> None:
        if time.perf_counter() >= self._next:
            time.sleep(0)  # releases the lock; a thread waiting for it takes it meanwhile
            self._next = time.perf_counter() + _SLICE


def _decode_json(payload: bytes) -> tuple[str, dict[str, Any]]:
    try:
        obj = json.loads(payload, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _Damaged(f"not a JSON line ({exc})") from exc
    if not isinstance(obj, dict):
        raise _Damaged("a journal line must be a JSON object")
    key = obj.get("key")
    if not isinstance(key, str):
        raise _Damaged('missing or non-string "key"')
    return key, obj


def _check_fields(record: dict[str, Any], key: str) -> None:
    for name, types in _FIELD_TYPES.items():
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            raise _Damaged(f"{name}={value!r:.40} of type {type(value).__name__}", key)


def _fields_of(line: bytes) -> dict[str, Any]:
    """The record's fields in a whole-record line that was checked."""
    record: dict[str, Any] = json.loads(line[18:-9])["record"]
    return record


def _apply_change(fields_: dict[str, Any], change: dict[str, Any], key: str) -> dict[str, Any]:
    """The fields of a record (changed in place) after a change line."""
    updates = change.get("set", {})
    data = change.get("data", {})
    drop = change.get("drop", [])
    if not isinstance(updates, dict) or not isinstance(data, dict) or not isinstance(drop, list):
        raise _Damaged("a malformed change", key)
    for name, value in updates.items():
        if value is None:
            fields_.pop(name, None)
        else:
            fields_[name] = value
    if data or drop:
        merged = dict(fields_.get("data") or {})  # (a whole line may hold "data": null)
        merged.update(data)
        for item in drop:
            if not isinstance(item, str):
                raise _Damaged("a malformed change", key)
            merged.pop(item, None)
        fields_["data"] = merged
    _check_fields(fields_, key)
    return fields_


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _header_version(path: str, raw: bytes) -> tuple[int, bool]:
    """The journal's version and whether its header has a damaged byte; raise if not ours."""
    for version, header in ((2, HEADER), (1, HEADER_V1)):
        head = raw[: len(header)]
        if len(head) == len(header) and sum(a != b for a, b in zip(head, header, strict=True)) <= 1:
            return version, head != header
    raise StorageCorruptedError(
        path,
        0,
        "not an aiostep journal (its first line is not the journal header); "
        "point FileStateStorage at a new file",
    )


def _parse(path: str, raw: bytes, now: float) -> _Loaded:
    """Replay a journal's bytes (``size``: up to the end of its last complete line)."""
    if len(raw) < len(HEADER) and (HEADER.startswith(raw) or HEADER_V1.startswith(raw)):
        # empty, or a crash before its header was complete
        return _Loaded(_Records(_Sharded(), _Sharded()), torn=len(raw))
    version, header_damaged = _header_version(path, raw)
    replay = _Replay(path, version)
    offset = len(HEADER if version == 2 else HEADER_V1)
    pace = replay.pace
    while True:
        end = raw.find(b"\n", offset)
        if end == -1:
            break
        replay.line(offset, raw[offset:end])
        offset = end + 1
        pace()
    torn = len(raw) - offset
    if torn and version == 2 and _is_whole_line(raw[offset:-1]):
        # The last newline itself was damaged: the line is whole, keep it.
        replay.line(offset, raw[offset:-1])
        offset, torn = len(raw), 0
        header_damaged = True  # (forces the rewrite that puts the newline back)
    records = replay.records(now)
    return _Loaded(records, replay.count, offset, version, header_damaged, torn, replay.damage)


def _is_whole_line(line: bytes) -> bool:
    crc = line[9:17]
    return (
        len(line) >= _MIN_LINE
        and _HEX8.fullmatch(crc) is not None
        and zlib.crc32(line[18:-9]) == int(crc, 16)
    )


def _open_journal(path: str, now: float, fsync: bool, remove_leftover: bool) -> _Loaded:
    """Read and replay the journal; quarantine damage and rewrite it if needed (blocking)."""
    try:
        with open(path, "rb") as reader:
            raw = reader.read()
        existed = True
    except FileNotFoundError:
        raw, existed = b"", False
    loaded = _parse(path, raw, now)
    if loaded.torn and loaded.size:
        logger.warning(
            "%s: dropped an incomplete last line at byte offset %d (%d bytes): a write "
            "that was cut off before it was acknowledged",
            path,
            loaded.size,
            loaded.torn,
        )
    if loaded.damage:
        _quarantine(path, loaded.damage, fsync)
    if loaded.damage or loaded.version != 2 or loaded.header_damaged:
        if loaded.version != 2:
            logger.info("%s: rewriting a version %d journal as version 2", path, loaded.version)
        tmp = path + ".compact"
        records = loaded.records
        size, lines, _, _ = _write_snapshot(
            tmp, records.lines, records.expiry, records.entries, now, None, fsync
        )
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path)
        loaded.size, loaded.lines = size, lines
        return loaded
    fd = _private_opener(path, os.O_WRONLY)
    try:
        if loaded.torn:
            os.ftruncate(fd, loaded.size)
        if loaded.size == 0:  # a new journal (or one whose header write was cut off)
            os.pwrite(fd, HEADER, 0)
            loaded.size = len(HEADER)
        if (loaded.torn or loaded.size == len(HEADER)) and fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if not existed and fsync:
        _fsync_dir(path)
    if remove_leftover:
        try:
            # A crash during compaction may leave its temporary file; the journal is intact.
            _remove_quietly(path + ".compact")
        except OSError:
            logger.warning("%s: could not remove %s.compact", path, path, exc_info=True)
    return loaded


#: At most this many damaged lines are logged one by one; the rest are counted.
_LOGGED_DAMAGE = 20


def _quarantine(path: str, damage: list[_Damage], fsync: bool) -> None:
    """Append the damaged lines to ``<path>.quarantine`` (durably) and log each one."""
    target = path + ".quarantine"
    out = b"".join(
        _dumps(
            {
                "journal": path,
                "offset": d.offset,
                "reason": d.reason,
                "keys": d.keys,
                "line": d.line.decode("latin-1"),  # the raw bytes, one char each
            }
        )
        + b"\n"
        for d in damage
    )
    fd = _private_opener(target, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, out)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    for d in damage[:_LOGGED_DAMAGE]:
        if d.keys:
            who = "conversation " + ", ".join(repr(k) for k in d.keys) + " starts fresh"
        elif d.key_crcs:
            who = (
                "its conversation (key checksum "
                + ", ".join(f"{c:08x}" for c in d.key_crcs)
                + ") had no earlier record; later changes to it are skipped until it is "
                "written whole again"
            )
        else:
            who = "no conversation can be told from it; it is skipped"
        logger.error(
            "%s: damaged line at byte offset %d (%s): copied to %s; %s",
            path,
            d.offset,
            d.reason,
            target,
            who,
        )
    if len(damage) > _LOGGED_DAMAGE:
        logger.error(
            "%s: %d more damaged lines copied to %s", path, len(damage) - _LOGGED_DAMAGE, target
        )


def _write_snapshot(
    tmp: str,
    lines: _Sharded[bytes],
    expiry: _Sharded[float],
    entries: dict[str, _Entry],
    now: float,
    stop: threading.Event | None,
    fsync: bool,
) -> tuple[int, int, list[tuple[str, bytes | _Entry]], list[bytes | None]]:
    """Write a new journal of the records in ``lines`` and ``entries`` to ``tmp``.

    Returns ``(bytes, lines, expired records left out, the line of each record in
    ``entries``, in order, None if expired)``. Records held as lines are copied as they are:
    nothing to decode or encode. ``lines`` and ``expiry`` may be changed by another thread
    meanwhile: each shard is copied (one call) when its turn comes.
    """
    _remove_quietly(tmp)
    size, count = len(HEADER), 0
    expired: list[tuple[str, bytes | _Entry]] = []
    encoded: list[bytes | None] = []  # a list of bytes: nothing for the collector to track
    pace = _Pacer()
    with open(tmp, "wb", opener=_new_private_opener) as out:
        out.write(HEADER)
        batch: list[bytes] = []

        def flush() -> None:
            nonlocal size, count, batch
            if stop is not None and stop.is_set():
                raise _Stopped
            chunk = b"".join(batch)
            out.write(chunk)
            size, count, batch = size + len(chunk), count + len(batch) // 2, []  # line, b"\n"

        for shard, expiry_shard in zip(lines.shards, expiry.shards, strict=True):
            shard, expiry_shard = shard.copy(), expiry_shard.copy()
            for key, line in shard.items():
                expires_at = expiry_shard.get(key)
                if expires_at is not None and expires_at <= now:
                    expired.append((key, line))
                    continue
                batch += (line, b"\n")
                if len(batch) >= 4096:
                    flush()
                pace()
            del shard, expiry_shard  # freed here, a shard at a time
        for key, entry in entries.items():
            if entry[1] is not None and entry[1] <= now:
                expired.append((key, entry))
                encoded.append(None)
                continue
            line = _whole_line(key, entry)[:-1]
            encoded.append(line)
            batch += (line, b"\n")
            if len(batch) >= 1024:
                flush()
            pace()
        flush()
        out.flush()
        if fsync:
            os.fsync(out.fileno())
    return size, count, expired, encoded


def _append_to(path: str, data: bytes, fsync: bool) -> None:
    with open(path, "ab") as out:
        out.write(data)
        out.flush()
        if fsync:
            os.fsync(out.fileno())


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
        """Take the lock of ``journal`` or raise `StorageLockedError` (blocking calls)."""
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


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
