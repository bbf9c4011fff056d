"""``aiostep.setup(dp, updates="message")`` failed with "updates: 'm' is not one of ...": the
str was taken as its letters. One kind given as a str is that kind now, as ``wait_for``'s and
``register_next_step``'s ``updates=`` already take it."""

from __future__ import annotations

import pytest
from aiogram import Dispatcher

import aiostep


def test_setup_takes_one_update_kind_as_a_str() -> None:
    dp = Dispatcher()
    listen = aiostep.setup(dp, updates="message")
    assert listen in dp.message.outer_middleware
    assert listen not in dp.callback_query.outer_middleware
    with pytest.raises(ValueError, match="updates: 'messages' is not one of"):
        aiostep.setup(Dispatcher(), updates="messages")
