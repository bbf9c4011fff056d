"""Redis storage on ``redis.asyncio``: shared by several workers, one round trip per operation.

Layout: one hash per key, ``{prefix}{key}``, with fields ``state``, ``callback``, ``chat_id``,
``kwargs``, ``deadline``, ``on_timeout``, ``token``, ``accepts``, ``busy`` (the lease of a
claimed step, so other workers wait for its outcome), one ``d:<name>`` field per data item
(its JSON) and ``order`` (the data names in insertion order, as on the other backends).
``update_data`` is an ``HSET`` of the changed items, so concurrent updates never lose each
other; writes and claims are Lua scripts (atomic, one round trip).
"""

from __future__ import annotations

import json
from typing import Any

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
    check_patch,
)

try:
    from redis.asyncio import Redis
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "RedisStateStorage needs the redis package: pip install 'aiostep[redis]'"
    ) from exc

__all__ = ["RedisStateStorage"]

_STEP_FIELDS = ("callback", "kwargs", "deadline", "on_timeout", "token", "accepts", "busy")

# Shared Lua: drop the pending step; forget chat_id when no state is left either.
_DROP = """
-- A busy mark that is all a hash holds must not outlive its lease if its worker died: expire
-- the hash then; the next write makes it permanent again.
local function mark_busy(key, lease)
  redis.call('HSET', key, 'busy', lease)
  if redis.call('HLEN', key) == 1 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, math.ceil(tonumber(lease) * 1000) + 1000)
  end
end
local function drop(key)
  redis.call('HDEL', key, 'callback', 'kwargs', 'deadline', 'on_timeout', 'token', 'accepts',
    'busy')
  if redis.call('HEXISTS', key, 'state') == 0 then redis.call('HDEL', key, 'chat_id') end
end
"""

# KEYS[1]=key; ARGV: ttl_ms ('' = keep), replace_data ('1'/'0'), ndel, del fields..., pairs...
_WRITE = """
local key = KEYS[1]
local before = redis.call('HGETALL', key)
if ARGV[1] == '' and redis.call('HLEN', key) == 1 and redis.call('HEXISTS', key, 'busy') == 1 then
  redis.call('PERSIST', key)  -- it only had the busy mark's expiry
end
if ARGV[2] == '1' then
  for i = 1, #before, 2 do
    if string.sub(before[i], 1, 2) == 'd:' then redis.call('HDEL', key, before[i]) end
  end
end
local ndel = tonumber(ARGV[3])
for i = 4, 3 + ndel do redis.call('HDEL', key, ARGV[i]) end
-- 'order' lists the data names, NUL-terminated, in insertion order: a hash has none of its own
local order = ''
if ARGV[2] ~= '1' then order = redis.call('HGET', key, 'order') or '' end
local grew = ARGV[2] == '1'
for i = 4 + ndel, #ARGV, 2 do
  local f = ARGV[i]
  if string.sub(f, 1, 2) == 'd:' and (ARGV[2] == '1' or redis.call('HEXISTS', key, f) == 0) then
    order = order .. string.sub(f, 3) .. '\0'
    grew = true
  end
end
if #ARGV > 3 + ndel then redis.call('HSET', key, unpack(ARGV, 4 + ndel)) end
if grew then
  if order == '' then redis.call('HDEL', key, 'order')
  else redis.call('HSET', key, 'order', order) end
end
if redis.call('HEXISTS', key, 'state') == 0 and redis.call('HEXISTS', key, 'callback') == 0 then
  redis.call('HDEL', key, 'chat_id')
end
if ARGV[1] ~= '' and redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
return before
"""

# KEYS[1]=key; ARGV: now, kind, is_command ('1'/'0'), callback data, lease ('' = none).
# Mirrors base.decide_claim, plus the busy mark of a shared storage.
_CLAIM = (
    _DROP
    + """
local key = KEYS[1]
local rec = redis.call('HGETALL', key)
local cb = redis.call('HGET', key, 'callback')
if not cb then
  local busy = redis.call('HGET', key, 'busy')
  if busy and tonumber(busy) > tonumber(ARGV[1]) then return {5, rec} end
  return {0, rec}
end
local dl = redis.call('HGET', key, 'deadline')
if dl and tonumber(dl) <= tonumber(ARGV[1]) then drop(key); return {2, rec} end
local acc = redis.call('HGET', key, 'accepts') or ',message,'
local takes = string.find(acc, ',' .. ARGV[2] .. ',', 1, true)
if not takes and ARGV[2] == 'callback_query' then
  for prefix in string.gmatch(acc, ',callback_query=([^,]*)') do
    if string.sub(ARGV[4], 1, #prefix) == prefix then takes = true end
  end
end
if not takes then return {3, rec} end
if ARGV[3] == '1' and not string.find(acc, ',command,', 1, true) then return {3, rec} end
if string.find(acc, ',filter,', 1, true) then return {4, rec} end
drop(key)
if ARGV[5] ~= '' then mark_busy(key, ARGV[5]) end
return {1, rec}
"""
)

# KEYS[1]=key; ARGV[1]=token, ARGV[2]=lease ('' = none)
_CLAIM_TOKEN = (
    _DROP
    + """
local key = KEYS[1]
if redis.call('HEXISTS', key, 'callback') == 0 then return false end
if redis.call('HGET', key, 'token') ~= ARGV[1] then return false end
local rec = redis.call('HGETALL', key)
drop(key)
if ARGV[2] ~= '' then mark_busy(key, ARGV[2]) end
return rec
"""
)

# KEYS[1]=key; ARGV[1]=the lease a claim set. A write since (a new step) already removed it.
_RELEASE = """
local key = KEYS[1]
if redis.call('HGET', key, 'busy') ~= ARGV[1] then return 0 end
redis.call('HDEL', key, 'busy')
if redis.call('HEXISTS', key, 'state') == 0 and redis.call('HEXISTS', key, 'callback') == 0 then
  redis.call('HDEL', key, 'chat_id')
end
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(raw_record: Any) -> StateContext | None:
    """A record from a hash, given as a mapping (HGETALL) or a flat list (scripts)."""
    if not raw_record:
        return None
    if isinstance(raw_record, dict):
        items = list(raw_record.items())
    else:
        items = [(raw_record[i], raw_record[i + 1]) for i in range(0, len(raw_record), 2)]
    record = StateContext()
    order: list[str] = []
    for raw_name, raw_value in items:
        name, raw = _text(raw_name), _text(raw_value)
        if name == "order":
            order = raw.split("\0")[:-1]
            continue
        if name.startswith("d:"):
            record.data[name[2:]] = json.loads(raw)
        elif name == "state":
            record.current_state = raw
        elif name == "callback":
            record.callback = raw
        elif name == "chat_id":
            record.chat_id = json.loads(raw)
        elif name == "kwargs":
            record.kwargs = json.loads(raw)
        elif name == "deadline":
            record.deadline = float(raw)
        elif name == "on_timeout":
            record.on_timeout = raw
        elif name == "token":
            record.token = raw
        elif name == "accepts":
            record.accepts = raw
        elif name == "busy":
            record.busy = float(raw)
    if order and record.data:
        ranked = {name: i for i, name in enumerate(order)}
        record.data = dict(sorted(record.data.items(), key=lambda kv: ranked.get(kv[0], 1 << 30)))
    return record


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class RedisStateStorage(BaseStorage):
    """Storage in Redis: use it when conversations must survive restarts and be shared by
    several worker processes.

    Args:
        redis: a ``redis.asyncio.Redis`` client, or a URL (``redis://localhost:6379/0``).
        ex: default time to live of a record (seconds or ``timedelta``), refreshed on write.
        prefix: prepended to every key, so the bot's own keys are never touched.
        max_record_bytes: the most bytes of JSON a record's data and kwargs may hold
            (``None``: no limit). Redis checks what each write sets, not the merged record: see
            :class:`~aiostep.storage.base.BaseStorage`.
    """

    persistent = True
    shared = True

    def __init__(
        self,
        redis: Redis | str,
        ex: ExpiryT = None,
        *,
        prefix: str = "aiostep:",
        max_record_bytes: int | None = MAX_RECORD_BYTES,
    ) -> None:
        super().__init__(ex, max_record_bytes=max_record_bytes)
        self._owns_client = isinstance(redis, str)
        self.redis: Redis = Redis.from_url(redis) if isinstance(redis, str) else redis
        self.prefix = prefix
        self._write_script = self.redis.register_script(_WRITE)
        self._claim_script = self.redis.register_script(_CLAIM)
        self._claim_token_script = self.redis.register_script(_CLAIM_TOKEN)
        self._release_script = self.redis.register_script(_RELEASE)

    @property
    def cache(self) -> Redis:
        """The Redis client (the seed called it ``cache``)."""
        return self.redis

    def _k(self, key: StorageKey) -> str:
        return self.prefix + _key(key)

    async def read(self, key: StorageKey) -> StateContext | None:
        """The record at ``key``, or ``None`` (one ``HGETALL``)."""
        return _decode(await self.redis.hgetall(self._k(key)))

    async def _write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """Apply ``patch`` atomically in one script call; return the record as it was."""
        check_patch(patch)
        delete: list[str] = []
        pairs: list[str] = []

        def put(name: str, value: Any, encoded: str) -> None:
            if value is None:
                delete.append(name)
            else:
                pairs.extend((name, encoded))

        if patch.state is not UNSET:
            put("state", patch.state, str(patch.state))
        if patch.callback is not UNSET:
            if patch.callback is None:
                delete.extend(_STEP_FIELDS)
            else:
                pairs.extend(("callback", patch.callback))
                delete.append("busy")  # the running step's outcome is written: not busy now
        if patch.kwargs is not UNSET:
            if patch.kwargs:
                pairs.extend(("kwargs", _dumps(patch.kwargs)))
            else:
                delete.append("kwargs")
        if patch.deadline is not UNSET:
            put("deadline", patch.deadline, repr(patch.deadline))
        for name in ("on_timeout", "token", "accepts"):
            value = getattr(patch, name)
            if value is not UNSET:
                put(name, value, str(value))
        if patch.chat_id is not UNSET:
            put("chat_id", patch.chat_id, _dumps(patch.chat_id))
        replace = patch.data is not UNSET
        items = {}
        if patch.data is not UNSET:
            items.update(patch.data)
        if patch.data_update is not UNSET:
            items.update(patch.data_update)
        for name, value in items.items():
            pairs.extend(("d:" + name, _dumps(value)))
        ttl = self._ex(ex)
        ttl_ms = "" if ttl is None else str(max(1, round(ttl * 1000)))
        args = [ttl_ms, "1" if replace else "0"]
        args.append(str(len(delete)))
        args.extend(delete)
        args.extend(pairs)
        before = await self._write_script(keys=[self._k(key)], args=args)
        return _decode(before)

    async def _remove(self, key: StorageKey) -> StateContext | None:
        """Delete the record at ``key``; return it (one ``MULTI``: ``HGETALL`` + ``DEL``)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._k(key))
            pipe.delete(self._k(key))
            before, _ = await pipe.execute()
        return _decode(before)

    async def claim(
        self,
        key: StorageKey,
        *,
        now: float,
        kind: str,
        is_command: bool,
        callback_data: str | None = None,
        lease: float | None = None,
    ) -> Claim:
        """Take the pending step for an update (one script call)."""
        status, flat = await self._claim_script(
            keys=[self._k(key)],
            args=[
                repr(now),
                kind,
                "1" if is_command else "0",
                callback_data or "",
                "" if lease is None else repr(lease),
            ],
        )
        return Claim(ClaimStatus(int(status)), _decode(flat))

    async def _claim_token(
        self, key: StorageKey, token: str, lease: float | None = None
    ) -> StateContext | None:
        """Remove the pending step if it is still registration ``token`` (one script call)."""
        flat = await self._claim_token_script(
            keys=[self._k(key)], args=[token, "" if lease is None else repr(lease)]
        )
        return _decode(flat) if flat else None

    async def release(self, key: StorageKey, lease: float) -> None:
        """End the busy mark ``lease`` of a claim unless a newer write replaced it (one call)."""
        await self._release_script(keys=[self._k(key)], args=[repr(lease)])

    async def close(self) -> None:
        """Close the client if this storage created it from a URL."""
        if self._owns_client:
            await self.redis.aclose()
