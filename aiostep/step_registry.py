"""Named step functions: what a persistent storage may point at.

A persisted next step is stored as a *name*; it resolves only through a
[`StepRegistry`][aiostep.StepRegistry] filled at import time by [`step`][aiostep.step], never
through an import path read from storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["DEFAULT_UPDATES", "RegisteredStep", "StepRegistry", "registry", "step"]

F = TypeVar("F", bound=Callable[..., Any])

#: Update kinds a waiter or step accepts when it does not say otherwise.
DEFAULT_UPDATES: tuple[str, ...] = ("message",)
KNOWN_UPDATES = frozenset({"message", "edited_message", "callback_query"})


def check_updates(updates: Iterable[str]) -> tuple[str, ...]:
    """Validate a collection of update kinds and return it as a tuple.

    ``"callback_query=PREFIX"`` stands for the button presses whose callback data starts
    with ``PREFIX`` (other buttons go to their handlers).
    """
    if isinstance(updates, str):
        updates = (updates,)
    result = tuple(updates)
    unknown = [
        u
        for u in result
        if u not in KNOWN_UPDATES
        and not (u.startswith("callback_query=") and "," not in u and len(u) > 15)
    ]
    if unknown or not result:
        raise ValueError(
            f"updates={result!r}: each must be one of {sorted(KNOWN_UPDATES)} (at least one)"
        )
    return result


@dataclass(frozen=True)
class RegisteredStep:
    """A step function registered under a stable name, with how it accepts updates."""

    name: str
    callback: Callable[..., Any]
    filter: Any = None
    allow_commands: bool = False
    updates: tuple[str, ...] = field(default=DEFAULT_UPDATES)

    def accepts(self) -> str:
        """The ``accepts`` marker stored with a pending step (read by storages' claim logic)."""
        tags = list(self.updates)
        if self.allow_commands:
            tags.append("command")
        if self.filter is not None:
            tags.append("filter")
        return "," + ",".join(tags) + ","


class StepRegistry:
    """Maps step names to functions; a name is registered once per process."""

    def __init__(self) -> None:
        self._by_name: dict[str, RegisteredStep] = {}
        self._by_callback: dict[Any, RegisteredStep] = {}

    def register(
        self,
        callback: Callable[..., Any],
        name: str | None = None,
        *,
        filter: Any = None,
        allow_commands: bool = False,
        updates: Iterable[str] = DEFAULT_UPDATES,
        replace: bool = False,
    ) -> RegisteredStep:
        """Register ``callback`` under ``name`` (default ``module.qualname``).

        Raises:
            ValueError: the name is already taken by another function and ``replace`` is false.
        """
        if name is None:
            name = f"{callback.__module__}.{callback.__qualname__}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"step name must be a non-empty string, got {name!r}")
        existing = self._by_name.get(name)
        if existing is not None and existing.callback is not callback and not replace:
            raise ValueError(
                f"step name {name!r} is already registered for {existing.callback!r}; "
                "choose another name or pass replace=True"
            )
        entry = RegisteredStep(
            name=name,
            callback=callback,
            filter=filter,
            allow_commands=allow_commands,
            updates=check_updates(updates),
        )
        if existing is not None:
            self._by_callback.pop(existing.callback, None)
        self._by_name[name] = entry
        self._by_callback[callback] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Forget the step registered as ``name`` (no error if there is none)."""
        entry = self._by_name.pop(name, None)
        if entry is not None:
            self._by_callback.pop(entry.callback, None)

    def get(self, name: str) -> RegisteredStep | None:
        """The step registered as ``name``, or ``None``."""
        return self._by_name.get(name)

    def find(self, callback: Any) -> RegisteredStep | None:
        """The registration of ``callback`` (a function or a registered name), or ``None``."""
        if isinstance(callback, str):
            return self._by_name.get(callback)
        try:
            return self._by_callback.get(callback)
        except TypeError:  # unhashable callable
            return None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self._by_name)


#: The process-wide registry that [`step`][aiostep.step] fills and [`Listen`][aiostep.Listen] reads.
registry = StepRegistry()
_default = registry


def step(
    name: str | None = None,
    *,
    filter: Any = None,
    allow_commands: bool = False,
    updates: Iterable[str] = DEFAULT_UPDATES,
    registry: StepRegistry | None = None,
) -> Callable[[F], F]:
    """Register a function as a named next step, so it can be persisted and found after a restart.

    Example:
        ```python
        @aiostep.step("signup.ask_age")
        async def ask_age(message: Message, name: str) -> None: ...
        ```
    """
    target = registry if registry is not None else _default

    def decorator(fn: F) -> F:
        target.register(fn, name, filter=filter, allow_commands=allow_commands, updates=updates)
        return fn

    return decorator
