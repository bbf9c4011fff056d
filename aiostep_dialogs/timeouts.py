"""Wizard timeouts and reminders, compiled onto aiostep's persisted step deadlines.

A step with a ``timeout`` or ``remind_after`` is registered with a deadline: the next moment
something is due (a reminder, else the timeout), fired by aiostep's
[`Scheduler`][aiostep.Scheduler] with no update, after a restart and on one worker of many.
The record stays small: the one deadline, plus, for a step with reminders, when the step was
asked (``"t0"``) and how many reminders were sent (``"r"``) in the step's kwargs. A reminder
re-parks the step with the same ``t0`` (the timeout does not move); an answer parks it afresh.
A step without either stores nothing more and costs nothing more.

This module holds what is declared (durations, a step's `Timing`); the deadline's step is
compiled by `aiostep_dialogs.runtime.compile_tick`, and the timings of a class by
`aiostep_dialogs.compiling.timings_of`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

__all__ = ["Duration", "Timing", "describe", "seconds"]

#: A duration: seconds, or a ``timedelta``.
Duration = float | int | timedelta

#: The suffix of the step every wizard registers for its deadlines (``"<wizard>:~timeout"``).
TICK = "~timeout"


def seconds(value: Duration | None, where: str) -> float | None:
    """``value`` in seconds (``None`` stays ``None``).

    Raises:
        TypeError: neither a number nor a ``timedelta``, naming ``where``.
        ValueError: not positive and finite, naming ``where``.
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    else:
        raise TypeError(
            f"{where} must be seconds or a timedelta, got {type(value).__name__}: {value!r}"
        )
    if not (result > 0 and math.isfinite(result)):
        raise ValueError(f"{where} must be a positive, finite duration, got {value!r}")
    return result


@dataclass(frozen=True)
class Timing:
    """When a step times out and reminds, in seconds after it was asked."""

    timeout: float | None
    reminders: tuple[float, ...]

    def timed_out(self, t0: float, now: float) -> bool:
        """Whether a step asked at ``t0`` has timed out by ``now``."""
        return self.timeout is not None and now >= t0 + self.timeout

    def sent_by(self, t0: float, now: float, at_least: int) -> int:
        """How many reminders are due by ``now`` (at least ``at_least``)."""
        due = sum(1 for r in self.reminders if t0 + r <= now)
        return max(due, at_least)

    def next_due(self, t0: float, sent: int) -> float | None:
        """When the next thing is due for a step asked at ``t0`` that sent ``sent`` reminders."""
        if sent < len(self.reminders):
            return t0 + self.reminders[sent]
        return None if self.timeout is None else t0 + self.timeout


def timing(
    owner: str,
    timeout: Duration | None,
    remind_after: Duration | Iterable[Duration] | None,
) -> Timing | None:
    """The checked timing of a step or a wizard (``None``: neither is set).

    Raises:
        TypeError, ValueError: a bad duration, or a reminder not before the timeout,
            naming ``owner``.
    """
    total = seconds(timeout, f"{owner}: timeout")
    if remind_after is None:
        given: list[Duration] = []
    elif isinstance(remind_after, (int, float, timedelta)):
        given = [remind_after]
    elif isinstance(remind_after, Iterable) and not isinstance(remind_after, (str, bytes)):
        given = list(remind_after)
    else:  # "30" is not a list of "3" and "0": refused whole, naming it
        seconds(cast("Duration", remind_after), f"{owner}: remind_after")
        given = []  # pragma: no cover - seconds() raised
    reminders = tuple(
        sorted(seconds(r, f"{owner}: remind_after[{i}]") or 0.0 for i, r in enumerate(given))
    )
    if total is not None and reminders and reminders[-1] >= total:
        raise ValueError(
            f"{owner}: remind_after={reminders[-1]:g}s is not before timeout={total:g}s; a "
            "reminder after the timeout would never be sent"
        )
    if total is None and not reminders:
        return None
    return Timing(total, reminders)


def describe(value: float) -> str:
    """A duration for a diagram: ``90`` -> ``"1m30s"``."""
    total = round(value)
    if total < 60:
        return f"{value:g}s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs else "")
