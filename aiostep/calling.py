"""Calling users' callbacks and filters the way aiogram calls handlers, minus the thread hop.

aiogram runs synchronous callables through ``asyncio.to_thread``; aiostep calls them directly
(they are expected to be quick) and awaits whatever is awaitable.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Mapping
from types import CodeType, CoroutineType, FunctionType
from typing import Any

from aiogram.filters.base import Filter
from magic_filter import MagicFilter

__all__ = ["call_with_context", "check_filter", "filter_result"]

_ACCEPTED = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)
# Weak keys: a filter or step made per conversation (a closure) must not outlive it.
# Plain functions by their code object (bounded by the ``def``s of the program).
_by_code: dict[CodeType, tuple[tuple[str, ...], tuple[str, ...], bool]] = {}
_signatures: weakref.WeakKeyDictionary[Any, tuple[tuple[str, ...], tuple[str, ...], bool]] = (
    weakref.WeakKeyDictionary()
)


def _params(fn: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(parameter names, positional parameter names in order, takes **kwargs) of ``fn``."""
    if type(fn) is FunctionType:
        attrs = fn.__dict__
        if "__wrapped__" not in attrs and "__signature__" not in attrs:
            # a plain function's parameters are its code's: one entry per ``def`` (closures
            # made per conversation share it), found without making a weak reference
            code = fn.__code__
            found = _by_code.get(code)
            if found is None:
                found = _by_code[code] = _signature_of(fn)
            return found
    try:
        return _signatures[fn]
    except (KeyError, TypeError):
        pass
    found = _signature_of(fn)
    with contextlib.suppress(TypeError):  # an unhashable or unweakrefable one is not cached
        _signatures[fn] = found
    return found


def _signature_of(fn: Callable[..., Any]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    try:
        sig = inspect.signature(inspect.unwrap(fn))
    except (TypeError, ValueError):
        return ((), (), True)
    params = list(sig.parameters.values())
    names = tuple(p.name for p in params if p.kind in _ACCEPTED)
    positional = tuple(p.name for p in params if p.kind in _ACCEPTED[:2])
    varkw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return (names, positional, varkw)


async def call_with_context(
    fn: Callable[..., Any],
    *args: Any,
    context: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """Call ``fn(*args, **kw)`` where ``kw`` is what ``fn`` asks for by name out of ``context``
    and ``extra`` (``extra`` wins: it is looked up first, so the two need not be merged).

    Like an aiogram handler, a callback may take ``bot``, ``state``, ``event_from_user`` or any
    middleware data; a ``**kwargs`` parameter receives everything.
    """
    names, positional, varkw = _params(fn)
    given = positional[: len(args)] if args else ()
    if varkw:
        if extra:
            context = {**context, **extra}
        if any(name in context for name in given):
            result = fn(*args, **{k: v for k, v in context.items() if k not in given})
        else:
            result = fn(*args, **context)  # everything, and nothing passed twice
    else:
        kw: dict[str, Any] = {}
        if extra:
            for k in names:
                if k in given:
                    continue
                if k in extra:
                    kw[k] = extra[k]
                elif k in context:
                    kw[k] = context[k]
        else:
            for k in names:
                if k in context and k not in given:
                    kw[k] = context[k]
        result = fn(*args, **kw)
    if type(result) is CoroutineType or inspect.isawaitable(result):
        return await result
    return result


async def check_filter(flt: Any, event: Any, context: Mapping[str, Any]) -> bool:
    """Whether ``event`` passes ``flt``: an aiogram magic filter (``F.text``), an aiogram
    ``Filter``, or a sync/async callable taking the event (and context by name)."""
    return bool(await filter_result(flt, event, context))


async def filter_result(flt: Any, event: Any, context: Mapping[str, Any]) -> Any:
    """What ``flt`` answers for ``event`` (truthy: it passes). As in aiogram, a ``dict`` is
    data for the handler (``Command`` gives ``command``, ``F.text.regexp(...).as_("m")``
    gives ``m``); ``True`` when there is no filter."""
    if flt is None:
        return True
    if isinstance(flt, MagicFilter):
        return flt.resolve(event)
    if isinstance(flt, Filter):
        return await call_with_context(flt.__call__, event, context=context)
    return await call_with_context(flt, event, context=context)
