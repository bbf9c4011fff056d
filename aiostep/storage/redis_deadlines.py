"""Deadlines on Redis: a sorted set every worker sees, and a claim that hands each due
deadline to exactly one of them.

Keys (under the storage's prefix): ``deadlines`` (member: the record's storage key, score: when
its step is due) and ``{<prefix>deadlines}:firing`` (the members a worker took, scored by when
its lease on them runs out; hash-tagged into the slot of ``deadlines``, as the script that
moves members between them needs on a Redis Cluster). Taking due members moves them from one
set to the other in one script, so two workers scanning at the same moment never take the same
one; a member whose worker died while firing it is taken again once its lease has passed. These
sets are separate keys from the records, so their commands never share a script with a record's
(a Redis Cluster puts them in other slots); a deadline is added in the same pipeline as the
record's write (no extra round trip; on a cluster, whose pipeline refuses scripts, sent at
once beside it). The index is a hint: whoever takes a member reads the
record and fires only a step that is still due, through the same claim as an update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiostep.storage.base import StorageKey, _key
from aiostep.storage.redis_keys import companion

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisDeadlines"]

# KEYS[1]=deadlines, KEYS[2]=firing; ARGV: now, lease (epoch seconds), limit.
# Returns the earliest score left in either set after the take ("" when both are empty),
# then the members taken: due ones, and those whose firing worker's lease ran out.
_TAKE_DUE = """
local limit = tonumber(ARGV[3])
local taken, seen = {}, {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit)) do
  seen[m] = true
  taken[#taken + 1] = m
end
if #taken < limit then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit - #taken)
  for _, m in ipairs(due) do
    redis.call('ZREM', KEYS[1], m)
    if not seen[m] then taken[#taken + 1] = m end
  end
end
for _, m in ipairs(taken) do redis.call('ZADD', KEYS[2], ARGV[2], m) end
local earliest = ''
for _, key in ipairs(KEYS) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] and (earliest == '' or tonumber(first[2]) < tonumber(earliest)) then
    earliest = first[2]
  end
end
table.insert(taken, 1, earliest)
return taken
"""


class RedisDeadlines:
    """The deadline index of [`RedisStateStorage`][aiostep.storage.RedisStateStorage] (a mixin)."""

    redis: Redis | RedisCluster
    prefix: str
    _take_due_script: Any = None

    @property
    def deadlines_key(self) -> str:
        """The sorted set of pending deadlines."""
        return self.prefix + "deadlines"

    @property
    def firing_key(self) -> str:
        """The sorted set of deadlines being fired, scored by their worker's lease: a companion
        of `deadlines_key` (``{<prefix>deadlines}:firing``), in its Redis Cluster slot, since
        one script moves members between the two."""
        return companion(self.deadlines_key, ":firing")

    def _deadline_pipeline_add(self, pipe: Any, skey: str, deadline: float) -> None:
        pipe.zadd(self.deadlines_key, {skey: deadline})

    async def _deadline_add(self, skey: str, deadline: float) -> None:
        """Index a deadline on its own (one round trip): on a Redis Cluster, where it cannot
        share a pipeline with the record's write script."""
        await self.redis.zadd(self.deadlines_key, {skey: deadline})

    async def next_deadline(self) -> float | None:
        """The earliest pending deadline, or the earliest lease of a deadline being fired (it
        is taken again then, if its worker died); ``None`` when there is none (one round
        trip)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(self.deadlines_key, 0, 0, withscores=True)
            pipe.zrange(self.firing_key, 0, 0, withscores=True)
            pending, firing = await pipe.execute()
        scores = [float(score) for _, score in (*pending, *firing)]
        return min(scores) if scores else None

    async def due_deadlines(self, now: float, lease: float, limit: int = 100) -> list[str]:
        """Take due deadlines for this worker alone (one script call; see the module)."""
        return (await self.due_deadlines_and_next(now, lease, limit))[0]

    async def due_deadlines_and_next(
        self, now: float, lease: float, limit: int = 100
    ) -> tuple[list[str], float | None]:
        """Take due deadlines, and say the earliest one left: one script call, so a worker
        with nothing due looks at the deadlines in one round trip."""
        if self._take_due_script is None:
            self._take_due_script = self.redis.register_script(_TAKE_DUE)
        earliest, *taken = await self._take_due_script(
            keys=[self.deadlines_key, self.firing_key], args=[repr(now), repr(lease), str(limit)]
        )
        keys = [m.decode() if isinstance(m, bytes) else str(m) for m in taken]
        return keys, float(earliest) if earliest else None

    async def deadline_fired(self, key: StorageKey) -> None:
        """Forget a deadline this worker took and dealt with."""
        await self.redis.zrem(self.firing_key, _key(key))

    async def deadline_later(self, key: StorageKey, when: float) -> None:
        """Look at ``key`` again at ``when`` (its step was busy when it came due)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self.firing_key, _key(key))
            pipe.zadd(self.deadlines_key, {_key(key): when})
            await pipe.execute()
