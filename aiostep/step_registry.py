"""Named step functions: what a persistent storage may point at.

A persisted next step is stored as a *name*; it resolves only through a
[`StepRegistry`][aiostep.StepRegistry] filled at import time by
[`persisted_step`][aiostep.persisted_step], never through an import path read from storage.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_UPDATES",
    "RegisteredStep",
    "StepRegistry",
    "StepResolver",
    "registry",
    "step",
]

F = TypeVar("F", bound=Callable[..., Any])

#: ``resolver(name, record)``: the step to run for a stored ``name`` that has no registration
#: (``record`` is the conversation's stored record, an `aiostep.storage.StateContext`), or
#: ``None`` to leave it unresolved. (The storage layer imports this module, so the record's
#: class is not named here.)
StepResolver = Callable[[str, Any], "RegisteredStep | None"]

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
        how = (self.updates, self.allow_commands, self.filter is not None)
        marker = _markers.get(how)
        if marker is None:
            tags = list(self.updates)
            if self.allow_commands:
                tags.append("command")
            if self.filter is not None:
                tags.append("filter")
            if len(_markers) >= 256:  # per-call prefixes (``callback_query=vote:7``) are unbounded
                _markers.clear()
            # one string per way of accepting, shared by every record that stores it
            marker = _markers[how] = sys.intern("," + ",".join(tags) + ",")
        return marker


# built once per way of accepting updates (a handful per bot), not on every registration
_markers: dict[tuple[tuple[str, ...], bool, bool], str] = {}


class StepRegistry:
    """Maps step names to functions; a name is registered once per registry.

    Args:
        parent: a registry asked for what this one does not register (a Dispatcher's own
            registry over the process-wide one that
            [`persisted_step`][aiostep.persisted_step] fills at import). A name registered
            here costs one lookup, as with no parent.
    """

    def __init__(self, parent: StepRegistry | None = None) -> None:
        #: the registry asked for names (and functions) this one does not register
        self.parent = parent
        self._by_name: dict[str, RegisteredStep] = {}
        self._by_callback: dict[Any, RegisteredStep] = {}
        self._resolvers: dict[str, StepResolver] = {}
        self._resolver_order: list[str] = []

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
        """The step registered as ``name`` (here, else in the parent), or ``None``."""
        entry = self._by_name.get(name)
        if entry is None and self.parent is not None:
            return self.parent.get(name)
        return entry

    def add_resolver(self, prefix: str, resolver: StepResolver) -> None:
        """Let ``resolver`` supply the step of a stored name that starts with ``prefix`` and
        is not registered (a step renamed or removed by a deploy, while conversations were
        still pending on it).

        [`resolve`][aiostep.StepRegistry.resolve] asks it only when the exact name is not
        registered, so a registered name costs what it did. A second resolver for the same
        prefix replaces the first. [`Listen`][aiostep.Listen] resolves every stored name
        this way; a resolver that returns ``None`` leaves the name unresolved (the pending
        step is logged and cleared, and the update goes to the normal handlers).

        Args:
            prefix: the names it is asked about (``""``: every unregistered name). Longer
                prefixes are asked first.
            resolver: ``resolver(name, record) -> RegisteredStep | None``, given the stored
                name and the conversation's stored record; it must not block (no I/O).
        """
        if not isinstance(prefix, str):
            raise ValueError(f"resolver prefix must be a string, got {prefix!r}")
        self._resolvers[prefix] = resolver
        self._resolver_order = sorted(self._resolvers, key=len, reverse=True)

    def remove_resolver(self, prefix: str) -> None:
        """Forget the resolver added for ``prefix`` (no error if there is none)."""
        if self._resolvers.pop(prefix, None) is not None:
            self._resolver_order = sorted(self._resolvers, key=len, reverse=True)

    def resolve(self, name: str, record: Any) -> RegisteredStep | None:
        """The step to run for the stored ``name`` of ``record`` (the conversation's stored
        `aiostep.storage.StateContext`): the one registered under
        ``name``, else the first answer of a resolver whose prefix ``name`` starts with
        (longest prefix first), else ``None``. With a parent: a name registered there comes
        before this registry's resolvers, and the parent's resolvers after them."""
        entry = self._by_name.get(name)
        if entry is not None:
            return entry
        parent = self.parent
        if parent is not None:
            entry = parent.get(name)
            if entry is not None:
                return entry
        for prefix in self._resolver_order:
            if name.startswith(prefix):
                found = self._resolvers[prefix](name, record)
                if found is not None:
                    return found
        return None if parent is None else parent.resolve(name, record)

    def find(self, callback: Any) -> RegisteredStep | None:
        """The registration of ``callback`` (a function or a registered name), or ``None``."""
        if isinstance(callback, str):
            return self.get(callback)
        try:
            entry = self._by_callback.get(callback)
        except TypeError:  # unhashable callable
            return None
        if entry is None and self.parent is not None:
            return self.parent.find(callback)
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or (self.parent is not None and name in self.parent)

    def __len__(self) -> int:
        return len(self._by_name)


#: The process-wide registry that [`persisted_step`][aiostep.persisted_step] fills and
#: [`Listen`][aiostep.Listen] reads.
registry = StepRegistry()
_default = registry


def persisted_step(
    name: str | None = None,
    *,
    filter: Any = None,
    allow_commands: bool = False,
    updates: Iterable[str] = DEFAULT_UPDATES,
    registry: StepRegistry | None = None,
) -> Callable[[F], F]:
    """Register a function as a named next step, so it can be persisted and found after a restart.

    (Not the Wizard's [`aiostep_dialogs.step`][aiostep_dialogs.step], which declares a step of
    a wizard class.)

    Example:
        ```python
        @aiostep.persisted_step("signup.ask_age")
        async def ask_age(message: Message, name: str) -> None: ...
        ```
    """
    target = registry if registry is not None else _default

    def decorator(fn: F) -> F:
        target.register(fn, name, filter=filter, allow_commands=allow_commands, updates=updates)
        return fn

    return decorator


def step(
    name: str | None = None,
    *,
    filter: Any = None,
    allow_commands: bool = False,
    updates: Iterable[str] = DEFAULT_UPDATES,
    registry: StepRegistry | None = None,
) -> Callable[[F], F]:
    """Deprecated name of [`persisted_step`][aiostep.persisted_step] (0.4), too easily confused
    with the Wizard's `aiostep_dialogs.step`; it still works and warns."""
    warnings.warn(
        "aiostep.step is now aiostep.persisted_step (the Wizard's step is aiostep_dialogs.step)",
        DeprecationWarning,
        stacklevel=2,
    )
    return persisted_step(
        name, filter=filter, allow_commands=allow_commands, updates=updates, registry=registry
    )
