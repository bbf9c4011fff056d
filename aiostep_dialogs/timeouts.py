"""Wizard timeouts and reminders, compiled onto aiostep's persisted step deadlines.

A step with a ``timeout`` or ``remind_after`` is registered with a deadline: the next moment
something is due (a reminder, else the timeout), fired by aiostep's
[`Scheduler`][aiostep.Scheduler] with no update, after a restart and on one worker of many.
The record stays small: the one deadline, plus, for a step with reminders, when the step was
asked (``"t0"``) and how many reminders were sent (``"r"``) in the step's kwargs. A reminder
re-parks the step with the same ``t0`` (the timeout does not move); an answer parks it afresh.
A step without either stores nothing more and costs nothing more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiogram import Bot

import aiostep
from aiostep.clock import get_clock
from aiostep.keys import ConversationKey
from aiostep.storage import StateContext

if TYPE_CHECKING:
    from aiostep_dialogs.spec import StepSpec
    from aiostep_dialogs.wizard import Wizard

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
    else:
        given = list(remind_after)
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


def timings_of(cls: type[Wizard], specs: Iterable[StepSpec]) -> dict[str, Timing]:
    """The timing of each step of ``cls`` that has one: the step's own, else the wizard's.

    Resolved once, when the class is defined."""
    default = timing(cls.__qualname__, cls.timeout, cls.remind_after)
    found: dict[str, Timing] = {}
    for spec in specs:
        where = f"{cls.__qualname__}.{spec.method.__name__}"
        own = timing(where, spec.timeout, spec.remind_after)
        if own is not None and default is not None:
            # a step may set only one of the two: the other comes from the wizard (the
            # wizard's reminders that would come after a shorter step timeout are left out)
            limit = own.timeout if spec.timeout is not None else default.timeout
            inherited = tuple(r for r in default.reminders if limit is None or r < limit)
            own = timing(
                where,
                spec.timeout if spec.timeout is not None else default.timeout,
                spec.remind_after if spec.remind_after is not None else inherited,
            )
        chosen = own if own is not None else default
        if chosen is not None:
            found[spec.state.name] = chosen
    return found


def park_options(
    wizard: Wizard, spec: StepSpec, wake: tuple[float, int] | None
) -> tuple[float | None, dict[str, Any]]:
    """The ``timeout`` to register ``spec`` with and what its kwargs add: a step asked now,
    or (``wake``: its ``t0`` and the reminders sent) one re-parked by a reminder."""
    found = wizard._timing.get(spec.state.name)
    if found is None:
        return None, {}
    now = get_clock().now()
    t0, sent = wake if wake is not None else (now, 0)
    due = found.next_due(t0, sent)
    extra: dict[str, Any] = {"t0": t0, "r": sent} if found.reminders else {}
    if due is None:
        return None, extra
    return max(due - now, 0.001), extra


def compile_tick(cls: type[Wizard]) -> Callable[..., Any]:
    """The registered ``on_timeout`` of the wizard's steps: send the reminder that is due, or
    time the step out (``on_timeout``)."""

    async def on_deadline(
        bot: Bot, conversation: ConversationKey, step_context: StateContext
    ) -> None:
        wizard = cls._restore(step_context, conversation, bot, None)
        if wizard is None:
            return
        ctx = aiostep.current_update.get()
        by_update = ctx is not None and ctx.event is not None
        # handler data: the update's, else what the scheduler has (the Dispatcher's
        # workflow data and the bot), so prompts and hooks that ask for ``db`` still get it
        wizard.middleware_data = ctx.data if ctx is not None else {"bot": bot}
        await wizard._settle()
        spec = wizard._spec()
        meta = step_context.kwargs
        found = cls._timing.get(spec.state.name)
        sent, t0 = meta.get("r"), meta.get("t0")
        if (
            found is not None
            and isinstance(sent, int)
            and isinstance(t0, (int, float))
            and sent < len(found.reminders)
            and not found.timed_out(float(t0), get_clock().now())
        ):
            # after a restart several reminders may be overdue: one is sent, for all of them
            wizard._wake = (float(t0), found.sent_by(float(t0), get_clock().now(), sent + 1))
            if by_update:  # an answer that came just as the reminder was due needs none
                await wizard._park(spec)
                return
            # the prompt again, as a new message under the reminder (in one-message mode the
            # old prompt loses its keyboard, as after a typed answer, and the new id is stored)
            text = spec.reminder if spec.reminder is not None else cls.texts.reminder
            await wizard._park_and_prompt(spec, error=text)
            return
        await wizard._time_out()

    on_deadline.__qualname__ = f"{cls.__qualname__}.<deadline>"
    return on_deadline


def describe(value: float) -> str:
    """A duration for a diagram: ``90`` -> ``"1m30s"``."""
    total = round(value)
    if total < 60:
        return f"{value:g}s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs else "")
