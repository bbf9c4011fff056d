"""`listen.scheduler.poll` / `batch` / `concurrency` (the timeouts guide says to set them on the
Listen that `aiostep.setup` returns) are checked when set: a 0 poll made a Redis worker look at
the deadlines on every loop turn, a str one killed the look with a TypeError, a 0 batch made
every look fail and be logged as "could not read the storage"."""

from __future__ import annotations

from typing import Any

import pytest

import aiostep


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    [
        ("poll", 0, ValueError, "Scheduler.poll must be a positive, finite number, got 0"),
        ("poll", float("inf"), ValueError, "Scheduler.poll must be a positive, finite"),
        ("poll", "2", TypeError, "Scheduler.poll must be a number of seconds, got str: '2'"),
        ("batch", 0, ValueError, "Scheduler.batch must be at least 1, got 0"),
        ("batch", 10.0, TypeError, "Scheduler.batch must be an int, got float: 10.0"),
        ("concurrency", 0, ValueError, "Scheduler.concurrency must be at least 1, got 0"),
        ("concurrency", True, TypeError, "Scheduler.concurrency must be an int, got bool"),
    ],
)
def test_a_bad_scheduler_option_is_refused_naming_it(
    option: str, value: Any, error: type[Exception], message: str
) -> None:
    scheduler = aiostep.Listen().scheduler
    before = getattr(scheduler, option)
    with pytest.raises(error, match=message):
        setattr(scheduler, option, value)
    assert getattr(scheduler, option) == before  # left as it was


def test_good_scheduler_options_are_taken() -> None:
    scheduler = aiostep.Listen().scheduler
    scheduler.poll, scheduler.batch, scheduler.concurrency = 0.25, 10, 4
    assert (scheduler.poll, scheduler.batch, scheduler.concurrency) == (0.25, 10, 4)
