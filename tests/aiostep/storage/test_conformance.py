"""One suite, run unchanged over every storage backend: they must behave the same."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aiostep.clock import set_clock
from aiostep.exceptions import ClaimLostError
from aiostep.storage.base import BaseStorage, ClaimStatus, ExpiryT, Patch, StateContext
from aiostep.storage.file import FileStateStorage
from aiostep.storage.memory import MemoryStateStorage

try:
    from aiostep.storage.redis import RedisStateStorage
except ImportError as exc:  # the Redis backend or the redis package is missing
    RedisStateStorage = None  # type: ignore[assignment,misc]
    REDIS_UNAVAILABLE = f"aiostep.storage.redis cannot be imported: {exc}"
else:
    REDIS_UNAVAILABLE = ""

BACKENDS = [
    "memory",
    "file",
    pytest.param(
        "redis", marks=pytest.mark.skipif(bool(REDIS_UNAVAILABLE), reason=REDIS_UNAVAILABLE)
    ),
    # the same storage through a cluster client on a real 3-master local Redis Cluster
    pytest.param(
        "redis-cluster",
        marks=pytest.mark.skipif(bool(REDIS_UNAVAILABLE), reason=REDIS_UNAVAILABLE),
    ),
]

KEY = 12345


class _Timer:
    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when, self.callback, self.args = when, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to (``advance``)."""

    def __init__(self, now: float) -> None:
        self._now = now
        self._timers: list[_Timer] = []

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _Timer:
        timer = _Timer(self._now + delay, callback, args)
        self._timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self._now += seconds
        due = [t for t in self._timers if t.when <= self._now and not t.cancelled]
        self._timers = [t for t in self._timers if t not in due and not t.cancelled]
        for timer in sorted(due, key=lambda t: t.when):
            timer.callback(*timer.args)


class Color(enum.Enum):
    RED = "red-value"


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    # Starts at the real time, so Redis (which expires keys on its own clock) agrees with it.
    clock = FakeClock(time.time())
    set_clock(clock)
    yield clock
    set_clock(None)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend the test runs on; parametrizes ``storage`` and ``make_storage``."""
    return str(request.param)


@pytest.fixture
async def make_storage(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, fake_clock: FakeClock
) -> AsyncIterator[Callable[..., BaseStorage]]:
    """A factory of fresh async storages of ``backend`` (``make(ex=...)``), closed afterwards."""
    redis_url = ""
    if backend == "redis":
        redis_url = str(request.getfixturevalue("redis_url"))
    elif backend == "redis-cluster":
        redis_url = str(request.getfixturevalue("redis_cluster_url"))
    created: list[BaseStorage] = []

    def make(ex: ExpiryT = None) -> BaseStorage:
        storage: BaseStorage
        if backend == "memory":
            storage = MemoryStateStorage(ex=ex).aio
        elif backend == "file":
            storage = FileStateStorage(tmp_path / f"journal-{len(created)}.jsonl", ex=ex)
        else:
            storage = RedisStateStorage(redis_url, ex=ex, cluster=backend == "redis-cluster")
        created.append(storage)
        return storage

    yield make
    for storage in created:
        await storage.close()


@pytest.fixture
def storage(make_storage: Callable[..., BaseStorage]) -> BaseStorage:
    """An async storage of each backend in turn, with no default expiry."""
    return make_storage()


@pytest.fixture
def advance(backend: str, fake_clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    """Let ``seconds`` pass: on the fake clock, and for real on Redis (its TTLs are real)."""

    async def advance(seconds: float) -> None:
        if backend.startswith("redis"):
            await asyncio.sleep(seconds)
        fake_clock.advance(seconds)

    return advance


def step_patch(now: float, *, accepts: str = ",message,", deadline: float | None = 60.0) -> Patch:
    """A pending step registration (with state and data beside it)."""
    return Patch(
        state="signup",
        chat_id=KEY,
        callback="signup.age",
        kwargs={"attempt": 1},
        deadline=None if deadline is None else now + deadline,
        token="t1",
        accepts=accepts,
        data={"name": "Ann"},
    )


# -- the seed API ----------------------------------------------------------------------------
async def test_set_state_stores_a_string_state(storage: BaseStorage) -> None:
    await storage.set_state(KEY, "awaiting_input")
    record = await storage.get_state(KEY)
    assert isinstance(record, StateContext)
    assert record.current_state == "awaiting_input"
    assert record.chat_id == KEY


async def test_set_state_stores_an_enum_by_name(storage: BaseStorage) -> None:
    await storage.set_state(KEY, Color.RED)
    assert (await storage.get_state(KEY)).current_state == "RED"


async def test_set_state_keeps_data(storage: BaseStorage) -> None:
    await storage.set_data(KEY, {"a": 1})
    await storage.set_state(KEY, "s")
    assert await storage.get_data(KEY) == {"a": 1}


async def test_get_state_returns_default_when_absent(storage: BaseStorage) -> None:
    assert await storage.get_state(KEY) is None
    assert await storage.get_state(KEY, default="none") == "none"


async def test_delete_state_returns_the_removed_record(storage: BaseStorage) -> None:
    await storage.set_state(KEY, "s")
    await storage.update_data(KEY, a=1)
    removed = await storage.delete_state(KEY)
    assert removed.current_state == "s"
    assert removed.data == {"a": 1}
    assert await storage.get_state(KEY) is None
    assert await storage.get_data(KEY) == {}
    assert await storage.delete_state(KEY, default="gone") == "gone"


async def test_set_data_replaces_the_data(storage: BaseStorage) -> None:
    assert await storage.get_data(KEY) == {}
    await storage.set_data(KEY, {"a": 1, "b": [1, 2]})
    await storage.set_data(KEY, {"c": {"d": None}})
    assert await storage.get_data(KEY) == {"c": {"d": None}}


async def test_update_data_merges_and_returns_the_merged_data(storage: BaseStorage) -> None:
    await storage.set_data(KEY, {"a": 1, "b": 2})
    merged = await storage.update_data(KEY, {"b": 3}, c="x")
    assert merged == {"a": 1, "b": 3, "c": "x"}
    assert await storage.get_data(KEY) == merged
    assert await storage.update_data(54321, n=1.5) == {"n": 1.5}


async def test_clear_data_keeps_the_state(storage: BaseStorage) -> None:
    await storage.set_state(KEY, "s")
    await storage.set_data(KEY, {"a": 1})
    await storage.clear_data(KEY)
    assert await storage.get_data(KEY) == {}
    assert (await storage.get_state(KEY)).current_state == "s"


async def test_delete_data_returns_the_removed_data(storage: BaseStorage) -> None:
    await storage.set_state(KEY, "s")
    await storage.set_data(KEY, {"a": 1})
    assert await storage.delete_data(KEY) == {"a": 1}
    assert await storage.get_data(KEY) == {}
    assert (await storage.get_state(KEY)).current_state == "s"
    assert await storage.delete_data(KEY) == {}


async def test_int_and_str_keys_name_the_same_record(storage: BaseStorage) -> None:
    await storage.set_state(KEY, "s")
    await storage.update_data(str(KEY), a=1)
    record = await storage.get_state(str(KEY))
    assert record.current_state == "s"
    assert record.data == {"a": 1}
    assert (await storage.delete_state(str(KEY))).current_state == "s"
    assert await storage.get_state(KEY) is None


async def test_persistent_flag(storage: BaseStorage, backend: str) -> None:
    assert storage.persistent is (backend != "memory")


# -- copies ----------------------------------------------------------------------------------
async def test_returned_data_is_a_copy(storage: BaseStorage) -> None:
    given = {"list": [1], "nested": {"x": 1}}
    await storage.set_data(KEY, given)
    given["list"].append(2)  # changing what was passed in changes nothing stored
    data = await storage.get_data(KEY)
    data["nested"]["x"] = 2
    data["new"] = True
    record = await storage.get_state(KEY)
    record.data["list"].append(3)
    merged = await storage.update_data(KEY, other=1)
    merged["nested"]["x"] = 3
    assert await storage.get_data(KEY) == {"list": [1], "nested": {"x": 1}, "other": 1}


# -- JSON only -------------------------------------------------------------------------------
class _Level(enum.IntEnum):
    HIGH = 2


BAD_DATA = [
    pytest.param({"when": datetime(2024, 1, 1)}, "'when'", id="datetime"),
    pytest.param({1: "one"}, "key 1", id="int-key"),
    pytest.param({"pair": (1, 2)}, "'pair'", id="tuple"),
    pytest.param({"x": float("nan")}, "'x'", id="nan"),
    pytest.param({"outer": {"inner": {2: "two"}}}, "key 2", id="nested-int-key"),
    pytest.param({"outer": [{"when": datetime(2024, 1, 1)}]}, "'when'", id="nested-datetime"),
    pytest.param({"level": _Level.HIGH}, "'level'", id="int-enum"),
]


@pytest.mark.parametrize(("bad", "names"), BAD_DATA)
@pytest.mark.parametrize("method", ["set_data", "update_data"])
async def test_non_json_data_raises_type_error_naming_the_key_and_stores_nothing(
    storage: BaseStorage, method: str, bad: dict[Any, Any], names: str
) -> None:
    with pytest.raises(TypeError, match=names):
        await getattr(storage, method)(KEY, bad)
    assert await storage.get_state(KEY) is None

    await storage.set_state(KEY, "s")
    await storage.set_data(KEY, {"keep": 1})
    with pytest.raises(TypeError, match=names):
        await getattr(storage, method)(KEY, bad)
    assert await storage.get_data(KEY) == {"keep": 1}


async def test_a_raw_write_of_non_json_kwargs_or_data_is_refused_alike(
    storage: BaseStorage,
) -> None:
    for patch in (
        Patch(callback="s", kwargs={"when": datetime(2024, 1, 1)}),
        Patch(data={"when": datetime(2024, 1, 1)}),
        Patch(data_update={"level": _Level.HIGH}),
    ):
        with pytest.raises(TypeError):
            await storage.write(KEY, patch)
    assert await storage.read(KEY) is None


async def test_non_json_keyword_data_raises_type_error(storage: BaseStorage) -> None:
    with pytest.raises(TypeError, match="'when'"):
        await storage.update_data(KEY, when=datetime(2024, 1, 1))
    assert await storage.get_state(KEY) is None


# -- records ---------------------------------------------------------------------------------
async def test_write_returns_the_previous_record(storage: BaseStorage) -> None:
    assert await storage.write(KEY, Patch(state="a", chat_id=KEY)) is None
    before = await storage.write(KEY, Patch(state="b", data_update={"x": 1}))
    assert before is not None
    assert before.current_state == "a"
    assert before.data == {}
    before = await storage.write(KEY, Patch(state=None, data={}))
    assert before is not None
    assert (before.current_state, before.data) == ("b", {"x": 1})
    assert await storage.read(KEY) is None


async def test_empty_record_is_removed(storage: BaseStorage) -> None:
    await storage.set_state(KEY, "s")
    await storage.set_state(KEY, None)
    assert await storage.get_state(KEY) is None

    await storage.set_data(KEY, {"a": 1})
    await storage.clear_data(KEY)
    assert await storage.get_state(KEY) is None

    assert await storage.write(KEY, Patch(state=None)) is None
    assert await storage.read(KEY) is None


async def test_clearing_state_and_step_forgets_chat_id(storage: BaseStorage) -> None:
    await storage.set_state(KEY, "s", chat_id=-100)
    await storage.update_data(KEY, a=1)
    assert (await storage.get_state(KEY)).chat_id == -100
    await storage.set_state(KEY, None)
    record = await storage.get_state(KEY)
    assert record.current_state is None
    assert record.chat_id is None
    assert record.data == {"a": 1}


# -- claims ----------------------------------------------------------------------------------
async def test_claim_without_a_step_is_none(storage: BaseStorage, fake_clock: FakeClock) -> None:
    now = fake_clock.now()
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False)
    assert claim.status is ClaimStatus.NONE
    assert claim.record is None

    await storage.set_state(KEY, "s")
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False)
    assert claim.status is ClaimStatus.NONE
    assert claim.record is not None
    assert claim.record.current_state == "s"


async def test_a_claimed_record_is_the_callers_own_copy(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    """What a claim hands out may be changed in place (a step appending to a list in its
    data) without changing what is stored: only a write changes that."""
    now = fake_clock.now()
    patch = step_patch(now)
    patch.data = {"tags": ["a"]}
    patch.kwargs = {"seen": {"n": 1}}
    await storage.write(KEY, patch)
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=now + 5)
    assert claim.status is ClaimStatus.CLAIMED and claim.record is not None
    claim.record.data["tags"].append("changed in place")
    claim.record.kwargs["seen"]["n"] = 2
    stored = await storage.read(KEY)
    assert stored is not None
    assert (stored.data, stored.kwargs) == ({"tags": ["a"]}, {"seen": {"n": 1}})

    assert claim.owner is not None
    assert await storage.end_claim(KEY, claim.owner, keep_step=True)
    taken = await storage.claim_token(KEY, "t1", now + 5, "owner-2")
    assert taken is not None
    taken.data["tags"].append("changed in place")
    taken.kwargs["seen"]["n"] = 3
    stored = await storage.read(KEY)
    assert stored is not None
    assert (stored.data, stored.kwargs) == ({"tags": ["a"]}, {"seen": {"n": 1}})


async def test_claim_marks_the_step_claimed_and_keeps_everything_it_needs(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    """A claim must not destroy what it claims: a process dying mid-step loses nothing."""
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now))
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=now + 5)
    assert claim.status is ClaimStatus.CLAIMED
    assert claim.owner
    assert claim.record is not None
    assert claim.record.callback == "signup.age"
    assert claim.record.kwargs == {"attempt": 1}
    assert claim.record.token == "t1"
    assert claim.record.deadline == now + 60.0

    after = await storage.read(KEY)
    assert after is not None
    assert after.claim == claim.owner
    assert (after.callback, after.kwargs, after.token) == ("signup.age", {"attempt": 1}, "t1")
    assert after.current_state == "signup"
    assert after.data == {"name": "Ann"}

    again = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=now + 5)
    assert again.status is ClaimStatus.BUSY  # the step is running: wait for its outcome

    assert await storage.end_claim(KEY, claim.owner)  # the step ended with no next step
    done = await storage.read(KEY)
    assert done is not None
    assert (done.callback, done.claim, done.kwargs, done.token) == (None, None, {}, None)
    assert done.current_state == "signup"
    assert done.data == {"name": "Ann"}
    third = await storage.claim(KEY, now=now, kind="message", is_command=False)
    assert third.status is ClaimStatus.NONE


async def test_a_claim_made_again_by_its_owner_is_claimed_again(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    """A claim retried by the same update (a client-side time-out, then a retry) is
    idempotent: it does not block itself."""
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now))
    first = await storage.claim(
        KEY, now=now, kind="message", is_command=False, lease=now + 5, owner="u1"
    )
    retry = await storage.claim(
        KEY, now=now, kind="message", is_command=False, lease=now + 5, owner="u1"
    )
    assert (first.status, retry.status) == (ClaimStatus.CLAIMED, ClaimStatus.CLAIMED)


async def test_a_failed_step_is_offered_again_whole(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now))
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=now + 5)
    assert await storage.end_claim(KEY, claim.owner or "", keep_step=True)
    record = await storage.read(KEY)
    assert record is not None
    assert (record.callback, record.claim, record.kwargs) == ("signup.age", None, {"attempt": 1})
    again = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=now + 5)
    assert again.status is ClaimStatus.CLAIMED


async def test_an_outcome_is_written_only_while_its_claim_owns_the_step(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now))
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=now + 5)
    with pytest.raises(ClaimLostError, match="refused"):
        await storage.write(KEY, Patch(callback="signup.next", owner="someone-else"))
    record = await storage.read(KEY)
    assert record is not None and record.callback == "signup.age"  # nothing written
    assert record.claim == claim.owner

    await storage.write(
        KEY, Patch(callback="signup.next", token="t2", data={"age": 3}, owner=claim.owner or "")
    )
    record = await storage.read(KEY)
    assert record is not None
    assert (record.callback, record.claim, record.busy, record.data) == (
        "signup.next",
        None,
        None,
        {"age": 3},
    )
    # the same outcome again (a retry after the first one landed) changes nothing
    with pytest.raises(ClaimLostError):
        await storage.write(KEY, Patch(callback="signup.other", owner=claim.owner or ""))
    assert not await storage.end_claim(KEY, claim.owner or "")
    assert (await storage.read(KEY)).callback == "signup.next"  # type: ignore[union-attr]


async def test_a_claim_whose_owner_died_is_offered_again(
    backend: str,
    make_storage: Callable[..., BaseStorage],
    fake_clock: FakeClock,
    tmp_path: Path,
) -> None:
    """File: a claim found after a restart has no live owner. Redis: a claim lives only while
    its lease runs. Memory: a claim lives while this process does."""
    now = fake_clock.now()
    storage = make_storage()
    await storage.write(KEY, step_patch(now))
    dead = await storage.claim(KEY, now=now, kind="message", is_command=False, lease=now + 5)
    assert dead.status is ClaimStatus.CLAIMED
    later = now + 1
    if backend == "file":
        await storage.close()
        storage = FileStateStorage(tmp_path / "journal-0.jsonl")  # the restarted process
    elif backend.startswith("redis"):
        later = now + 6  # the lease ran out and nobody renewed it
    else:
        assert storage._owners is not None
        storage._owners.clear()  # as if the claiming task vanished
    retaken = await storage.claim(KEY, now=later, kind="message", is_command=False)
    assert retaken.status is ClaimStatus.CLAIMED
    assert retaken.record is not None and retaken.record.kwargs == {"attempt": 1}
    assert retaken.record.data == {"name": "Ann"}
    with pytest.raises(ClaimLostError):  # the dead owner's late outcome is refused
        await storage.write(KEY, Patch(callback="x", owner=dead.owner or ""))
    if backend == "file":
        await storage.close()


async def test_an_update_at_or_below_the_last_applied_one_is_stale(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    """Telegram redelivers an update its bot did not acknowledge: applied once, not twice."""
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now))
    claim = await storage.claim(
        KEY, now=now, kind="message", is_command=False, lease=now + 5, update_id=100
    )
    await storage.write(KEY, Patch(callback="signup.next", token="t2", owner=claim.owner or ""))
    assert (await storage.read(KEY)).seq == 100  # type: ignore[union-attr]
    for update_id in (99, 100):
        again = await storage.claim(
            KEY, now=now, kind="message", is_command=False, update_id=update_id
        )
        assert again.status is ClaimStatus.STALE
    fresh = await storage.claim(KEY, now=now, kind="message", is_command=False, update_id=101)
    assert fresh.status is ClaimStatus.CLAIMED


async def test_claiming_the_only_thing_in_a_record_then_ending_it_removes_it(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, Patch(callback="signup.age", chat_id=KEY, token="t1"))
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False)
    assert claim.status is ClaimStatus.CLAIMED
    assert await storage.end_claim(KEY, claim.owner or "")
    assert await storage.read(KEY) is None


async def test_claim_after_the_deadline_is_expired_and_removes_the_step(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now, deadline=10.0))
    claim = await storage.claim(KEY, now=now + 10.0, kind="message", is_command=False)
    assert claim.status is ClaimStatus.EXPIRED
    assert claim.record is not None
    assert claim.record.callback == "signup.age"
    after = await storage.read(KEY)
    assert after is not None
    assert after.callback is None
    assert after.data == {"name": "Ann"}


async def test_claim_skips_an_update_kind_the_step_does_not_take(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now))
    claim = await storage.claim(KEY, now=now, kind="callback_query", is_command=False)
    assert claim.status is ClaimStatus.SKIPPED
    assert claim.record is not None
    assert claim.record.callback == "signup.age"
    after = await storage.read(KEY)
    assert after is not None
    assert after.callback == "signup.age"


async def test_claim_takes_only_buttons_with_the_steps_callback_prefix(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now, accepts=",message,callback_query=aw:,"))
    for data in ("like:1", "a", "", None):
        claim = await storage.claim(
            KEY, now=now, kind="callback_query", is_command=False, callback_data=data
        )
        assert claim.status is ClaimStatus.SKIPPED, data
    claim = await storage.claim(
        KEY, now=now, kind="callback_query", is_command=False, callback_data="aw:x:1:0"
    )
    assert claim.status is ClaimStatus.CLAIMED


async def test_claim_skips_a_command_unless_the_step_accepts_commands(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now))
    claim = await storage.claim(KEY, now=now, kind="message", is_command=True)
    assert claim.status is ClaimStatus.SKIPPED
    assert (await storage.read(KEY)).callback == "signup.age"  # type: ignore[union-attr]

    await storage.write(KEY, Patch(accepts=",message,command,"))
    claim = await storage.claim(KEY, now=now, kind="message", is_command=True)
    assert claim.status is ClaimStatus.CLAIMED


async def test_claim_of_a_filtered_step_asks_for_a_check_then_claim_token(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now, accepts=",message,filter,"))
    claim = await storage.claim(KEY, now=now, kind="message", is_command=False)
    assert claim.status is ClaimStatus.CHECK
    assert claim.record is not None
    assert claim.record.token == "t1"
    assert (await storage.read(KEY)).callback == "signup.age"  # type: ignore[union-attr]

    assert await storage.claim_token(KEY, "t2") is None
    assert (await storage.read(KEY)).callback == "signup.age"  # type: ignore[union-attr]

    taken = await storage.claim_token(KEY, "t1")
    assert taken is not None
    assert taken.callback == "signup.age"
    after = await storage.read(KEY)
    assert after is not None
    assert after.callback is None
    assert after.token is None
    assert after.data == {"name": "Ann"}
    assert await storage.claim_token(KEY, "t1") is None


async def test_records_returned_by_claims_are_copies(
    storage: BaseStorage, fake_clock: FakeClock
) -> None:
    now = fake_clock.now()
    await storage.write(KEY, step_patch(now, accepts=",message,filter,"))
    await storage.set_state(54321, "s")
    await storage.update_data(54321, a=1)
    claims = [
        await storage.claim(KEY, now=now, kind="message", is_command=False),  # CHECK
        await storage.claim(KEY, now=now, kind="callback_query", is_command=False),  # SKIPPED
        await storage.claim(54321, now=now, kind="message", is_command=False),  # NONE
    ]
    assert [c.status for c in claims] == [
        ClaimStatus.CHECK,
        ClaimStatus.SKIPPED,
        ClaimStatus.NONE,
    ]
    for claim in claims:
        assert claim.record is not None
        claim.record.data["a"] = "changed"
        claim.record.kwargs["attempt"] = 99
    assert await storage.get_data(KEY) == {"name": "Ann"}
    assert (await storage.read(KEY)).kwargs == {"attempt": 1}  # type: ignore[union-attr]
    assert await storage.get_data(54321) == {"a": 1}


async def test_claim_token_without_a_record_is_none(storage: BaseStorage) -> None:
    assert await storage.claim_token(KEY, "t1") is None


# -- expiry ----------------------------------------------------------------------------------
async def test_storage_ex_expires_records(
    make_storage: Callable[..., BaseStorage], advance: Callable[[float], Awaitable[None]]
) -> None:
    storage = make_storage(ex=0.2)
    await storage.set_state(KEY, "s")
    await storage.update_data(KEY, a=1)
    assert (await storage.get_state(KEY)).current_state == "s"
    await advance(0.4)
    assert await storage.get_state(KEY) is None
    assert await storage.get_data(KEY) == {}


async def test_storage_ex_accepts_a_timedelta(
    make_storage: Callable[..., BaseStorage], advance: Callable[[float], Awaitable[None]]
) -> None:
    storage = make_storage(ex=timedelta(milliseconds=200))
    await storage.set_state(KEY, "s")
    await advance(0.4)
    assert await storage.get_state(KEY) is None


async def test_per_call_ex_expires_a_record(
    storage: BaseStorage, advance: Callable[[float], Awaitable[None]]
) -> None:
    await storage.set_data(KEY, {"a": 1}, ex=0.2)
    await storage.set_state(54321, "stays")
    assert await storage.get_data(KEY) == {"a": 1}
    await advance(0.4)
    assert await storage.get_data(KEY) == {}
    assert (await storage.get_state(54321)).current_state == "stays"


async def test_per_call_ex_overrides_the_storage_default(
    make_storage: Callable[..., BaseStorage], advance: Callable[[float], Awaitable[None]]
) -> None:
    storage = make_storage(ex=0.2)
    await storage.set_state(KEY, "s", ex=30)
    await advance(0.4)
    assert (await storage.get_state(KEY)).current_state == "s"


async def test_write_without_ex_keeps_the_existing_expiry(
    storage: BaseStorage, advance: Callable[[float], Awaitable[None]]
) -> None:
    await storage.set_state(KEY, "s", ex=0.2)
    await storage.update_data(KEY, a=1)
    await advance(0.4)
    assert await storage.get_state(KEY) is None


async def test_a_write_after_expiry_starts_a_fresh_record(
    storage: BaseStorage, advance: Callable[[float], Awaitable[None]]
) -> None:
    await storage.set_data(KEY, {"old": 1}, ex=0.2)
    await advance(0.4)
    assert await storage.write(KEY, Patch(data_update={"new": 1})) is None
    await advance(0.4)  # and it does not inherit the old expiry
    assert await storage.get_data(KEY) == {"new": 1}


# -- concurrency -----------------------------------------------------------------------------
async def test_data_keeps_insertion_order(storage: BaseStorage) -> None:
    # long values push Redis to its hashtable encoding, which has no order of its own
    names = [f"item{i}" for i in range(40)]
    await storage.set_data(KEY, {name: "x" * 100 for name in names[:20]})
    for name in names[20:]:
        await storage.update_data(KEY, {name: "y" * 100})
    await storage.update_data(KEY, {"item3": "changed"})  # an update keeps its place
    data = await storage.get_data(KEY)
    assert list(data) == names
    assert data["item3"] == "changed"
    await storage.set_data(KEY, {"b": 1, "a": 2})
    assert list(await storage.get_data(KEY)) == ["b", "a"]


async def test_concurrent_update_data_loses_no_update(storage: BaseStorage) -> None:
    await asyncio.gather(*(storage.update_data(KEY, {f"k{i}": i}) for i in range(50)))
    assert await storage.get_data(KEY) == {f"k{i}": i for i in range(50)}
