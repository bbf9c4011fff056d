"""Checks of numeric options (seconds, counts) where they are given, so a bad value is refused
naming the option instead of failing later inside an update."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["count_option", "seconds_option"]


def seconds_option(name: str, value: Any, *, zero: bool = False) -> float:
    """``value`` as seconds, for the option ``name``: a finite number, positive (or, with
    ``zero``, non-negative).

    Raises:
        TypeError: not a number (a ``bool`` is not one here).
        ValueError: not finite, negative, or zero without ``zero``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds, got {type(value).__name__}: {value!r}"
        )
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        sign = "non-negative" if zero else "positive"
        raise ValueError(f"{name} must be a {sign}, finite number, got {value!r} (seconds)")
    return float(value)


def count_option(name: str, value: Any) -> int:
    """``value`` as a count of at least 1, for the option ``name``.

    Raises:
        TypeError: not an ``int`` (a ``bool`` is not one here).
        ValueError: below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value!r}")
    return value
