"""Redis storage on ``redis.asyncio``: shared by several workers, one round trip per operation.

Layout: one hash per key, ``{prefix}{key}``, with fields ``state``, ``callback``, ``chat_id``,
``deadline``, ``on_timeout``, ``token``, ``accepts``, ``busy`` (the lease of a claimed step,
so other workers wait for its outcome), one ``k:<name>`` field per item of the step's kwargs
and one ``d:<name>`` field per data item (their JSON), and ``order`` (the data names in
insertion order, as on the other backends). Short fields keep a small hash in Redis' compact
encoding (values up to ``hash-max-listpack-value``, 64 bytes by default): one value over it
makes the whole hash a hashtable, about three times the bytes. A record written before the
kwargs had fields of their own keeps them in one ``kwargs`` field; it is read as before, and
the next write of its step replaces it.
``update_data`` is an ``HSET`` of the changed items, so concurrent updates never lose each
other; writes and claims are Lua scripts (atomic, one round trip).

Redis Cluster: every key one conversation touches is in the record's hash slot. The record
keeps its plain name (``{prefix}{key}`` without braces: stored records stay where they are);
a companion key is ``{<record key>}<suffix>``, whose hash tag is the whole record name, so it
hashes to the same slot (``_companion``). Every script names all its keys in ``KEYS``; none
touches a key outside the conversation (the workers' heartbeat set is read by the heartbeat
loop, which passes the claim the number of live workers and the ids of those that stopped).
The deadline index (``redis_deadlines.py``) is global and has scripts of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiostep.clock import get_clock
from aiostep.exceptions import RecordTooLargeError, StorageUnavailableError
from aiostep.options import count_option, seconds_option
from aiostep.storage import redis_handover as handover
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
    _unencodable,
    _Unset,
    check_patch,
    new_owner,
    patch_size,
)
from aiostep.storage.redis_deadlines import RedisDeadlines
from aiostep.storage.redis_keys import companion as _companion

try:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import ClusterDownError, NoScriptError, RedisClusterException
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "RedisStateStorage needs the redis package: pip install 'aiostep[redis]'"
    ) from exc

# after the check above: it imports redis
from aiostep.storage.redis_client import QuickBlockingPool, client_from_url, execute

__all__ = ["RedisStateStorage"]

logger = logging.getLogger("aiostep")

#: what a client raises when it cannot reach Redis (see ``RedisStateStorage._reachable``)
_UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterException,  # a cluster client that reaches no node
    ClusterDownError,
)

_STEP_FIELDS = (
    "callback",
    "kwargs",
    "deadline",
    "on_timeout",
    "token",
    "accepts",
    "busy",
    "claim",
    "inflight",
)

# The scripts an update runs (write, claim, claim by token) answer with one JSON string
# (``cjson.encode``) instead of a Lua table: redis-py's parser reads a table's every element
# apart (a line and a read each, in Python: ~2 µs an element without hiredis), and a record
# is 10 to 30 of them, twice per update; one bulk string is one element, and ``json.loads``
# (C) splits it. The JSON is ``[status, [name, value, ...]]`` (a record's hash as HGETALL
# lists it; an empty one encodes as ``{}``). The same way, write and claim take their
# arguments as one JSON array in ARGV[1] (``_pack``; the script's first line decodes it into a
# local ``ARGV``): redis-py packs each argument of a command apart, ~0.6 µs each, and these
# have 15 to 30.

# Shared Lua: drop the pending step (and its claim); forget chat_id when no state is left either.
_DROP = """
local function drop_kwargs(key)
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'k:' then redis.call('HDEL', key, f) end
  end
end
local function drop(key)
  redis.call('HDEL', key, 'callback', 'kwargs', 'deadline', 'on_timeout', 'token', 'accepts',
    'busy', 'claim', 'inflight')
  drop_kwargs(key)
  if redis.call('HEXISTS', key, 'state') == 0 then redis.call('HDEL', key, 'chat_id') end
end
-- a claim is alive while its lease runs
local function alive(key, now)
  if redis.call('HEXISTS', key, 'claim') == 0 then return false end
  local busy = tonumber(redis.call('HGET', key, 'busy') or '0')
  return busy > now
end
"""

# KEYS[1]=key; ARGV[1] (packed): ttl_ms ('' = keep), replace_data ('1'/'0'), owner ('' =
# none), size limit of the merged record ('' = none), ndel, del fields..., pairs...; ARGV[2]
# '1' (optional): the record before is not sent back. Returns {1, record before}; or writes
# nothing and returns {0, the claim's current owner or ''} when owner no longer holds the
# claim, {2, size} when the record would exceed the limit (as JSON, see above).
_WRITE = """
local blind = ARGV[2] == '1'  -- the caller does not read the record as it was
local function run()
local ARGV = cjson.decode(ARGV[1])
local key = KEYS[1]
if ARGV[3] ~= '' then
  local holder = redis.call('HGET', key, 'claim')
  if holder ~= ARGV[3] then return {0, holder or ''} end
end
local before = redis.call('HGETALL', key)
local ndel = tonumber(ARGV[5])
if ARGV[4] ~= '' then
  -- the record's data and kwargs after this merge, measured as JSON (as the Python side does;
  -- a data name JSON would escape counts unescaped): over the limit, nothing is written
  local data, kws, kw = {}, {}, nil
  for i = 1, #before, 2 do
    local f = before[i]
    local head = string.sub(f, 1, 2)
    if f == 'kwargs' then kw = #before[i + 1]  -- a record written before kwargs had fields
    elseif head == 'k:' then kws[string.sub(f, 3)] = #before[i + 1]
    elseif ARGV[2] ~= '1' and head == 'd:' then
      data[string.sub(f, 3)] = #before[i + 1]
    end
  end
  for i = 6, 5 + ndel do if ARGV[i] == 'kwargs' then kw = nil; kws = {} end end
  for i = 6 + ndel, #ARGV, 2 do
    local f = ARGV[i]
    local head = string.sub(f, 1, 2)
    if head == 'k:' then kws[string.sub(f, 3)] = #ARGV[i + 1]
    elseif head == 'd:' then data[string.sub(f, 3)] = #ARGV[i + 1] end
  end
  local size = kw or 0
  for _, items in ipairs({data, kws}) do
    local n = 0
    for name, len in pairs(items) do size = size + #name + 3 + len; n = n + 1 end
    if n > 0 then size = size + n + 1 end  -- the braces, and a comma between items
  end
  if size > tonumber(ARGV[4]) then return {2, tostring(size)} end
end
if ARGV[3] ~= '' then
  -- the claim's outcome: the claim ends and its update counts as applied
  local inflight = redis.call('HGET', key, 'inflight')
  if inflight then
    local seq = tonumber(redis.call('HGET', key, 'seq') or '0')
    if tonumber(inflight) > seq then redis.call('HSET', key, 'seq', inflight) end
  end
  redis.call('HDEL', key, 'claim', 'busy', 'inflight')
end
if ARGV[2] == '1' then
  for i = 1, #before, 2 do
    if string.sub(before[i], 1, 2) == 'd:' then redis.call('HDEL', key, before[i]) end
  end
end
for i = 6, 5 + ndel do
  redis.call('HDEL', key, ARGV[i])
  if ARGV[i] == 'kwargs' then  -- the step's kwargs are replaced: each of its fields goes
    for j = 1, #before, 2 do
      if string.sub(before[j], 1, 2) == 'k:' then redis.call('HDEL', key, before[j]) end
    end
  end
end
-- 'order' lists the data names, NUL-terminated, in insertion order: a hash has none of its own
local order = ''
if ARGV[2] ~= '1' then order = redis.call('HGET', key, 'order') or '' end
local grew = ARGV[2] == '1'
for i = 6 + ndel, #ARGV, 2 do
  local f = ARGV[i]
  if string.sub(f, 1, 2) == 'd:' and (ARGV[2] == '1' or redis.call('HEXISTS', key, f) == 0) then
    order = order .. string.sub(f, 3) .. '\0'
    grew = true
  end
end
if #ARGV > 5 + ndel then redis.call('HSET', key, unpack(ARGV, 6 + ndel)) end
if grew then
  if order == '' then redis.call('HDEL', key, 'order')
  else redis.call('HSET', key, 'order', order) end
end
local has_state = redis.call('HEXISTS', key, 'state') == 1
if not has_state and redis.call('HEXISTS', key, 'callback') == 0 then
  redis.call('HDEL', key, 'chat_id')
  local empty = true
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'd:' then empty = false; break end
  end
  -- nothing worth keeping (as StateContext.is_empty says): the record goes, unless a
  -- wait_for of some worker is registered in it
  if empty and redis.call('HEXISTS', key, 'waiter') == 0 then redis.call('DEL', key) end
end
if ARGV[1] ~= '' and redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
if blind then return {1, {}} end
return {1, before}
end
return cjson.encode(run())
"""

# The conversation's turn (order_updates), in the companion hash tk: 'run' = the owner of the
# turn, 'until' = its lease (server time), and 'w:<update_id>' = "first seen:last seen" of each
# update waiting for it. Returns 1 when `me` holds the turn now, 5 while another update holds
# it or a lower update_id waits, 7 while the update is younger than `window` seconds. Server
# time: one clock for every worker (real time even under a test's fake clock).
_TURN = """
local function turn(tk, me, uid, window, lease)
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local run = redis.call('HGET', tk, 'run')
  local held = run and run ~= me and tonumber(redis.call('HGET', tk, 'until') or '0') > now
  local first, lower = nil, false
  if uid then
    local flat = redis.call('HGETALL', tk)
    for i = 1, #flat, 2 do
      local id = string.match(flat[i], '^w:(%d+)$')
      if id then
        id = tonumber(id)
        local f, seen = string.match(flat[i + 1], '^([^:]+):(.+)$')
        if id == uid then first = tonumber(f)
        elseif tonumber(seen) < now - lease then redis.call('HDEL', tk, flat[i])  -- died waiting
        elseif id < uid then lower = true end
      end
    end
  end
  local ms = math.ceil(lease * 2000)
  if held or lower or (uid and window > 0 and (first or now) > now - window) then
    if uid then
      redis.call('HSET', tk, 'w:' .. uid, string.format('%.6f:%.6f', first or now, now))
      redis.call('PEXPIRE', tk, ms)
    end
    if held or lower then return 5 end
    return 7
  end
  redis.call('HSET', tk, 'run', me, 'until', string.format('%.6f', now + lease))
  if uid then redis.call('HDEL', tk, 'w:' .. uid) end
  redis.call('PEXPIRE', tk, ms)
  return 1
end
"""

# KEYS[1]=key, KEYS[2]=its turn (companion; only with a turn); ARGV (packed): now, kind,
# is_command ('1'/'0'), callback data, lease ('' = none), owner, update_id ('' = none),
# ordering window (seconds), queue horizon (seconds), live workers (the heartbeat's count),
# turn ('' = none, else its window in seconds), turn lease (seconds), this worker's id, the
# workers this one saw stop beating (",a,b," or ''; from its heartbeat, so the script reads no
# key outside the conversation's slot).
# Mirrors base.decide_claim, plus the ordering queue 'q' of a shared storage: entries
# "update_id:arrival," of the updates waiting for this conversation's step. After the turn, a
# ``wait_for`` parked in another worker comes first (redis_handover.py).
_CLAIM = (
    _DROP
    + _TURN
    + handover.CLAIM_CHECK
    + """
local function run()
local ARGV = cjson.decode(ARGV[1])
local key = KEYS[1]
local now = tonumber(ARGV[1])
local rec = redis.call('HGETALL', key)
if ARGV[11] ~= '' then
  local got = turn(KEYS[2], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[11]), tonumber(ARGV[12]))
  if got ~= 1 then return {got, rec} end
end
local remote = remote_waiter(key, ARGV[14], ARGV[2], ARGV[3], ARGV[4], ARGV[13])
if remote > 0 then return {remote, rec} end
if redis.call('HEXISTS', key, 'callback') == 0 then return {0, rec} end
local holder = redis.call('HGET', key, 'claim')
if holder and holder == ARGV[6] then return {1, rec} end
local live = alive(key, now)
local dl = redis.call('HGET', key, 'deadline')
if not live and dl and tonumber(dl) <= now then drop(key); return {2, rec} end
local acc = redis.call('HGET', key, 'accepts') or ',message,'
local takes = string.find(acc, ',' .. ARGV[2] .. ',', 1, true)
if not takes and ARGV[2] == 'callback_query' then
  for prefix in string.gmatch(acc, ',callback_query=([^,]*)') do
    if string.sub(ARGV[4], 1, #prefix) == prefix then takes = true end
  end
end
if not takes then return {3, rec} end
if ARGV[3] == '1' and not string.find(acc, ',command,', 1, true) then return {3, rec} end
local uid = tonumber(ARGV[7])
if uid then
  local seq = tonumber(redis.call('HGET', key, 'seq') or '')
  if seq and uid <= seq then return {6, rec} end
end
-- order only while other workers are alive (alone, the gate of this process orders updates),
-- and not under a turn (it already orders every update of the conversation)
if uid and ARGV[11] == '' and tonumber(ARGV[8]) > 0 and tonumber(ARGV[10]) > 1 then
  -- arrivals are timed by the server's clock: one clock for every worker (and real time even
  -- under a test's fake clock)
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local window, horizon = tonumber(ARGV[8]), tonumber(ARGV[9])
  local kept, mine, lower = {}, nil, false
  for id, at in string.gmatch(redis.call('HGET', key, 'q') or '', '(%d+):([^,]+),') do
    local i, a = tonumber(id), tonumber(at)
    if i == uid then
      mine = a
    elseif a > now - horizon then  -- an entry whose worker died is forgotten
      if i < uid then lower = true end
      kept[#kept + 1] = id .. ':' .. at .. ','
    end
  end
  local waiting = live or lower or (mine or now) > now - window
  if waiting then kept[#kept + 1] = uid .. ':' .. string.format('%.6f', mine or now) .. ',' end
  if #kept > 0 then redis.call('HSET', key, 'q', table.concat(kept))
  else redis.call('HDEL', key, 'q') end
  if live or lower then return {5, rec} end
  if waiting then return {7, rec} end
elseif live then
  return {5, rec}
end
if string.find(acc, ',filter,', 1, true) then return {4, rec} end
redis.call('HSET', key, 'claim', ARGV[6])
if ARGV[5] ~= '' then redis.call('HSET', key, 'busy', ARGV[5]) end
if uid then redis.call('HSET', key, 'inflight', ARGV[7])
else redis.call('HDEL', key, 'inflight') end
return {1, rec}
end
return cjson.encode(run())
"""
)

# KEYS[1]=key; ARGV: token, lease ('' = none), owner ('' = expire: remove the step), now,
# update_id ('' = none)
_CLAIM_TOKEN = (
    _DROP
    + """
local key = KEYS[1]
if redis.call('HEXISTS', key, 'callback') == 0 then return false end
if redis.call('HGET', key, 'token') ~= ARGV[1] then return false end
if alive(key, tonumber(ARGV[4])) then return false end
local rec = redis.call('HGETALL', key)
if ARGV[3] == '' then
  drop(key)
else
  redis.call('HSET', key, 'claim', ARGV[3])
  if ARGV[2] ~= '' then redis.call('HSET', key, 'busy', ARGV[2]) end
  if ARGV[5] ~= '' then redis.call('HSET', key, 'inflight', ARGV[5])
  else redis.call('HDEL', key, 'inflight') end
end
return cjson.encode(rec)
"""
)

# KEYS[1]=a conversation's turn; ARGV: owner, update_id ('' = none), window, lease (seconds)
_TAKE_TURN = (
    _TURN
    + """
return turn(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)

# KEYS[1]=a conversation's turn; ARGV[1]=owner, ARGV[2]=lease (seconds from now, server time)
_RENEW_TURN = """
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then return 0 end
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], 'until', string.format('%.6f', now + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 2000))
return 1
"""

# KEYS[1]=a conversation's turn; ARGV[1]=owner
_LEAVE_TURN = """
if redis.call('HGET', KEYS[1], 'run') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'run', 'until')
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS[1]=key; ARGV[1]=owner, ARGV[2]=new lease
_RENEW = """
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'busy', ARGV[2])
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _chat_id(raw: str) -> int | str:
    """A stored ``chat_id`` (JSON): nearly always an int, which ``int`` reads 5× faster."""
    try:
        return int(raw)
    except ValueError:
        value: int | str = json.loads(raw)
        return value


#: a record's plain fields: hash field -> (StateContext attribute, how the value is read;
#: ``None``: the text itself)
_PLAIN: dict[str, tuple[str, Callable[[str], Any] | None]] = {
    "state": ("current_state", None),
    "callback": ("callback", None),
    "chat_id": ("chat_id", _chat_id),
    "kwargs": ("kwargs", json.loads),
    "deadline": ("deadline", float),
    "on_timeout": ("on_timeout", None),
    "token": ("token", None),
    "accepts": ("accepts", None),
    "busy": ("busy", float),
    "claim": ("claim", None),
    "seq": ("seq", int),
    "inflight": ("inflight", int),
}


def _decode(raw_record: Any) -> StateContext | None:
    """A record from a hash: a mapping (``HGETALL``; bytes, or text with ``decode_responses``)
    or the flat list of names and values of a script's JSON reply (text)."""
    if not raw_record:
        return None
    if isinstance(raw_record, dict):
        pairs: Iterable[tuple[Any, Any]] = (
            (_text(name), _text(value)) for name, value in raw_record.items()
        )
    else:
        flat = iter(raw_record)
        pairs = zip(flat, flat, strict=False)  # a hash lists names and values in pairs
    record = StateContext()
    order: list[str] | None = None
    kept = False
    plain = _PLAIN
    for name, raw in pairs:
        if name[:2] == "d:":
            record.data[name[2:]] = json.loads(raw)
        elif name[:2] == "k:":
            record.kwargs[name[2:]] = json.loads(raw)
        elif name in plain:
            attribute, read = plain[name]
            setattr(record, attribute, raw if read is None else read(raw))
        elif name == "order":
            order = raw.split("\0")[:-1]
        elif name in handover.FIELDS:  # a wait_for's registration, not part of the record
            continue
        kept = True
    if not kept:
        return None
    # a small hash (listpack) lists its fields in insertion order already: no sort then
    if order and len(record.data) > 1 and list(record.data) != order:
        ranked = {name: i for i, name in enumerate(order)}
        record.data = dict(sorted(record.data.items(), key=lambda kv: ranked.get(kv[0], 1 << 30)))
    return record


#: the arguments of the write and claim scripts, as their ARGV[1] (see the scripts above)
_pack = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _reply(raw: Any) -> Any:
    """A script's JSON reply (see the scripts above), parsed."""
    return json.loads(raw)


#: a value as stored: compact JSON (one encoder: ``json.dumps`` with options builds one per call)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _encoded(value: Any, where: Any) -> str:
    """``value`` (passed by `check_patch`) as stored; what JSON cannot write after all (an
    int too long for text) raises the `TypeError` that names where it is."""
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        _unencodable(value, where, exc)


def _utf8(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _name_size(name: str) -> int:
    """UTF-8 bytes of ``"name":`` in compact JSON (a plain name: its length and three)."""
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return len(name) + 3
    return _utf8(_dumps(name)) + 1


def _check_pool_options(
    max_connections: object, pool_timeout: object, socket_timeout: object
) -> None:
    """Refuse pool options that redis-py would take and fail on later, inside an update.

    Raises:
        TypeError, ValueError: naming the option and the value given.
    """
    count_option("RedisStateStorage: max_connections", max_connections)
    seconds_option("RedisStateStorage: pool_timeout", pool_timeout)
    seconds_option("RedisStateStorage: socket_timeout", socket_timeout)


class RedisStateStorage(RedisDeadlines, BaseStorage):
    """Storage in Redis: use it when conversations must survive restarts and be shared by
    several worker processes.

    Args:
        redis: a ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster`` client, or
            a URL (``redis://localhost:6379/0``).
        ex: default time to live of a record (seconds or ``timedelta``), refreshed on write.
        prefix: prepended to every key, so the bot's own keys are never touched.
        max_connections: with a URL, the size of the connection pool. A burst of updates
            beyond it waits for a free connection (up to ``pool_timeout`` seconds) instead
            of failing. A client passed in is used as given: size its pool yourself.
        pool_timeout: with a URL, seconds an update may wait for a free connection.
        socket_timeout: with a URL, seconds before a frozen Redis fails the call (connect and
            read), so an update fails cleanly instead of hanging.
        max_record_bytes: the most bytes of JSON a record's data and kwargs may hold
            (``None``: no limit); a merge is measured against what is stored, in the write
            script: see [`BaseStorage`][aiostep.BaseStorage].
        cluster: with a URL, connect to a Redis Cluster through that node
            (``redis.asyncio.cluster.RedisCluster.from_url``; redis-py has no cluster URL
            scheme). Every key of a conversation is in one hash slot.
        order_updates: handle every update of a conversation one at a time, in ``update_id``
            order, across all the workers on this Redis (not only the updates a step takes):
            each update takes the conversation's turn in its routing read and gives it back
            after its handler, one more round trip per update. A worker that dies holding the
            turn blocks the conversation for at most ``step_lease`` (see
            [`Listen`][aiostep.Listen]).
    """

    persistent = True
    shared = True

    def __init__(
        self,
        redis: Redis | RedisCluster | str,
        ex: ExpiryT = None,
        *,
        prefix: str = "aiostep:",
        max_connections: int = 100,
        pool_timeout: float = 30.0,
        socket_timeout: float = 5.0,
        max_record_bytes: int | None = MAX_RECORD_BYTES,
        cluster: bool = False,
        order_updates: bool = False,
    ) -> None:
        if not isinstance(redis, (str, Redis, RedisCluster)):
            kind = type(redis)
            raise TypeError(
                "RedisStateStorage needs a redis.asyncio.Redis or "
                "redis.asyncio.cluster.RedisCluster client, or a redis:// URL; got "
                f"{kind.__module__}.{kind.__qualname__}: {redis!r:.80} (the synchronous "
                "redis.Redis cannot be awaited: build the client from redis.asyncio)"
            )
        _check_pool_options(max_connections, pool_timeout, socket_timeout)
        super().__init__(ex, max_record_bytes=max_record_bytes)
        self._owns_client = isinstance(redis, str)
        self.order_updates = order_updates
        self.redis: Redis | RedisCluster
        #: True on a Redis Cluster (a ``RedisCluster`` client, or a URL with ``cluster``)
        self.cluster = isinstance(redis, RedisCluster) or (isinstance(redis, str) and cluster)
        #: a cluster client not yet initialized by this storage (see ``_connect``)
        self._unready = self.cluster
        #: the pool the scripts go through directly (``redis_client.execute``): only that of
        #: the client this storage built, whose pool and connections it knows
        self._pool: QuickBlockingPool | None = None
        if isinstance(redis, str) and cluster:
            # a cluster client keeps a pool per node; it finds the other nodes from this one
            self.redis = RedisCluster.from_url(
                redis,
                max_connections=max_connections,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
            )
        elif isinstance(redis, str):
            # redis-py's default pool raises MaxConnectionsError past 100 connections at once,
            # dropping the update; a blocking pool makes a burst wait for a free connection
            # (one without redis-py's per-command costs of blocking and timeouts: see
            # redis_client.py).
            self.redis = client_from_url(
                redis,
                max_connections=max_connections,
                pool_timeout=pool_timeout,
                socket_timeout=socket_timeout,
            )
            pool = self.redis.connection_pool
            self._pool = pool if isinstance(pool, QuickBlockingPool) else None
        else:
            self.redis = redis
        _companion(prefix + "0", "")  # a prefix whose braces would split a conversation's slot
        self.prefix = prefix
        #: seconds between this worker's announcements (see
        #: [`peers`][aiostep.storage.RedisStateStorage.peers])
        self.heartbeat = 1.0
        self._worker = secrets.token_hex(8)
        self._peers = 1
        self._beat: asyncio.Task[None] | None = None
        #: the workers alive at the last beat, and those seen alive once that stopped beating
        #: since (with when this worker noticed, to forget them after a while)
        self._live: frozenset[str] = frozenset((self._worker,))
        self._dead: dict[str, float] = {}
        #: ``_dead`` as the claim script takes it: ",a,b," ('' when none)
        self._dead_text = ""
        self._write_script = self.redis.register_script(_WRITE)
        self._claim_script = self.redis.register_script(_CLAIM)
        self._claim_token_script = self.redis.register_script(_CLAIM_TOKEN)
        self._renew_script = self.redis.register_script(_RENEW)
        self._take_turn_script = self.redis.register_script(_TAKE_TURN)
        self._renew_turn_script = self.redis.register_script(_RENEW_TURN)
        self._leave_turn_script = self.redis.register_script(_LEAVE_TURN)
        #: how a ``wait_for`` parked in this worker gets answers other workers receive
        self.handover: handover.RedisHandover = handover.RedisHandover(self)

    @property
    def cache(self) -> Redis | RedisCluster:
        """The Redis client (the seed called it ``cache``)."""
        return self.redis

    def _k(self, key: StorageKey) -> str:
        return self.prefix + _key(key)

    async def read(self, key: StorageKey) -> StateContext | None:
        """The record at ``key``, or ``None`` (one ``HGETALL``)."""
        if self._unready:
            await self._connect()
        with self._reachable():
            return _decode(await self.redis.hgetall(self._k(key)))

    async def _write(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET, blind: bool = False
    ) -> StateContext | None:
        """Apply ``patch`` atomically in one script call; return the record as it was (with
        ``blind``: ``None``, and the script does not send it back)."""
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
        size = 0  # of the data and kwargs the patch writes, as compact JSON (patch_size)
        if patch.kwargs is not UNSET:
            # one field per item ("k:name"), as data has: short values keep a small hash in
            # Redis' compact encoding, which one value over 64 bytes would end. Deleting
            # "kwargs" deletes every "k:" field too (the write script).
            delete.append("kwargs")
            for name, value in patch.kwargs.items():
                encoded = _encoded(value, ("kwargs", name))
                pairs.extend(("k:" + name, encoded))
                size += _utf8(encoded) + _name_size(name)
            if patch.kwargs:
                size += len(patch.kwargs) + 1  # its braces and commas
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
            encoded = _encoded(value, ("data", name))
            pairs.extend(("d:" + name, encoded))
            size += _utf8(encoded) + _name_size(name)
        if items:
            size += len(items) + 1  # a dict's braces and the commas between its items
        limit_bytes = self.max_record_bytes
        if limit_bytes is not None and size > limit_bytes:
            if patch.data is not UNSET and patch.data_update is not UNSET:
                # both (no caller of ours gives both): measured as two dicts, as patch_size does
                size = patch_size(patch)
            if size > limit_bytes:
                raise RecordTooLargeError(
                    _key(key), size, limit_bytes, "the data and kwargs it writes"
                )
        ttl = self._ex(ex)
        ttl_ms = "" if ttl is None else str(max(1, round(ttl * 1000)))
        owner = "" if patch.owner is UNSET else patch.owner
        # write() measured what the patch gives; a merge into what is stored is measured there
        merges = (
            patch.data is UNSET and (patch.data_update is not UNSET or patch.kwargs is not UNSET)
        ) or (patch.kwargs is UNSET and patch.data is not UNSET)
        limit = "" if self.max_record_bytes is None or not merges else str(self.max_record_bytes)
        args = [
            _pack(
                [ttl_ms, "1" if replace else "0", owner, limit, str(len(delete)), *delete, *pairs]
            )
        ]
        if blind:
            args.append("1")
        if patch.deadline is not UNSET and patch.deadline is not None:
            ok, result = await self._write_with_deadline(key, args, patch.deadline)
        else:
            ok, result = _reply(await self._call(self._write_script, key, args))
        if ok == 0:
            from aiostep.exceptions import ClaimLostError

            raise ClaimLostError(_key(key), owner, result or None)
        if ok == 2:
            assert self.max_record_bytes is not None
            raise RecordTooLargeError(
                _key(key),
                int(result),
                self.max_record_bytes,
                "its data and kwargs, with this update merged in",
            )
        return None if blind else _decode(result)

    def _refuse_oversize(self, key: StorageKey, patch: Patch) -> None:
        """Nothing here: `_write` measures the JSON it encodes for the script (once)."""

    async def _write_blind(
        self, key: StorageKey, patch: Patch, *, ex: ExpiryT | _Unset = UNSET
    ) -> StateContext | None:
        """`_write` without the record as it was: the script sends back only its status."""
        return await self._write(key, patch, ex=ex, blind=True)

    async def _remove(self, key: StorageKey) -> StateContext | None:
        """Delete the record at ``key``; return it (one ``MULTI``: ``HGETALL`` + ``DEL``)."""
        if self._unready:
            await self._connect()
        with self._reachable():
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
        owner: str | None = None,
        update_id: int | None = None,
        window: float = 0.0,
        turn: bool = False,
    ) -> Claim:
        """Claim the pending step for an update (one script call); with ``turn``, take the
        conversation's turn in the same call."""
        owner = owner or new_owner()
        horizon = max(window * 4, (lease - now) if lease is not None else 0.0, 1.0)
        if window > 0 and self._beat is None:
            await self.peers()  # announce this worker before its first ordered claim
        # the arrival window matters only while other workers may hold earlier updates
        turn_window = (repr(window) if self._peers > 1 else "0") if turn else ""
        # the turn's key only when the script takes it: no extra work on the common path
        more = (_companion(self._k(key), ":turn"),) if turn else ()
        status, flat = _reply(
            await self._call(
                self._claim_script,
                key,
                [
                    _pack(
                        [
                            repr(now),
                            kind,
                            "1" if is_command else "0",
                            callback_data or "",
                            "" if lease is None else repr(lease),
                            owner,
                            "" if update_id is None else str(update_id),
                            repr(window),
                            repr(horizon),
                            str(self._peers),
                            turn_window,
                            # the turn's lease: the step's (Listen's step_lease)
                            (repr(lease - now) if lease is not None else "5.0") if turn else "",
                            self._worker,
                            self._dead_text,
                        ]
                    )
                ],
                *more,
            )
        )
        if status == ClaimStatus.WAITER:
            waiter = dict(zip(flat[::2], flat[1::2], strict=True)).get("waiter", "")
            return Claim(ClaimStatus.WAITER, _decode(flat), owner, waiter)
        return Claim(ClaimStatus(status), _decode(flat), owner)

    async def _claim_token(
        self,
        key: StorageKey,
        token: str,
        lease: float | None,
        owner: str | None,
        update_id: int | None,
    ) -> StateContext | None:
        """Claim (or, without ``owner``, remove) the pending step if it is still registration
        ``token`` and no live claim runs it (one script call)."""
        flat = await self._call(
            self._claim_token_script,
            key,
            [
                token,
                "" if lease is None else repr(lease),
                owner or "",
                repr(get_clock().now()),
                "" if update_id is None else str(update_id),
            ],
        )
        return _decode(_reply(flat)) if flat else None

    async def renew(self, key: StorageKey, owner: str, lease: float) -> bool:
        """Extend claim ``owner``'s lease while its step runs (one script call)."""
        return bool(await self._call(self._renew_script, key, [owner, repr(lease)]))

    async def take_turn(
        self, key: StorageKey, owner: str, update_id: int | None, window: float, lease: float
    ) -> ClaimStatus:
        """Take the turn of conversation ``key`` (one script call; see
        [`BaseStorage.take_turn`][aiostep.BaseStorage.take_turn])."""
        if window > 0 and self._beat is None:
            await self.peers()
        with self._reachable():
            status = await self._take_turn_script(
                keys=[_companion(self._k(key), ":turn")],
                args=[
                    owner,
                    "" if update_id is None else str(update_id),
                    repr(window) if self._peers > 1 else "0",
                    repr(lease),
                ],
            )
        return ClaimStatus(int(status))

    async def renew_turn(self, key: StorageKey, owner: str, lease: float) -> bool:
        """Extend ``owner``'s turn of ``key`` by ``lease`` seconds (one script call)."""
        with self._reachable():
            return bool(
                await self._renew_turn_script(
                    keys=[_companion(self._k(key), ":turn")], args=[owner, repr(lease)]
                )
            )

    async def leave_turn(self, key: StorageKey, owner: str) -> None:
        """End ``owner``'s turn of ``key`` (one script call)."""
        with self._reachable():
            await self._leave_turn_script(keys=[_companion(self._k(key), ":turn")], args=[owner])

    async def _write_with_deadline(
        self, key: StorageKey, args: list[str], deadline: float
    ) -> tuple[Any, Any]:
        """The write script and the deadline's entry in the index, in one pipeline (one round
        trip; see `aiostep.storage.redis_deadlines`). A write the script refuses leaves an
        entry that fires nothing: the record is read before anything fires.

        On a Redis Cluster the record and the index are in different slots, and redis-py's
        cluster pipeline refuses scripts: the two commands go at once instead (one round
        trip's wait, to two nodes)."""
        if self.cluster:
            if self._unready:
                await self._connect()
            with self._reachable():
                written, _ = await asyncio.gather(
                    self._call(self._write_script, key, args),
                    self._deadline_add(_key(key), deadline),
                )
            ok, result = _reply(written)
            return ok, result
        with self._reachable():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.evalsha(self._write_script.sha, 1, self._k(key), *args)
                self._deadline_pipeline_add(pipe, _key(key), deadline)
                written, _ = await pipe.execute(raise_on_error=False)
        if isinstance(written, NoScriptError):  # a fresh (or flushed) Redis: load it once
            written = await self._call(self._write_script, key, args)
        elif isinstance(written, Exception):
            raise written
        ok, result = _reply(written)
        return ok, result

    async def _call(self, script: Any, key: StorageKey, args: list[str], *more: str) -> Any:
        """Run a script on ``key`` (and the raw keys ``more``): one round trip (an
        ``EVALSHA``; a Redis that lacks the script, fresh or flushed, gets it loaded first).

        The hot path of every update: on the client this storage built from a URL it goes
        through `redis_client.execute`, else through ``execute_command``; redis-py's
        ``Script.__call__`` and a context manager per call are left out (plain ``try``)."""
        if self._unready:
            await self._connect()
        command = ("EVALSHA", script.sha, 1 + len(more), self._k(key), *more, *args)
        pool = self._pool
        try:
            try:
                if pool is not None:
                    return await execute(pool, *command)
                return await self.redis.execute_command(*command)
            except NoScriptError:
                script.sha = await self.redis.script_load(script.script)
                return await self.redis.execute_command("EVALSHA", script.sha, *command[2:])
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from exc

    async def _connect(self) -> None:
        """Initialize a cluster client (its slot map) before this storage's first command.

        redis-py 8.1's ``RedisCluster``, given many commands at once before it has
        initialized, can hand one of them a connection that another closes meanwhile
        (``AttributeError: 'NoneType' object has no attribute 'writelines'``); a burst of
        updates right after startup is exactly that. Initialized first, it does not.
        """
        assert isinstance(self.redis, RedisCluster)
        with self._reachable():
            await self.redis.initialize()
        self._unready = False

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn the client's connection errors and time-outs into a
        `StorageUnavailableError` that names this Redis."""
        try:
            yield
        except _UNREACHABLE as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"Redis at {self._where()} is unavailable ({type(exc).__name__}: {exc}); "
            "this call failed; stored conversations keep their progress"
        )

    def _where(self) -> str:
        if isinstance(self.redis, RedisCluster):
            nodes = self.redis.get_nodes() or self.redis.startup_nodes
            return "Redis Cluster " + ", ".join(sorted(node.name for node in nodes))
        pool = self.redis.connection_pool
        service = getattr(pool, "service_name", None)
        if isinstance(service, str):  # a Sentinel-managed master
            return f"Sentinel service {service!r}"
        kwargs = pool.connection_kwargs
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    async def peers(self, *, fresh: bool = False) -> int:
        """How many workers use this Redis (under this prefix) now, this one included.

        Each storage object announces itself every `heartbeat` seconds in one sorted set
        (one round trip a beat, none per update); a worker unseen for three beats is gone. The
        first call waits for the first beat, later ones answer from the last beat (``fresh``:
        announce and count now). Claims use the last beat's count (the set is not read per
        update, and on a Redis Cluster it lives in another slot than the conversation), so a
        worker learns of a newly started one within one beat.
        """
        if fresh and self._beat is not None:
            self._peers = await self._announce()
        if self._beat is None:
            self._peers = await self._announce()
            self._beat = asyncio.get_running_loop().create_task(self._beating())
        return self._peers

    async def _announce(self) -> int:
        now = time.time()  # real time, even under a test's fake clock: it is about processes
        key = self.prefix + "workers"
        if self._unready:
            await self._connect()
        with self._reachable():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {self._worker: now})
                pipe.zremrangebyscore(key, "-inf", now - 3 * self.heartbeat)
                pipe.zrange(key, 0, -1)
                pipe.expire(key, max(1, math.ceil(6 * self.heartbeat)))
                results = await pipe.execute()
        self._note_live(frozenset(_text(worker) for worker in results[2]), now)
        return len(self._live)

    def _note_live(self, live: frozenset[str], now: float) -> None:
        """Keep the beat's live workers, and which of those seen before stopped beating: a
        ``wait_for`` registered by one of them is removed by the next claim that meets it."""
        dead = self._dead
        for worker in self._live - live:
            dead[worker] = now
        for worker in live & dead.keys():
            del dead[worker]  # beating again (it had stalled for three beats)
        # forgotten after a while: a registration of a long-gone worker is then removed by an
        # offer nobody takes (redis_handover.py), as it is for a worker this one never saw
        for worker in [w for w, since in dead.items() if since < now - 600]:
            del dead[worker]
        self._live = live
        self._dead_text = "," + ",".join(sorted(dead)) + "," if dead else ""

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                self._peers = await self._announce()
            except StorageUnavailableError as exc:
                logger.warning("%s", exc)

    async def close(self) -> None:
        """Stop announcing this worker, and close the client if this storage created it."""
        await self.handover.close()
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
            with contextlib.suppress(Exception):
                await self.redis.zrem(self.prefix + "workers", self._worker)
        if self._owns_client:
            await self.redis.aclose()
