"""``wait_for`` across worker processes on Redis.

A worker that parks a ``wait_for`` registers it in the conversation's hash (the record every
update's claim script reads anyway, so an update with nothing pending pays no extra round
trip): ``waiter`` = ``"<worker>:<token>"``, ``waiter_accepts`` = the update kinds it takes.
The claim script of another worker sees it (``ClaimStatus.WAITER``), and that worker offers
the update: ``waiter_offer`` = ``"<offer id> <reply channel>"`` is set and the update JSON is
published on the waiting worker's channel (``{prefix}handover:<worker>``; one subscription per
worker). The waiting worker accepts it with a script that removes the registration only if
this offer still holds it (so one waiter takes one update, and an update is either handed over
or handled where it arrived, never both), marks the offer accepted and publishes the
acknowledgement. An offer nobody receives (the worker is gone), a waiter whose worker's
heartbeat stopped, and an offer unacknowledged within ``ack_timeout`` leave the update to the
worker that received it.

Redis Cluster: the registration and the offer's outcome key live in the conversation's slot
(the outcome key is a companion of the conversation's key, ``redis_keys.companion``), and every
script names all its keys in ``KEYS``; whether a waiting worker still beats comes from the
heartbeat of the worker that runs the script (passed as an argument), never from the heartbeat
set, which lives in another slot. The offer and acknowledgements use classic ``PUBLISH`` from
inside the scripts, which a cluster broadcasts to every node, so a subscriber connected to any
node receives them. On a cluster ``PUBLISH`` counts only the subscribers of the node it ran on,
so "nobody received the offer" is not a sign of a dead worker there: the offer then waits for
``ack_timeout``, and the heartbeat decides. Sharded pub/sub (``SPUBLISH``, Redis 7) cannot be
used from these scripts: a worker's channel hashes to another slot than the conversation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiogram.types import Update

from aiostep.calling import check_filter
from aiostep.pending import Waiter
from aiostep.storage.redis_keys import companion

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

__all__ = ["HandoverHost", "RedisHandover"]


class HandoverHost(Protocol):
    """What `RedisHandover` uses of the `RedisStateStorage` it serves (which makes it): its
    client and key prefix, its script calls, and what it knows of the workers alive."""

    redis: Any
    prefix: str
    cluster: bool
    _unready: bool
    _worker: str
    _live: frozenset[str]

    def _k(self, key: Any) -> str: ...

    async def _call(self, script: Any, key: Any, args: list[str], *more: str) -> Any: ...

    async def _connect(self) -> None: ...

    def _reachable(self) -> AbstractContextManager[None]: ...

    async def peers(self, *, fresh: bool = False) -> int: ...


logger = logging.getLogger("aiostep")

# The check of the claim script (aiostep/storage/redis.py): 8 when a live waiter of another
# worker takes this update, 5 while it is being handed one, 0 otherwise. A waiter whose worker
# is in ``dead`` (",a,b,": the workers the claiming one saw stop beating, from its heartbeat:
# the script reads no key outside the conversation's slot) is removed.
CLAIM_CHECK = """
local function remote_waiter(key, dead, kind, is_command, cbdata, me)
  local w = redis.call('HGET', key, 'waiter')
  if not w then return 0 end
  local owner = string.match(w, '^([^:]*):')
  if owner == me then return 0 end
  local acc = redis.call('HGET', key, 'waiter_accepts') or ',message,'
  local takes = string.find(acc, ',' .. kind .. ',', 1, true)
  if not takes and kind == 'callback_query' then
    for prefix in string.gmatch(acc, ',callback_query=([^,]*)') do
      if string.sub(cbdata, 1, #prefix) == prefix then takes = true end
    end
  end
  if not takes then return 0 end
  if is_command == '1' and not string.find(acc, ',command,', 1, true) then return 0 end
  if dead ~= '' and string.find(dead, ',' .. owner .. ',', 1, true) then
    redis.call('HDEL', key, 'waiter', 'waiter_accepts', 'waiter_offer')
    return 0
  end
  if redis.call('HEXISTS', key, 'waiter_offer') == 1 then return 5 end
  return 8
end
"""

#: the hash fields of a registration (skipped when a record is decoded)
FIELDS = frozenset(("waiter", "waiter_accepts", "waiter_offer"))

# KEYS[1]=conversation; ARGV: "<worker>:<token>", accepts
_PARK = """
redis.call('HSET', KEYS[1], 'waiter', ARGV[1], 'waiter_accepts', ARGV[2])
redis.call('HDEL', KEYS[1], 'waiter_offer')
return 1
"""

# KEYS[1]=conversation; ARGV: "<worker>:<token>". 0 while another worker offers it an update.
_TAKE = """
if redis.call('HGET', KEYS[1], 'waiter') ~= ARGV[1] then return 1 end
if redis.call('HEXISTS', KEYS[1], 'waiter_offer') == 1 then return 0 end
redis.call('HDEL', KEYS[1], 'waiter', 'waiter_accepts')
return 1
"""

# KEYS[1]=conversation; ARGV: "<worker>:<token>". An offer on its way is refused.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'waiter') ~= ARGV[1] then return 0 end
local offer = redis.call('HGET', KEYS[1], 'waiter_offer')
redis.call('HDEL', KEYS[1], 'waiter', 'waiter_accepts', 'waiter_offer')
if offer then
  local id, reply = string.match(offer, '^(%S+) (.*)$')
  redis.call('PUBLISH', reply, '{"o":"' .. id .. '","a":0}')
end
return 1
"""

# KEYS[1]=conversation; ARGV: "<worker>:<token>" as the claim saw it, offer id, reply channel,
# the waiter's channel, the offer's JSON, '1' on a Redis Cluster. -1: the registration changed
# meanwhile; 0: nobody listens on the waiter's channel (its worker is gone: the registration is
# removed); 1: sent. On a cluster PUBLISH counts only the subscribers of this node, so 0 there
# says nothing: the offer waits for its acknowledgement (or ``ack_timeout``).
_OFFER = """
if redis.call('HGET', KEYS[1], 'waiter') ~= ARGV[1] then return -1 end
if redis.call('HEXISTS', KEYS[1], 'waiter_offer') == 1 then return -1 end
redis.call('HSET', KEYS[1], 'waiter_offer', ARGV[2] .. ' ' .. ARGV[3])
if redis.call('PUBLISH', ARGV[4], ARGV[5]) == 0 and ARGV[6] ~= '1' then
  redis.call('HDEL', KEYS[1], 'waiter', 'waiter_accepts', 'waiter_offer')
  return 0
end
return 1
"""

# KEYS[1]=conversation, KEYS[2]=the offer's outcome; ARGV: "<worker>:<token>", offer id.
_ACCEPT = """
local offer = redis.call('HGET', KEYS[1], 'waiter_offer')
if redis.call('HGET', KEYS[1], 'waiter') ~= ARGV[1] or not offer then return 0 end
local id, reply = string.match(offer, '^(%S+) (.*)$')
if id ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], 'waiter', 'waiter_accepts', 'waiter_offer')
redis.call('SET', KEYS[2], '1', 'PX', 60000)
redis.call('PUBLISH', reply, '{"o":"' .. id .. '","a":1}')
return 1
"""

# KEYS[1]=conversation; ARGV: "<worker>:<token>", offer id, keep ('1': the waiter goes on
# waiting, '0': it is gone). The offering worker routes the update itself.
_DECLINE = """
local offer = redis.call('HGET', KEYS[1], 'waiter_offer')
if redis.call('HGET', KEYS[1], 'waiter') ~= ARGV[1] or not offer then return 0 end
local id, reply = string.match(offer, '^(%S+) (.*)$')
if id ~= ARGV[2] then return 0 end
if ARGV[3] == '1' then redis.call('HDEL', KEYS[1], 'waiter_offer')
else redis.call('HDEL', KEYS[1], 'waiter', 'waiter_accepts', 'waiter_offer') end
redis.call('PUBLISH', reply, '{"o":"' .. id .. '","a":0}')
return 1
"""

# KEYS[1]=conversation, KEYS[2]=the offer's outcome; ARGV: offer id, the live workers
# (",a,b,", from a fresh heartbeat of the offering worker: the script reads no key outside the
# conversation's slot). 1: the waiter took the update after all; 0: withdrawn (the waiter stays
# registered while its worker beats).
_REVOKE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local offer = redis.call('HGET', KEYS[1], 'waiter_offer')
if offer and string.match(offer, '^(%S+) ') == ARGV[1] then
  local owner = string.match(redis.call('HGET', KEYS[1], 'waiter') or '', '^([^:]*):')
  if owner and string.find(ARGV[2], ',' .. owner .. ',', 1, true) then
    redis.call('HDEL', KEYS[1], 'waiter_offer')
  else
    redis.call('HDEL', KEYS[1], 'waiter', 'waiter_accepts', 'waiter_offer')
  end
end
return 0
"""


def _accepts(waiter: Waiter) -> str:
    text = "," + ",".join(waiter.updates) + ","
    return text + "command," if waiter.allow_commands else text


@dataclass(eq=False)
class _Registration:
    """A ``wait_for`` of this worker, as registered in Redis."""

    handover: RedisHandover
    key: str
    value: str  # "<worker>:<token>"
    waiter: Waiter = field(repr=False)
    bot: Any = field(repr=False)
    done: bool = False

    async def take(self) -> bool:
        """Claim the waiter for an update this worker received (one round trip)."""
        if self.done:
            return True
        if not await self.handover._run(self.handover._take, [self.key], [self.value]):
            return False
        self._forget()
        return True

    async def release(self) -> None:
        """Remove the registration (one round trip; none once taken or handed over)."""
        if self.done:
            return
        self._forget()
        await self.handover._run(self.handover._release, [self.key], [self.value])

    def _forget(self) -> None:
        self.done = True
        self.handover._parked.pop(self.value, None)


class RedisHandover:
    """The [`WaiterHandover`][aiostep.handover.WaiterHandover] of a
    [`RedisStateStorage`][aiostep.storage.RedisStateStorage]: registrations in the conversation
    hashes, offers and acknowledgements over Redis pub/sub, one subscription per worker (opened
    at the first ``wait_for`` or offer).

    Args:
        storage: the storage whose Redis, prefix and worker heartbeat it uses.
        ack_timeout: seconds an offering worker waits for the waiting worker to take the
            update; past it the offer is withdrawn and the update handled where it arrived.
    """

    def __init__(self, storage: HandoverHost, *, ack_timeout: float = 5.0) -> None:
        self.storage = storage
        self.ack_timeout = ack_timeout
        self.channel = self.channel_of(storage._worker)
        self._parked: dict[str, _Registration] = {}
        self._offers: dict[str, asyncio.Future[bool]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        register = storage.redis.register_script
        self._park = register(_PARK)
        self._take = register(_TAKE)
        self._release = register(_RELEASE)
        self._offer = register(_OFFER)
        self._accept = register(_ACCEPT)
        self._decline = register(_DECLINE)
        self._revoke = register(_REVOKE)

    def channel_of(self, worker: str) -> str:
        """The pub/sub channel on which ``worker`` receives offers and acknowledgements."""
        return f"{self.storage.prefix}handover:{worker}"

    def _outcome_key(self, key: str, offer: str) -> str:
        # a companion of the conversation's key: in its Redis Cluster slot
        return companion(self.storage._k(key), f":handover:{offer}")

    async def _run(self, script: Any, keys: list[str], args: list[str]) -> Any:
        """One script call; ``keys[0]`` is a storage key, the others raw Redis keys."""
        return await self.storage._call(script, keys[0], args, *keys[1:])

    async def _listen(self) -> None:
        """Subscribe to this worker's channel once (the subscription outlives every waiter)."""
        if self._reader is not None:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._reader is not None:
                return
            if self.storage._unready:
                await self.storage._connect()
            pubsub = self.storage.redis.pubsub(ignore_subscribe_messages=True)
            with self.storage._reachable():
                await pubsub.subscribe(self.channel)
            self._pubsub = pubsub
            self._reader = asyncio.get_running_loop().create_task(self._read(pubsub))

    async def park(self, key: str, waiter: Waiter, bot: Any) -> _Registration:
        """Register ``waiter`` under storage key ``key`` (one round trip; the first one also
        subscribes and starts the worker's heartbeat)."""
        await self._listen()
        await self.storage.peers()  # beating: other workers know we are alive
        value = f"{self.storage._worker}:{secrets.token_hex(8)}"
        registration = _Registration(self, key, value, waiter, bot)
        self._parked[value] = registration
        try:
            await self._run(self._park, [key], [value, _accepts(waiter)])
        except BaseException:
            registration._forget()
            raise
        return registration

    async def offer(self, key: str, waiter: str, update: Update) -> bool:
        """Hand ``update`` to the waiter registered as ``waiter`` in another worker."""
        await self._listen()
        offer = secrets.token_hex(8)
        payload = json.dumps(
            {
                "o": offer,
                "w": waiter,
                "k": key,
                "u": update.model_dump(mode="json", exclude_unset=True, by_alias=True),
            },
            separators=(",", ":"),
        )
        owner = waiter.split(":", 1)[0]
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._offers[offer] = answer
        try:
            sent = await self._run(
                self._offer,
                [key],
                [
                    waiter,
                    offer,
                    self.channel,
                    self.channel_of(owner),
                    payload,
                    "1" if self.storage.cluster else "",
                ],
            )
            if int(sent) != 1:
                return False
            try:
                return await asyncio.wait_for(asyncio.shield(answer), self.ack_timeout)
            except TimeoutError:
                await self.storage.peers(fresh=True)  # is the waiting worker still beating?
                taken = await self._run(
                    self._revoke,
                    [key, self._outcome_key(key, offer)],
                    [offer, "," + ",".join(sorted(self.storage._live)) + ","],
                )
                logger.warning(
                    "conversation %s: the worker waiting for this update did not take it within "
                    "%s s; %s",
                    key,
                    self.ack_timeout,
                    "it took it after all" if taken else "it is handled here",
                )
                return bool(taken)
        finally:
            self._offers.pop(offer, None)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the connection dropped: redis-py reconnects and resubscribes
                logger.warning("aiostep handover channel %s: %s", self.channel, exc)
                await asyncio.sleep(0.1)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                body = json.loads(message["data"])
            except ValueError:
                logger.error("aiostep handover channel %s: unreadable message", self.channel)
                continue
            if "u" in body:
                task = asyncio.get_running_loop().create_task(self._answer(body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                answer = self._offers.get(str(body.get("o")))
                if answer is not None and not answer.done():
                    answer.set_result(bool(body.get("a")))

    async def _answer(self, body: dict[str, Any]) -> None:
        """An update offered to one of our waiters: take it if the waiter still waits."""
        value, offer, key = str(body["w"]), str(body["o"]), str(body["k"])
        try:
            registration = self._parked.get(value)
            waiter = None if registration is None else registration.waiter
            if registration is None or waiter is None or waiter.future.done():
                await self._run(self._decline, [key], [value, offer, "0"])
                return
            update = Update.model_validate(body["u"], context={"bot": registration.bot})
            event = update.event
            if waiter.filter is not None and not await check_filter(
                waiter.filter, event, {"bot": registration.bot, "event_update": update}
            ):
                await self._run(self._decline, [key], [value, offer, "1"])
                return
            taken = False
            waiter.accepting = True  # a timeout now waits for the outcome of the accept
            try:
                taken = bool(
                    await self._run(
                        self._accept, [key, self._outcome_key(key, offer)], [value, offer]
                    )
                )
            finally:
                waiter.accepting = False
                if not taken and waiter.deferred is not None:
                    waiter.fail(waiter.deferred)  # withdrawn meanwhile: the other worker routes it
            if taken:
                registration._forget()
                if waiter.future.done():  # its task was cancelled as the answer came in
                    logger.warning("conversation %s: an answer came as its wait was cancelled", key)
                else:
                    waiter.future.set_result(event)
        except Exception:
            logger.exception("conversation %s: could not take an update from another worker", key)

    async def close(self) -> None:
        """Stop listening (the storage is closing)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            except Exception as exc:
                logger.warning("aiostep handover channel %s: close: %s", self.channel, exc)
        for task in list(self._tasks):
            task.cancel()
