"""A clock that moves only when a test says so, for testing timeouts without sleeping.

``FakeClock`` implements `aiostep.clock.Clock`. Install it with ``aiostep.clock.set_clock``
(or use it as a context manager, or ``BotSimulator.use_fake_clock()``); then
``await clock.advance(30)`` fires every timer due within those 30 seconds, in order, and lets the
bot react to each before the next.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiostep.clock import Clock, get_clock, set_clock

__all__ = ["FakeClock", "FakeTimer"]

#: What runs after each timer fires: given the tasks the timer's callback created, it waits
#: until the bot is idle again (``BotSimulator`` registers one).
SettleHook = Callable[[set[asyncio.Task[Any]]], Awaitable[None]]

# A timer that keeps re-arming itself with no delay would make advance() spin forever.
_MAX_FIRINGS = 100_000


class FakeTimer:
    """A timer of a [`FakeClock`][aiostep.testing.FakeClock]; ``cancel()`` stops it."""

    __slots__ = ("_args", "_callback", "_cancelled", "_fired", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.when = when
        self._callback = callback
        self._args = args
        self._cancelled = False
        self._fired = False

    def cancel(self) -> None:
        """Stop the timer; no effect if it already fired."""
        self._cancelled = True

    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called before it fired."""
        return self._cancelled

    @property
    def pending(self) -> bool:
        """Whether it will still fire."""
        return not (self._cancelled or self._fired)

    def _run(self) -> None:
        self._fired = True
        self._callback(*self._args)

    def __repr__(self) -> str:
        state = "pending" if self.pending else "cancelled" if self._cancelled else "fired"
        return f"<FakeTimer at {self.when} {state} {self._callback!r}>"


class FakeClock:
    """A `aiostep.clock.Clock` whose time moves only on
    [`advance`][aiostep.testing.FakeClock.advance].

    Args:
        start: the initial time, in epoch seconds (a fixed default keeps tests repeatable).

    Use as a context manager to install it and restore the previous clock on exit:

    ```python
    with FakeClock() as clock:
        ...
        await clock.advance(60)
    ```
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()
        self._hooks: list[SettleHook] = []
        self._previous: list[Clock] = []

    # --- Clock protocol ----------------------------------------------------------------------

    def now(self) -> float:
        """The fake current time in epoch seconds."""
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> FakeTimer:
        """Run ``callback(*args)`` when the clock has been advanced by ``delay`` seconds."""
        timer = FakeTimer(self._now + max(delay, 0.0), callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        return timer

    # --- control -----------------------------------------------------------------------------

    @property
    def timers(self) -> list[FakeTimer]:
        """The timers that will still fire, soonest first."""
        return [timer for _, _, timer in sorted(self._timers) if timer.pending]

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in order.

        Each timer runs at its own due time (``now()`` returns it during the callback); after
        each one the settle hooks (the simulators using this clock) wait until the bot is idle,
        so a timer armed by that reaction also fires if it is due within ``seconds``.

        Raises:
            ValueError: ``seconds`` is negative.
            Exception: whatever a timer callback raised (the remaining timers stay scheduled).
        """
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards (advance({seconds}))")
        target = self._now + seconds
        for _ in range(_MAX_FIRINGS):
            timer = self._pop_due(target)
            if timer is None:
                break
            self._now = max(self._now, timer.when)
            before = asyncio.all_tasks()
            timer._run()
            await self._settle(asyncio.all_tasks() - before)
        else:
            raise RuntimeError(
                f"more than {_MAX_FIRINGS} timers fired in one advance(); a timer keeps "
                "re-arming itself with no delay"
            )
        self._now = target
        await self._settle(set())

    def cancel_all(self) -> None:
        """Cancel every pending timer (what a process restart does to its timers)."""
        for _, _, timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def add_settle_hook(self, hook: SettleHook) -> None:
        """Run ``hook`` after each timer fires (and once at the end of
        [`advance`][aiostep.testing.FakeClock.advance])."""
        self._hooks.append(hook)

    def remove_settle_hook(self, hook: SettleHook) -> None:
        """Stop running ``hook``; no effect if it is not registered."""
        if hook in self._hooks:
            self._hooks.remove(hook)

    def install(self) -> FakeClock:
        """Make this the clock aiostep reads (``aiostep.clock.set_clock``); return ``self``."""
        self._previous.append(get_clock())
        set_clock(self)
        return self

    def uninstall(self) -> None:
        """Restore the clock that was in use before
        [`install`][aiostep.testing.FakeClock.install]."""
        set_clock(self._previous.pop() if self._previous else None)

    def __enter__(self) -> FakeClock:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        return f"<FakeClock now={self._now} timers={len(self.timers)}>"

    # --- internals ---------------------------------------------------------------------------

    def _pop_due(self, target: float) -> FakeTimer | None:
        while self._timers and self._timers[0][0] <= target:
            _, _, timer = heapq.heappop(self._timers)
            if timer.pending:
                return timer
        return None

    async def _settle(self, spawned: set[asyncio.Task[Any]]) -> None:
        if self._hooks:
            for hook in list(self._hooks):
                await hook(spawned)
        else:
            # No simulator: give callbacks' consequences a few loop turns to run.
            for _ in range(5):
                await asyncio.sleep(0)
