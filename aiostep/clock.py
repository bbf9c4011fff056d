"""The one clock aiostep reads: wall time for stored deadlines, timers for timeouts.

Replace it (``aiostep.clock.set_clock``) to test timeouts without sleeping; the test kit's
``FakeClock`` does exactly that.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

__all__ = ["Clock", "SystemClock", "TimerHandle", "get_clock", "set_clock", "timeout_seconds"]


class TimerHandle(Protocol):
    """What ``call_later`` returns: something that can be cancelled."""

    def cancel(self) -> None:
        """Stop the timer; no effect if it already fired."""


class Clock(Protocol):
    """A source of time and timers."""

    def now(self) -> float:
        """Current time in epoch seconds."""
        ...

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the event loop after ``delay`` seconds."""
        ...


class SystemClock:
    """The real clock: ``time.time()`` and the running loop's ``call_later``."""

    def now(self) -> float:
        """Current time in epoch seconds."""
        return time.time()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Schedule ``callback(*args)`` on the running loop after ``delay`` seconds."""
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback, *args)


_clock: Clock = SystemClock()


def get_clock() -> Clock:
    """The clock in use."""
    return _clock


def set_clock(clock: Clock | None) -> None:
    """Use ``clock`` from now on (``None`` restores the system clock)."""
    global _clock
    _clock = clock if clock is not None else SystemClock()


def timeout_seconds(timeout: float | timedelta | None) -> float | None:
    """A timeout in seconds (``None`` stays ``None``), checked before anything is registered.

    Raises:
        TypeError: not a number or a ``timedelta``.
        ValueError: not positive and finite.
    """
    if timeout is None:
        return None
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(
            f"timeout must be seconds (a number) or a timedelta, got {type(timeout).__name__}: "
            f"{timeout!r}"
        )
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
    return seconds
