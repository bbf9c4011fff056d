"""The memory storage's compact form: a paused conversation is kept small, and every record
reads back exactly as written whatever form the storage keeps it in."""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
from typing import Any

import pytest

from aiostep.exceptions import RecordTooLargeError
from aiostep.storage import base
from aiostep.storage.base import ClaimStatus, Patch, StateContext, apply_patch, new_owner
from aiostep.storage.memory import AsyncMemoryStateStorage, MemoryStateStorage
from aiostep.testing import FakeClock

# what a wizard paused at its second step writes (the kwargs as the wizard now stores them)
WIZARD_KWARGS = {"v": 3, "fp": "f41abb41", "h": [{"s": "NAME", "x": ["name"]}]}
ACCEPTS = ",message,callback_query=aw:,"


def wizard_patch(chat_id: int) -> Patch:
    return Patch(
        state="AGE",
        callback="signup:AGE",
        kwargs=dict(WIZARD_KWARGS),
        deadline=None,
        on_timeout=None,
        token=new_owner(),
        accepts=ACCEPTS,
        chat_id=chat_id,
        data={"name": "Alice"},
    )


async def test_a_paused_conversation_costs_under_200_bytes_besides_its_key() -> None:
    """Once ~380 B (a 14-slot row, a token str, the data and kwargs texts); packed, the
    record is one string of its JSON and a few short fields."""
    storage = AsyncMemoryStateStorage()
    users = 300
    keys = [f"{u}:{u}@42" for u in range(10_000, 10_000 + users)]
    patches = [wizard_patch(10_000 + i) for i in range(users)]
    await storage.write("warm:1@42", wizard_patch(1))  # the step's names, shared by all
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for key, patch in zip(keys, patches, strict=True):
            await storage.write(key, patch)
        del patch
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    patches.clear()  # what the patches hold is the caller's, not the storage's
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / users < 200, f"{grown / users:.0f} B per paused conversation"


def _cases() -> list[Any]:
    prefix = base.owner_prefix()
    return [
        pytest.param("5:5@42", Patch(state="S", callback="a.b", token=new_owner(), chat_id=5)),
        pytest.param("-100123:7", Patch(callback="a.b", chat_id=-100123), id="group-key"),
        pytest.param("5:6", Patch(callback="a.b", chat_id=9), id="chat-not-the-keys"),
        pytest.param("55:6", Patch(callback="a.b", chat_id=5), id="chat-a-prefix-of-the-keys"),
        pytest.param("12345", Patch(state="S", chat_id=12345), id="seed-key"),
        pytest.param("12345", Patch(state="S", chat_id="@channel"), id="str-chat"),
        pytest.param("7:7", Patch(callback="a.b", deadline=1_700_000_100), id="int-deadline"),
        pytest.param(
            "7:7",
            Patch(callback="a.b", deadline=1_700_000_100.25, on_timeout="a.late"),
            id="float-deadline",
        ),
        pytest.param("7:7", Patch(callback="a.b", token="another-process-7"), id="foreign-token"),
        pytest.param("7:7", Patch(callback="a.b", token=prefix), id="token-is-the-prefix"),
        pytest.param("7:7", Patch(callback="a.b", token=prefix + "a\x1fb\nc"), id="token-seps"),
        pytest.param("7:7", Patch(callback="a.b", token=""), id="empty-token"),
        pytest.param("7:7", Patch(callback="a.b", token=prefix + "x\ny"), id="token-nl"),
        pytest.param(
            "7:7",
            Patch(
                state="S\x1fT\n",
                callback="a.b\x1f",
                accepts=",message,\x1f",
                data={"k\x1f\n": "v\x1f\n{}", "e": ""},
                kwargs={"\n": ["\x1f", "\n"]},
            ),
            id="separators-inside-values",
        ),
        pytest.param("7:7", Patch(state="S", data={"only": "data"}), id="data-no-kwargs"),
        pytest.param("7:7", Patch(callback="a.b", kwargs={"only": 1}), id="kwargs-no-data"),
        pytest.param("7:7", Patch(state="S", data={"é": "ünïcode ✓"}), id="non-ascii"),
    ]


@pytest.mark.parametrize(("key", "patch"), _cases())
async def test_records_read_back_as_written_whatever_form_they_are_kept_in(
    key: str, patch: Patch
) -> None:
    storage = AsyncMemoryStateStorage()
    expected = apply_patch(None, patch)
    await storage.write(key, patch)
    assert await storage.read(key) == expected
    # and through a claim and its outcome, which unpack and pack the record again
    if patch.callback is not None and patch.callback is not base.UNSET:
        claim = await storage.claim(key, now=0.0, kind="message", is_command=False, update_id=41)
        assert claim.status in (ClaimStatus.CLAIMED, ClaimStatus.EXPIRED, ClaimStatus.SKIPPED)
        assert claim.record == expected
        if claim.status is ClaimStatus.CLAIMED:
            assert claim.owner is not None
            await storage.write(key, Patch(owner=claim.owner, data_update={"after": True}))
            assert expected is not None
            expected.seq = 41
            expected.data["after"] = True
            assert await storage.read(key) == expected


async def test_a_step_registered_after_a_fork_reads_back_with_its_token() -> None:
    """A forked child draws a new token prefix: the storage's rows made before and after the
    fork keep their tokens."""
    storage = AsyncMemoryStateStorage()
    before = new_owner()
    await storage.write("1:1", Patch(callback="a.b", token=before))
    base._new_token_prefix()  # what os.register_at_fork runs in the child
    after = new_owner()
    assert not after.startswith(before[:12])
    await storage.write("2:2", Patch(callback="a.b", token=after))
    first, second = await storage.read("1:1"), await storage.read("2:2")
    assert first is not None and first.token == before
    assert second is not None and second.token == after
    assert (await storage.claim_token("2:2", after)) is not None  # found by its token


async def test_more_step_shapes_than_the_storage_shares_still_read_back() -> None:
    """States made per user (names never seen twice) overflow the shared names: those
    records are kept unpacked, and read back the same."""
    storage = AsyncMemoryStateStorage()
    count = 4200  # over the 4096 shared (state, step, accepts, on_timeout) combinations
    for i in range(count):
        await storage.write(i, Patch(state=f"state-{i}", callback="a.b", token=new_owner()))
    for i in (0, 4095, 4096, count - 1):
        record = await storage.read(i)
        assert record is not None and record.current_state == f"state-{i}"
        assert record.chat_id is None and record.callback == "a.b"


async def test_a_packed_record_still_expires(fake_clock: FakeClock) -> None:
    storage = AsyncMemoryStateStorage(ex=10)
    await storage.write("3:3", wizard_patch(3))
    await storage.write("3:3", Patch(data_update={"age": 30}))  # keeps the record's expiry
    await fake_clock.advance(9)
    record = await storage.read("3:3")
    assert record is not None and record.data == {"name": "Alice", "age": 30}
    await fake_clock.advance(2)
    assert await storage.read("3:3") is None


async def test_an_int_too_long_for_json_is_refused_by_name_and_nothing_is_stored() -> None:
    storage = AsyncMemoryStateStorage()
    await storage.write("4:4", Patch(state="S", data={"kept": 1}))
    with pytest.raises(TypeError, match=r"kwargs\['n'\] is an int of more than"):
        await storage.write("4:4", Patch(callback="a.b", kwargs={"n": 10**5000}))
    assert await storage.read("4:4") == StateContext("S", data={"kept": 1})


async def test_a_patch_over_the_limit_is_measured_once_and_stores_nothing() -> None:
    storage = AsyncMemoryStateStorage(max_record_bytes=40)
    await storage.write("5:5", Patch(state="S", data={"a": "x" * 10}))
    with pytest.raises(RecordTooLargeError, match="the data and kwargs it writes"):
        await storage.write("5:5", Patch(callback="a.b", kwargs={"b": "y" * 40}))
    with pytest.raises(RecordTooLargeError, match="with this update merged in"):
        await storage.write("5:5", Patch(callback="a.b", kwargs={"b": "y" * 20}))
    assert await storage.read("5:5") == StateContext("S", data={"a": "x" * 10})


def test_the_seed_calls_from_several_threads_lose_no_update() -> None:
    # aiogram runs a sync handler in a thread, so the seed's plain calls on one record (a
    # group's shared counter, say) can run at once; update_data used to lose merges then
    storage = MemoryStateStorage()
    threads, writes = 8, 200

    def work(t: int) -> None:
        for i in range(writes):
            storage.update_data(1, {f"t{t}-{i}": i})

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    try:
        started = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(storage.get_data(1)) == threads * writes
