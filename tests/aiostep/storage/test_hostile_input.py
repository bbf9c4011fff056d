"""Hostile input, on every storage: what cannot be stored is refused before anything is written,
with an error that names where it is; what can be stored keeps every key apart.

Each hostile call runs after a sentinel record (another conversation) and a prior record at the
target key were written; both must read back unchanged afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiostep.storage.base import BaseStorage, Patch, StateContext
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
