"""What a step method, hook or callable asks for by name, resolved once when the class is defined.

A wizard's step methods, hooks (`on_start`, `on_finish`, ...), prompt callables and choice
callables may declare, after their own arguments, any name from the update's handler data, the
way aiogram handlers do: `bot`, `event_from_user`, `state`, what a middleware put there, or what
the Dispatcher was given (`dp["db"] = db`, `Dispatcher(db=db)`, `start_polling(bot, db=db)`).
Their signatures are read here once, at class definition; per update, a callable that asks for
nothing is called as it is, with no lookup.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NOTHING", "Needs", "needs_of"]

_BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True, slots=True)
class Needs:
    """The handler-data names a callable asks for, beyond its own leading arguments."""

    #: what must be in the handler data (no default value)
    required: tuple[str, ...] = ()
    #: what is passed when present (the parameter has a default)
    optional: tuple[str, ...] = ()
    #: it takes `**kwargs`: everything in the handler data is passed
    everything: bool = False
    #: the callable's name, for errors
    owner: str = ""

    def __bool__(self) -> bool:
        return bool(self.required or self.optional or self.everything)

    def kwargs(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments to call with, out of the update's handler ``data``.

        Raises:
            TypeError: a required name is not in ``data``; the message lists what is there.
        """
        try:
            found = {name: data[name] for name in self.required}
        except KeyError as exc:
            missing = exc.args[0]
            available = ", ".join(sorted(k for k in data if not k.startswith("aiostep_")))
            raise TypeError(
                f"{self.owner} asks for {missing!r}, which is not in this update's handler "
                f"data: put it there (dp[{missing!r}] = ..., Dispatcher({missing}=...), or a "
                "middleware), or give the parameter a default. The data has: "
                f"{available or 'nothing'}"
            ) from None
        if self.everything:  # the names checked above come with the rest
            return dict(data)
        for name in self.optional:
            if name in data:
                found[name] = data[name]
        return found


#: A callable that asks for nothing from the handler data.
NOTHING = Needs()


def needs_of(fn: Callable[..., Any], leading: int, *, owner: str = "") -> Needs:
    """What ``fn`` asks for by name beyond its first ``leading`` positional parameters.

    ``leading`` counts ``self`` and the arguments the wizard passes itself (a step method's
    ``value``). Positional-only parameters past them cannot be filled by name:

    Raises:
        TypeError: a parameter past the leading ones is positional-only or `*args`.
    """
    name = owner or getattr(fn, "__qualname__", repr(fn))
    try:
        params = list(inspect.signature(inspect.unwrap(fn)).parameters.values())
    except (TypeError, ValueError):
        return NOTHING  # a builtin or C callable: called with its own arguments only
    required: list[str] = []
    optional: list[str] = []
    everything = False
    positional_seen = 0
    for param in params:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            everything = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            if positional_seen < leading:
                positional_seen = leading  # *args swallows the leading arguments
            continue
        if param.kind is not inspect.Parameter.KEYWORD_ONLY and positional_seen < leading:
            positional_seen += 1
            continue
        if param.kind not in _BY_NAME:
            raise TypeError(
                f"{name}: parameter {param.name!r} is positional-only, so it cannot be filled "
                "from the handler data by name; drop the '/' from the signature"
            )
        (optional if param.default is not inspect.Parameter.empty else required).append(param.name)
    return Needs(tuple(required), tuple(optional), everything, name)


async def call(fn: Callable[..., Any], needs: Needs, data: Mapping[str, Any], *args: Any) -> Any:
    """Call ``fn(*args, **what it needs from data)`` and await the result if it is awaitable."""
    result = fn(*args, **needs.kwargs(data)) if needs else fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
