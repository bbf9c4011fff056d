"""Hostile input, on every storage: what cannot be stored is refused before anything is written,
with an error that names where it is; what can be stored keeps every key apart.

Each hostile call runs after a sentinel record (another conversation) and a prior record at the
target key were written; both must read back unchanged afterwards.
"""

from __future__ import annotations

import collections
import decimal
import enum
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aiostep.exceptions import AiostepError, RecordTooLargeError
from aiostep.keys import ConversationKey, storage_key
from aiostep.storage.base import MAX_RECORD_BYTES, BaseStorage, Patch, StateContext, patch_size
from aiostep.storage.file import FileStateStorage
from aiostep.storage.memory import MemoryStateStorage
from tests.aiostep.storage import test_conformance as conformance

# The conformance suite's fixtures: every test that takes `storage` runs on memory, File, Redis.
backend = conformance.backend
fake_clock = conformance.fake_clock
make_storage = conformance.make_storage
storage = conformance.storage

CHAT = -1001234567890
KEY = f"{CHAT}:42@5000"
SENTINEL = f"{CHAT}:43@5000"

Call = Callable[[BaseStorage], Awaitable[Any]]


async def seed(storage: BaseStorage) -> tuple[StateContext, StateContext]:
    """Write a sentinel conversation and a prior record at ``KEY``; return both as stored."""
    await storage.write(
        SENTINEL,
        Patch(
            state="other",
            chat_id=CHAT,
            callback="other.step",
            kwargs={"n": 1},
            token="t0",
            accepts=",message,",
            data={"keep": "sentinel"},
        ),
    )
    await storage.write(KEY, Patch(state="before", chat_id=CHAT, data={"keep": 1}))
    sentinel, prior = await storage.read(SENTINEL), await storage.read(KEY)
    assert sentinel is not None
    assert prior is not None
    return sentinel, prior


async def refused(
    storage: BaseStorage, call: Call, error: type[Exception], match: str
) -> pytest.ExceptionInfo[Exception]:
    """Run ``call`` on an empty key, then over a prior record: refused alike, nothing written."""
    with pytest.raises(error, match=match) as first:
        await call(storage)
    assert await storage.read(KEY) is None
    sentinel, prior = await seed(storage)
    with pytest.raises(error, match=match) as excinfo:
        await call(storage)
    assert str(excinfo.value) == str(first.value)
    assert not isinstance(excinfo.value, UnicodeError)  # ours, not an encoder's leaking out
    assert await storage.read(KEY) == prior
    assert await storage.read(SENTINEL) == sentinel
    return excinfo


# -- lone surrogates ---------------------------------------------------------------------------
SURROGATE = "lone surrogate"

SURROGATE_CALLS = [
    pytest.param(
        lambda s: s.set_data(KEY, {"name": "\ud800"}),
        r"data['name'] contains a lone surrogate (\ud800) that cannot be stored as UTF-8",
        id="value",
    ),
    pytest.param(
        lambda s: s.update_data(KEY, {"outer": {"inner": ["ok", "x\udfffy"]}}),
        r"data['outer']['inner'][1] contains a lone surrogate (\udfff)",
        id="nested-value",
    ),
    pytest.param(
        lambda s: s.update_data(KEY, {"ok": 1, "bad\udc80": 2}),
        r"data has key 'bad\udc80', which contains a lone surrogate (\udc80)",
        id="key",
    ),
    pytest.param(
        lambda s: s.update_data(KEY, {"outer": [{"\ud83d": 1}]}),
        r"data['outer'][0] has key '\ud83d', which contains a lone surrogate",
        id="nested-key",
    ),
    pytest.param(
        lambda s: s.update_data(KEY, ok=1, name="\ud800"),
        r"data['name'] contains a lone surrogate",
        id="keyword",
    ),
    pytest.param(
        lambda s: s.write(KEY, Patch(data_update={"name": "a\ud800"})),
        r"data['name'] contains a lone surrogate",
        id="raw-data-update",
    ),
    pytest.param(
        lambda s: s.set_state(KEY, "signup.\ud800"),
        r"state contains a lone surrogate (\ud800)",
        id="state",
    ),
    pytest.param(
        lambda s: s.write(KEY, Patch(callback="step.\ud800", token="t", accepts=",message,")),
        r"callback contains a lone surrogate (\ud800)",
        id="step-name",
    ),
    pytest.param(
        lambda s: s.write(KEY, Patch(callback="s.x", on_timeout="late.\udfff")),
        r"on_timeout contains a lone surrogate (\udfff)",
        id="on-timeout",
    ),
    pytest.param(
        lambda s: s.write(KEY, Patch(callback="s.x", kwargs={"when": ["\ud800"]})),
        r"kwargs['when'][0] contains a lone surrogate",
        id="kwargs-value",
    ),
    pytest.param(
        lambda s: s.write(KEY, Patch(callback="s.x", kwargs={"\ud800": 1})),
        r"kwargs has key '\ud800', which contains a lone surrogate",
        id="kwargs-key",
    ),
    pytest.param(
        lambda s: s.write(KEY, Patch(state="s", chat_id="@chan\ud800")),
        r"chat_id contains a lone surrogate",
        id="chat-id",
    ),
    pytest.param(
        lambda s: s.update_data(f"{CHAT}:\ud800", a=1),
        r"storage key '-1001234567890:\ud800' contains a lone surrogate (\ud800)",
        id="storage-key",
    ),
]


@pytest.mark.parametrize(("call", "message"), SURROGATE_CALLS)
async def test_a_lone_surrogate_is_refused_naming_where_it_is_and_nothing_is_written(
    storage: BaseStorage, call: Call, message: str
) -> None:
    await refused(storage, call, ValueError, re.escape(message))


async def test_a_storage_key_with_a_lone_surrogate_cannot_be_read_or_removed_either(
    storage: BaseStorage,
) -> None:
    sentinel, _ = await seed(storage)
    for call in (storage.read, storage.remove, storage.get_data):
        with pytest.raises(ValueError, match=SURROGATE):
            await call("\udc80")
    assert await storage.read(SENTINEL) == sentinel


async def test_paired_surrogates_and_other_unicode_are_stored(storage: BaseStorage) -> None:
    data = {"emoji 🙂": "🙂 \U0001f600", "ü": ["日本語", "\u2028", "\x00"], "": ""}
    await storage.set_data("🙂:日本語", data)
    assert await storage.get_data("🙂:日本語") == data


# -- the size of a record ------------------------------------------------------------------------
def json_bytes(value: Any) -> int:
    """The documented measure: the UTF-8 bytes of the compact JSON."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def limited(storage: BaseStorage, limit: int) -> BaseStorage:
    # The File constructor does not take max_record_bytes (yet); the attribute works everywhere.
    storage.max_record_bytes = limit
    return storage


async def test_a_record_over_the_default_limit_is_refused_naming_key_size_and_limit(
    storage: BaseStorage,
) -> None:
    assert storage.max_record_bytes == MAX_RECORD_BYTES == 1 << 20
    big = {"blob": "x" * MAX_RECORD_BYTES}
    excinfo = await refused(storage, lambda s: s.set_data(KEY, big), RecordTooLargeError, KEY)
    error = excinfo.value
    assert isinstance(error, RecordTooLargeError)
    assert isinstance(error, ValueError)
    assert isinstance(error, AiostepError)
    assert (error.key, error.size, error.limit) == (KEY, json_bytes(big), MAX_RECORD_BYTES)
    for part in (repr(KEY), f"{json_bytes(big):,}", f"{MAX_RECORD_BYTES:,}", "max_record_bytes"):
        assert part in str(error)


async def test_the_limit_counts_utf8_bytes_of_compact_json(storage: BaseStorage) -> None:
    limited(storage, 100)
    fits = {"v": "é" * 46}  # {"v":"...."}: 8 bytes + 2 per é
    assert json_bytes(fits) == 100
    await storage.set_data(KEY, fits)
    assert await storage.get_data(KEY) == fits
    await storage.remove(KEY)
    too_big = {"v": "é" * 46 + "x"}
    error = (
        await refused(storage, lambda s: s.set_data(KEY, too_big), RecordTooLargeError, "101")
    ).value
    assert isinstance(error, RecordTooLargeError)
    assert (error.size, error.limit) == (101, 100)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.update_data(KEY, blob="x" * 200), id="update-data"),
        pytest.param(lambda s: s.update_data(KEY, {"blob": ["x" * 50] * 4}), id="update-list"),
        pytest.param(
            lambda s: s.write(KEY, Patch(callback="s.x", kwargs={"blob": "x" * 200})),
            id="step-kwargs",
        ),
        pytest.param(
            lambda s: s.write(KEY, Patch(data={"a": "x" * 60}, kwargs={"b": "y" * 60})),
            id="data-and-kwargs",
        ),
    ],
)
async def test_a_patch_over_the_limit_is_refused_on_every_backend(
    storage: BaseStorage, call: Call
) -> None:
    await refused(limited(storage, 100), call, RecordTooLargeError, "over the limit of 100")


async def test_update_data_counts_the_data_already_stored_where_the_backend_has_it(
    storage: BaseStorage,
) -> None:
    limited(storage, 100)
    await storage.set_data(KEY, {"a": "x" * 50})
    sentinel, _ = await seed(storage)  # replaces KEY's data with {"keep": 1}
    await storage.update_data(KEY, a="x" * 50)
    prior = await storage.read(KEY)
    with pytest.raises(RecordTooLargeError, match="over the limit of 100") as excinfo:
        await storage.update_data(KEY, b="y" * 50)  # fits alone, not with what is there
    assert excinfo.value.size == json_bytes({"keep": 1, "a": "x" * 50, "b": "y" * 50})
    assert await storage.read(KEY) == prior
    assert await storage.read(SENTINEL) == sentinel


async def test_a_record_may_shrink_and_state_writes_still_work_next_to_big_data(
    storage: BaseStorage,
) -> None:
    limited(storage, 100)
    await storage.set_data(KEY, {"a": "x" * 80})
    await storage.set_state(KEY, "s")
    await storage.set_data(KEY, {"a": "x"})
    assert await storage.get_data(KEY) == {"a": "x"}
    assert (await storage.read(KEY)).current_state == "s"  # type: ignore[union-attr]


async def test_the_limit_is_a_keyword_of_the_memory_and_redis_constructors(
    redis_url: str, tmp_path: Path
) -> None:
    from aiostep.storage.redis import RedisStateStorage

    memory = MemoryStateStorage(max_record_bytes=10)
    redis = RedisStateStorage(redis_url, max_record_bytes=10)
    file = FileStateStorage(tmp_path / "j.jsonl")
    try:
        assert memory.aio.max_record_bytes == redis.max_record_bytes == 10
        assert file.max_record_bytes == MAX_RECORD_BYTES
        with pytest.raises(RecordTooLargeError):
            memory.set_data(1, {"a": "0123456789"})
        with pytest.raises(RecordTooLargeError):
            await redis.set_data(1, {"a": "0123456789"})
        unlimited = MemoryStateStorage(max_record_bytes=None)
        unlimited.set_data(1, {"a": "x" * (MAX_RECORD_BYTES + 1)})
    finally:
        await redis.close()
        await file.close()


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "1"])
def test_a_limit_that_is_not_a_positive_int_is_refused(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="max_record_bytes must be"):
        MemoryStateStorage(max_record_bytes=bad)


# -- values JSON cannot hold as they are ------------------------------------------------------
class Level(enum.IntEnum):
    HIGH = 2


class Mood(enum.StrEnum):
    GOOD = "good"


class Name(str):
    pass


class Thing:
    def __repr__(self) -> str:
        return "<Thing>"


BAD_VALUES = [
    pytest.param(datetime(2024, 1, 1), id="datetime"),
    pytest.param({1, 2}, id="set"),
    pytest.param(b"raw", id="bytes"),
    pytest.param(bytearray(b"raw"), id="bytearray"),
    pytest.param(decimal.Decimal("1.10"), id="decimal"),
    pytest.param(Thing(), id="object"),
    pytest.param((1, 2), id="tuple"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("-inf"), id="infinity"),
    pytest.param(Level.HIGH, id="int-enum"),
    pytest.param(Mood.GOOD, id="str-enum"),
    pytest.param(Name("ann"), id="str-subclass"),
    pytest.param(collections.defaultdict(list), id="defaultdict"),
    pytest.param(collections.OrderedDict(a=1), id="ordered-dict"),
    pytest.param(10**5000, id="int-too-long-for-json"),
    pytest.param(len, id="function"),
]

NON_STR_KEYS = [
    pytest.param(1, id="int"),
    pytest.param(None, id="none"),
    pytest.param(True, id="bool"),
    pytest.param(1.5, id="float"),
    pytest.param((1, 2), id="tuple"),
    pytest.param(Mood.GOOD, id="str-enum"),
]

PLACES: list[Any] = [
    pytest.param(lambda v: ("set_data", {"ok": 1, "bad": v}), id="set_data"),
    pytest.param(lambda v: ("update_data", {"ok": 1, "bad": v}), id="update_data"),
    pytest.param(lambda v: ("update_data", {"deep": {"list": [0, {"bad": v}]}}), id="nested"),
    pytest.param(lambda v: ("kwargs", {"bad": v}), id="step-kwargs"),
]


def _call(place: str, payload: dict[Any, Any]) -> Call:
    if place == "kwargs":
        return lambda s: s.write(KEY, Patch(callback="s.x", kwargs=payload))
    return lambda s: getattr(s, place)(KEY, payload)


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("value", BAD_VALUES)
async def test_a_non_json_value_is_refused_naming_its_key_and_nothing_is_written(
    storage: BaseStorage, value: Any, place: Callable[[Any], tuple[str, dict[str, Any]]]
) -> None:
    name, payload = place(value)
    await refused(storage, _call(name, payload), TypeError, r"\['bad'\]")


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("bad_key", NON_STR_KEYS)
async def test_a_non_str_key_is_refused_naming_it_and_nothing_is_written(
    storage: BaseStorage, bad_key: Any, place: Callable[[Any], tuple[str, dict[Any, Any]]]
) -> None:
    name, payload = place("value")
    inner = payload
    while "bad" not in inner:  # find the dict holding "bad" and give it the hostile key
        inner = inner["deep"]["list"][1]
    inner[bad_key] = inner.pop("bad")
    await refused(storage, _call(name, payload), TypeError, re.escape(f"key {bad_key!r}"))


WRONG_TYPES: list[Any] = [
    pytest.param(Patch(state=5), "state must be a str", id="int-state"),  # type: ignore[arg-type]
    pytest.param(Patch(callback=Thing()), "callback must be a str", id="object-callback"),  # type: ignore[arg-type]
    pytest.param(Patch(callback="s", token=1), "token must be a str", id="int-token"),  # type: ignore[arg-type]
    pytest.param(Patch(state=Mood.GOOD), "state must be a str", id="str-enum-state"),
    pytest.param(Patch(state="s", chat_id=True), "chat_id must be", id="bool-chat-id"),
    pytest.param(Patch(state="s", chat_id=1.5), "chat_id must be", id="float-chat-id"),  # type: ignore[arg-type]
    pytest.param(Patch(callback="s", deadline=float("nan")), "deadline must be", id="nan-deadline"),
    pytest.param(Patch(callback="s", deadline="soon"), "deadline must be", id="str-deadline"),  # type: ignore[arg-type]
    pytest.param(Patch(data=[1]), "data must be a dict", id="list-data"),  # type: ignore[arg-type]
    pytest.param(Patch(callback="s", kwargs=None), "kwargs must be a dict", id="none-kwargs"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("patch", "message"), WRONG_TYPES)
async def test_a_raw_write_of_a_field_of_the_wrong_type_is_refused(
    storage: BaseStorage, patch: Patch, message: str
) -> None:
    # File would write it and then refuse to load its own journal; Redis would store str(value)
    await refused(storage, lambda s: s.write(KEY, patch), TypeError, message)


BAD_EXPIRIES = [
    pytest.param(float("nan"), ValueError, "ex must be a positive, finite number", id="nan"),
    pytest.param(float("inf"), ValueError, "ex must be a positive, finite number", id="inf"),
    pytest.param("60", TypeError, "ex must be seconds .* got str: '60'", id="str"),
    pytest.param(True, TypeError, "ex must be seconds .* got bool: True", id="bool"),
]


@pytest.mark.parametrize(("ex", "error", "message"), BAD_EXPIRIES)
async def test_a_bad_expiry_is_refused_alike_on_every_backend_and_nothing_is_written(
    storage: BaseStorage, ex: Any, error: type[Exception], message: str
) -> None:
    # Memory used to keep NaN/infinity (an infinite TTL, or none), File to refuse them as "not
    # JSON-serializable", Redis with a bare float error; all took "60" and True as seconds
    await refused(storage, lambda s: s.set_state(KEY, "x", ex=ex), error, message)
    with pytest.raises(error, match=message):
        MemoryStateStorage(ex=ex)


def _nested(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {}
    inner = data
    for _ in range(depth):
        inner["n"] = {}
        inner = inner["n"]
    return data


def _itself() -> dict[str, Any]:
    data: dict[str, Any] = {"ok": 1}
    data["self"] = [data]
    return data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_itself(), id="contains-itself"),
        pytest.param(_nested(150), id="150-deep"),
        pytest.param(_nested(5000), id="5000-deep"),
    ],
)
async def test_data_nested_too_deep_or_containing_itself_is_refused(
    storage: BaseStorage, data: dict[str, Any]
) -> None:
    for method in ("set_data", "update_data"):
        call: Call = lambda s: getattr(s, method)(KEY, data)  # noqa: B023, E731
        await refused(storage, call, TypeError, "nested more than 100 levels deep")
        await storage.remove(KEY)


async def test_data_nested_100_deep_is_stored(storage: BaseStorage) -> None:
    await storage.set_data(KEY, _nested(99))
    assert await storage.get_data(KEY) == _nested(99)


# -- extreme ids and keys ----------------------------------------------------------------------
EXTREME_IDS = [CHAT, -1, 0, 1, 777000, 2**31 - 1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64]


async def test_extreme_int_keys_round_trip_and_never_collide(storage: BaseStorage) -> None:
    for n in EXTREME_IDS:
        await storage.write(n, Patch(state=f"s{n}", chat_id=n, data={"id": n}))
    for n in EXTREME_IDS:
        record = await storage.read(n)
        assert record is not None
        assert (record.current_state, record.chat_id, record.data) == (f"s{n}", n, {"id": n})
        assert type(record.chat_id) is int
        assert await storage.read(str(n)) == record
    await storage.remove(0)
    assert await storage.read(0) is None
    assert await storage.read("-0") is None  # "-0" is a different str key, never written
    for n in EXTREME_IDS:
        assert n == 0 or (await storage.get_data(n)) == {"id": n}


CONVERSATIONS = [
    ConversationKey(CHAT, 42),
    ConversationKey(CHAT, 42, 7),
    ConversationKey(CHAT, 42, None, 5000),
    ConversationKey(CHAT, 42, 7, 5000),
    ConversationKey(CHAT, 42, 1, 5000),  # the General topic of a forum
    ConversationKey(CHAT, 42, 0, 5000),
    ConversationKey(42, CHAT),
    ConversationKey(42, 42),
    ConversationKey(CHAT, 0),  # chat-wide (ANYONE)
    ConversationKey(0, 0),
    ConversationKey(0, 0, 0),
    ConversationKey(0, 0, None, 0),
    ConversationKey(0, 0, 0, 0),
    ConversationKey(2**63 - 1, 2**63 - 1, 2**31 - 1, 2**63 - 1),
    ConversationKey(-(2**63), -1, None, 1),
    ConversationKey(-1, -1, -1, -1),
]


def test_conversation_keys_of_extreme_ids_never_share_a_storage_key() -> None:
    keys = [storage_key(k) for k in CONVERSATIONS]
    assert len(set(keys)) == len(keys)


async def test_conversation_keys_of_extreme_ids_round_trip(storage: BaseStorage) -> None:
    for i, key in enumerate(CONVERSATIONS):
        await storage.write(storage_key(key), Patch(state="s", chat_id=key.chat_id, data={"i": i}))
    for i, key in enumerate(CONVERSATIONS):
        record = await storage.read(storage_key(key))
        assert record is not None
        assert (record.chat_id, record.data) == (key.chat_id, {"i": i})


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(ConversationKey("1:2", 3), id="str-chat-with-separator"),  # type: ignore[arg-type]
        pytest.param(ConversationKey(1, "2:3"), id="str-user"),  # type: ignore[arg-type]
        pytest.param(ConversationKey(1, 2, "3@4"), id="str-thread"),  # type: ignore[arg-type]
        pytest.param(ConversationKey(1, 2, None, "5"), id="str-bot"),  # type: ignore[arg-type]
        pytest.param(ConversationKey(True, 2), id="bool-chat"),
        pytest.param(ConversationKey(1.0, 2), id="float-chat"),  # type: ignore[arg-type]
        pytest.param(ConversationKey(None, 2), id="none-chat"),  # type: ignore[arg-type]
    ],
)
def test_a_conversation_key_of_non_int_ids_is_refused_rather_than_collide(
    key: ConversationKey,
) -> None:
    # ("1:2", 3) would otherwise be stored as "1:2:3": chat 1, user 2, topic 3
    with pytest.raises(TypeError, match="ConversationKey"):
        storage_key(key)


HOSTILE_KEYS = [
    "a:b",
    "a",
    "b",
    "a:",
    ":b",
    "a@b",
    "a/b",
    "a b",
    " a",
    "a ",
    "a\tb",
    "a\nb",
    "a\x00b",
    "a\\b",
    'a"b',
    "*",
    "a*",
    "[a]",
    "ü",
    "u\u0308",  # ü decomposed: a different key
    "日本語",
    "🙂",
    "",
    " ",
    "x" * 100_000,
    "aiostep:a",
    "d:a",
    "order",
    "12345",
    " 12345",
    "12345 ",
    "-0",
    "+1",
    "1",
    "01",
    "1.0",
]


async def test_keys_with_separators_and_odd_text_are_each_their_own_record(
    storage: BaseStorage,
) -> None:
    assert len(set(HOSTILE_KEYS)) == len(HOSTILE_KEYS)
    for i, key in enumerate(HOSTILE_KEYS):
        await storage.write(key, Patch(state=f"s{i}", chat_id=key, data={"i": i}))
    for i, key in enumerate(HOSTILE_KEYS):
        record = await storage.read(key)
        assert record is not None, key
        assert (record.current_state, record.chat_id, record.data) == (f"s{i}", key, {"i": i})
    await storage.remove("a")
    await storage.update_data("a:b", more=True)
    for i, key in enumerate(HOSTILE_KEYS):
        expected = None if key == "a" else {"i": i, **({"more": True} if key == "a:b" else {})}
        record = await storage.read(key)
        assert (None if record is None else record.data) == expected, key


DATA_NAMES = ["a:b", "", " ", "d:x", "order", "state", "a\nb", "日本語", "🙂", "x" * 1000]


async def test_data_names_with_odd_text_round_trip_in_order(storage: BaseStorage) -> None:
    data = {name: i for i, name in enumerate(DATA_NAMES)}
    await storage.set_data(KEY, data)
    assert list((await storage.get_data(KEY)).items()) == list(data.items())
    await storage.update_data(KEY, {"new": 1, "": -1})
    expected = {**data, "new": 1, "": -1}
    assert list((await storage.get_data(KEY)).items()) == list(expected.items())


@pytest.mark.parametrize("method", ["set_data", "update_data"])
async def test_a_data_name_holding_nul_is_refused(storage: BaseStorage, method: str) -> None:
    # Redis keeps the names' order NUL-separated: "a\0b" would come back out of order there
    call: Call = lambda s: getattr(s, method)(KEY, {"ok": 1, "a\x00b": 2})  # noqa: E731
    await refused(
        storage, call, ValueError, re.escape("data has key 'a\\x00b', which contains NUL")
    )


async def test_nul_is_fine_in_values_nested_names_and_kwargs(storage: BaseStorage) -> None:
    await storage.set_data(KEY, {"v": "a\x00b", "nested": {"a\x00b": ["\x00"]}})
    await storage.write(KEY, Patch(callback="s.x", kwargs={"a\x00b": "\x00"}))
    record = await storage.read(KEY)
    assert record is not None
    assert record.data == {"v": "a\x00b", "nested": {"a\x00b": ["\x00"]}}
    assert record.kwargs == {"a\x00b": "\x00"}


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1, "b": "x"},
        {"é": "ü" * 40, 'q"': [1, {"x": None}], "back\\slash": 1.5},
        {"line\nbreak": "v" * 90, "\x7f": True},
    ],
    ids=["plain", "escaped-names", "control-chars"],
)
async def test_a_refused_write_names_the_size_patch_size_measures(
    storage: BaseStorage, data: dict[str, Any]
) -> None:
    """Every backend measures a patch as `patch_size` does (compact JSON, UTF-8), whether it
    encodes once for itself (Memory, Redis) or measures first (File)."""
    limited(storage, 10)
    patch = Patch(data=data, kwargs={"k": "v", "é": [1, 2]})
    with pytest.raises(RecordTooLargeError) as excinfo:
        await storage.write(KEY, patch)
    assert excinfo.value.size == patch_size(patch)
    assert await storage.read(KEY) is None  # nothing written
