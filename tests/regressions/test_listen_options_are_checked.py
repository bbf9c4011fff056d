"""``Listen``'s ``step_lease``, ``busy_wait`` and ``order_window`` were taken as given: a str
(from an env variable) failed the first update that needed it, deep in the routing, and a zero
``step_lease`` made every running step on Redis renew its lease on every loop turn. They are
now checked when the Listen is made, by ``Listen`` and ``aiostep.setup`` alike."""

from __future__ import annotations

from typing import Any

import pytest
from aiogram import Dispatcher

import aiostep


@pytest.mark.parametrize(
    ("option", "value", "error", "message"),
    [
        ("step_lease", "5", TypeError, "step_lease must be a number of seconds, got str: '5'"),
        ("step_lease", 0, ValueError, "step_lease must be a positive, finite number"),
        ("busy_wait", -1, ValueError, "busy_wait must be a non-negative, finite number"),
        ("busy_wait", True, TypeError, "busy_wait must be a number of seconds, got bool"),
        ("order_window", float("nan"), ValueError, "order_window must be a non-negative"),
    ],
)
def test_a_bad_listen_option_is_refused_naming_it(
    option: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        aiostep.Listen(**{option: value})
    dp = Dispatcher()
    with pytest.raises(error, match=message):
        aiostep.setup(dp, **{option: value})
    # nothing was installed: the Dispatcher can still be set up
    aiostep.setup(dp)


def test_zero_busy_wait_and_order_window_are_allowed() -> None:
    listen = aiostep.Listen(busy_wait=0, order_window=0, step_lease=1)
    assert (listen.busy_wait, listen.order_window, listen.step_lease) == (0.0, 0.0, 1.0)
