"""Test tools for bots built with aiogram and aiostep: drive a real ``Dispatcher`` as simulated
users, with the network to Telegram replaced and time under the test's control.

Example:
    ```python
    from aiostep.testing import BotSimulator

    async def test_greets() -> None:
        async with BotSimulator(build_dispatcher) as sim:
            talk = sim.chat()
            await talk.send("/start")
            talk.assert_last("Hello!")
    ```

pytest fixtures (``aiostep_simulator``, ``aiostep_clock``, ``aiostep_redis_url``) are in
[`aiostep.testing.pytest_plugin`][aiostep.testing.pytest_plugin].
"""

from __future__ import annotations

import logging

from aiostep.testing.fake_clock import FakeClock, FakeTimer
from aiostep.testing.session import RecordingSession, Responder
from aiostep.testing.simulator import (
    BotSimulator,
    Conversation,
    DispatcherFactory,
    SettleTimeoutError,
)
from aiostep.testing.telegram import CallbackAnswer, ChatLog, MessageRecord

__all__ = [
    "BotSimulator",
    "CallbackAnswer",
    "ChatLog",
    "Conversation",
    "DispatcherFactory",
    "FakeClock",
    "FakeTimer",
    "MessageRecord",
    "RecordingSession",
    "Responder",
    "SettleTimeoutError",
]

try:
    from aiostep.testing.redis_server import LocalRedisCluster, RedisServer, find_redis_server
except (ImportError, SyntaxError) as exc:  # written separately; the rest must work without it
    logging.getLogger("aiostep").warning("aiostep.testing.redis_server is unavailable: %s", exc)
else:
    __all__ += ["LocalRedisCluster", "RedisServer", "find_redis_server"]
