"""What a Wizard subclass is checked and compiled into when it is defined: the checks that
refuse a declaration the runtime could not run (each a `TypeError` or `ValueError` naming the
fix), the timings of its steps, its request buttons. Run once per class, by
`Wizard.__init_subclass__`; nothing here runs per update.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Iterable, Mapping

from aiogram import Bot

from aiostep.keys import ConversationKey
from aiostep_dialogs.media import CAPTION_LIMIT, static_caption_length
from aiostep_dialogs.requests import CompiledRequest, compile_request, request_kind
from aiostep_dialogs.running import RunningWizard
from aiostep_dialogs.sources import call_then_names, returned_names
from aiostep_dialogs.spec import _HOOKS, StepSpec
from aiostep_dialogs.timeouts import Timing, timing


def _reserved_names(base: type[RunningWizard]) -> frozenset[str]:
    """Every name the Wizard runtime itself uses on a wizard: the base class's attributes
    and options, and what ``__init__`` sets on an instance. A step method named so would
    replace it."""
    probe = base(key=ConversationKey(0, 0, None, 0), bot=Bot.__new__(Bot))
    declared = {name for klass in base.__mro__ for name in vars(klass).get("__annotations__", ())}
    return frozenset(dir(base)) | frozenset(declared) | frozenset(vars(probe))


def _check_step_method(
    cls: type[RunningWizard],
    klass: type,
    attr: str,
    spec: StepSpec,
    declared: dict[enum.Enum, str],
    reserved: frozenset[str],
) -> None:
    """Refuse, at class definition, a step method the runtime could not use as declared."""
    where = f"{cls.__qualname__}.{attr}" if klass is cls else f"{klass.__qualname__}.{attr}"
    if attr in _HOOKS:
        raise TypeError(
            f"{where}: {attr} is a Wizard hook, not a step: override it without @step, and "
            f"give the step for {spec.state!r} another name"
        )
    if attr in reserved:
        raise TypeError(
            f"{where}: the step for {spec.state!r} is named {attr!r}, which the Wizard "
            "runtime itself uses (a method, option or attribute of every wizard); rename the "
            "step method"
        )
    if spec.state in declared:
        raise TypeError(
            f"{where}: {klass.__qualname__} declares two steps for {spec.state!r} "
            f"({declared[spec.state]} and {attr}); keep one, or declare the other for "
            "another state"
        )
    if not inspect.iscoroutinefunction(spec.method):
        raise TypeError(
            f"{where}: a step method must be `async def` (it is awaited with the user's "
            f"answer); write `async def {attr}(self, value)`"
        )


def _check_targets(
    cls: type[RunningWizard], state_enum: type[enum.Enum], specs: list[StepSpec]
) -> None:
    """Refuse a step whose ``branches=``, or a ``State.X`` its source returns, names a state
    without a step: the wizard would fail only when a user got there."""
    with_step = {s.state.name for s in specs}
    for spec in specs:
        name = spec.method.__name__
        for target in spec.branches:
            if not isinstance(target, state_enum):
                raise TypeError(
                    f"{cls.__qualname__}.{name}: branches= names {target!r}, which is not a "
                    f"member of {cls.__qualname__}.State"
                )
        named = [t.name for t in spec.branches] + [
            n
            for n in returned_names(spec.method) + call_then_names(spec.method)
            if n in state_enum.__members__
        ]
        for target_name in named:
            if target_name not in with_step:
                raise TypeError(
                    f"{cls.__qualname__}.{name} can go to State.{target_name}, which has no "
                    f"@step: declare a step for State.{target_name}, or go to another state"
                )


def _check_drift_options(cls: type[RunningWizard], state_enum: type[enum.Enum]) -> dict[str, str]:
    """Refuse, at class definition, ``renamed``/``fallback``/``schema_version`` values a
    redeploy could not use; return ``renamed`` as old name -> new name."""
    where = cls.__qualname__
    version = cls.schema_version
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise TypeError(f"{where}.schema_version must be an int from 1, got {version!r}")
    if cls.fallback is not None and not (
        isinstance(cls.fallback, state_enum) and cls.fallback.name in cls._by_state
    ):
        raise TypeError(
            f"{where}.fallback is {cls.fallback!r}: name a member of {where}.State that has "
            "a @step (or leave it None)"
        )
    if not isinstance(cls.renamed, Mapping):
        raise TypeError(f"{where}.renamed must be a dict {{'OLD_NAME': State.NEW}}")
    renamed: dict[str, str] = {}
    for old, new in cls.renamed.items():
        if not isinstance(new, state_enum) or new.name not in cls._by_state:
            raise TypeError(
                f"{where}.renamed[{old!r}] is {new!r}: name a member of {where}.State that has "
                "a @step"
            )
        if not isinstance(old, str) or not old or old in cls._by_state:
            raise TypeError(
                f"{where}.renamed has the key {old!r}: give the old state name, as a string, "
                "of a state that has no step any more"
            )
        renamed[old] = new.name
    return renamed


def check_captions(owner: str, specs: Iterable[StepSpec]) -> None:
    """Refuse, at class definition, a media prompt whose static text is longer than a
    caption may be.

    Raises:
        ValueError: naming the step, the length and the limit.
    """
    for spec in specs:
        if spec.media is None:
            continue
        length = static_caption_length(spec.prompt)
        if length is not None and length > CAPTION_LIMIT:
            raise ValueError(
                f"{owner}.{spec.method.__name__}: the prompt is the caption of a "
                f"{spec.media.kind}, and it is {length} characters long; Telegram takes at "
                f"most {CAPTION_LIMIT}: shorten it, or send the long text as a message of its "
                "own (in on_start or the previous step)"
            )


def timings_of(cls: type[RunningWizard], specs: Iterable[StepSpec]) -> dict[str, Timing]:
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


def requests_of(cls: type[RunningWizard], specs: Iterable[StepSpec]) -> dict[str, CompiledRequest]:
    """The compiled request button of each step of ``cls`` that asks for one."""
    return {
        s.state.name: compile_request(
            s.request,
            cls._step_name(s),
            s.request_label or getattr(cls.texts, f"request_{request_kind(s.request)}"),
            cls.texts.use_button,
        )
        for s in specs
        if s.request is not None
    }
