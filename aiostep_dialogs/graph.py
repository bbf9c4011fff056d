"""Describe a Wizard as a Mermaid flowchart: states, declaration-order edges, branches, calls
of other wizards (``self.call``, ``self.goto(Other)``), reminders and timeouts, and the
navigation commands (``/back``, ``/cancel``, ``/skip``)."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from aiostep_dialogs.i18n import DEFAULT_LOCALE, LazyProxy, localize
from aiostep_dialogs.running import is_wizard_class
from aiostep_dialogs.sources import call_then_names, returned_names
from aiostep_dialogs.spec import overrides_hook
from aiostep_dialogs.timeouts import describe

if TYPE_CHECKING:
    from aiostep_dialogs.running import RunningWizard
    from aiostep_dialogs.spec import StepSpec

__all__ = [
    "WizardCall",
    "branch_targets",
    "call_then_names",
    "called_wizards",
    "returned_names",
    "to_mermaid",
]


class WizardCall(NamedTuple):
    """A wizard a step calls (``kind="call"``) or jumps to (``kind="goto"``), as found in the
    step method's source; ``then`` is the state name a call's ``then=`` names, if any."""

    kind: str
    wizard: type[RunningWizard]
    then: str | None


def branch_targets(wizard: type[RunningWizard], spec: StepSpec) -> list[str]:
    """State names a step can jump to: its ``branches=`` plus any ``State.X`` it returns or
    passes to ``goto`` (found by reading the method's source); ``"finish"`` when it returns
    ``self.finish(...)``."""
    found: list[str] = [s.name for s in spec.branches]
    states = set(wizard._by_state)
    for name in returned_names(spec.method):
        if (name == "finish" or name in states) and name not in found:
            found.append(name)
    return found


def called_wizards(wizard: type[RunningWizard], spec: StepSpec) -> list[WizardCall]:
    """The wizards a step's source calls (``self.call(Other, then=State.X)``) or jumps to
    (``self.goto(Other)``), resolved through the method's module globals; a name that does
    not resolve to a Wizard class is left out. Empty when the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(spec.method)))
    except (OSError, TypeError, SyntaxError):
        return []
    found: list[WizardCall] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("call", "goto")
            and node.args
        ):
            continue
        target = _resolve(spec.method, node.args[0])
        if not is_wizard_class(target):
            continue
        then = None
        for keyword in node.keywords:
            if keyword.arg == "then" and isinstance(keyword.value, ast.Attribute):
                then = keyword.value.attr if keyword.value.attr in wizard._by_state else None
        made = WizardCall(node.func.attr, target, then if node.func.attr == "call" else None)
        if made not in found:
            found.append(made)
    return found


def _resolve(method: Any, node: ast.expr) -> Any:
    """The object a name (``Address``) or dotted name (``forms.Address``) in ``method``'s
    source stands for, or ``None``."""
    if isinstance(node, ast.Name):
        try:
            closure = inspect.getclosurevars(method)
        except TypeError:  # not a plain function
            return getattr(method, "__globals__", {}).get(node.id)
        for scope in (closure.nonlocals, closure.globals, closure.builtins):
            if node.id in scope:
                return scope[node.id]
        return getattr(method, "__globals__", {}).get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(method, node.value)
        return getattr(base, node.attr, None) if base is not None else None
    return None


def _node_id(kind: str, target: type[RunningWizard]) -> str:
    return f"{kind}_" + re.sub(r"\W", "_", target.wizard_id)


def _shown_prompt(prompt: object) -> str:
    """What the diagram shows of a prompt: its text, in English where it depends on the
    language (a ``{locale: text}`` mapping, a ``lazy_gettext`` text), else that it is computed."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Mapping) and prompt:
        return localize(prompt, DEFAULT_LOCALE)
    if isinstance(prompt, LazyProxy):
        try:
            return localize(prompt, DEFAULT_LOCALE)
        except LookupError:  # no aiogram I18n context (drawn outside a bot): its message id
            args = getattr(prompt, "_args", ())
            return str(args[0]) if args else "(computed prompt)"
    return "(computed prompt)"


# ids the flowchart gives its own nodes, and Mermaid's keywords (a node named ``end`` closes
# a block): a state named so is drawn as ``step_<name>``, as is one named like the ids of the
# called wizards' nodes or like such a renamed id (so two states never share a node)
_TAKEN_IDS = frozenset(
    {"start", "finish", "back", "cancel", "timed_out", "end", "subgraph", "graph", "flowchart"}
    | {"style", "classDef", "class", "click", "linkStyle", "direction", "default"}
)
_TAKEN_PREFIXES = ("call_", "goto_", "step_")


def _step_id(name: str) -> str:
    """The Mermaid id of the node of the step at state ``name``."""
    if name in _TAKEN_IDS or name.lower() == "end" or name.startswith(_TAKEN_PREFIXES):
        return f"step_{name}"
    return name


def _label(spec: StepSpec) -> str:
    prompt = _shown_prompt(spec.prompt)
    prompt = prompt.replace('"', "'").replace("\n", " ")
    if len(prompt) > 40:
        prompt = prompt[:39] + "…"
    return f'{_step_id(spec.state.name)}["{spec.state.name}<br/><i>{prompt}</i>"]'


def to_mermaid(wizard: type[RunningWizard]) -> str:
    """The wizard's flow as Mermaid ``flowchart`` source."""
    steps = wizard._steps
    if not steps:
        raise ValueError(f"{wizard.__qualname__} declares no steps")
    lines = ["flowchart TD", "    start((start))", "    finish((finish))"]
    lines += [f"    {_label(s)}" for s in steps]
    lines.append(f"    start --> {_step_id(steps[0].state.name)}")
    for index, spec in enumerate(steps):
        name = _step_id(spec.state.name)
        following = _step_id(steps[index + 1].state.name) if index + 1 < len(steps) else "finish"
        targets = [_step_id(t) if t != "finish" else t for t in branch_targets(wizard, spec)]
        calls = called_wizards(wizard, spec)
        returns_only_branches = bool(targets or calls) and _never_returns_none(spec)
        if not returns_only_branches:
            lines.append(f"    {name} --> {following}")
        for target in targets:
            lines.append(f"    {name} -.->|branch| {target}")
        for call in calls:
            node = _node_id(call.kind, call.wizard)
            what = "sub-wizard" if call.kind == "call" else "another wizard"
            lines.append(f'    {node}[["{call.wizard.__name__}<br/><i>{what}</i>"]]')
            lines.append(f"    {name} -->|{call.kind}| {node}")
            if call.kind == "call":
                then = _step_id(call.then) if call.then else following
                lines.append(f"    {node} -->|returns| {then}")
        if spec.optional and wizard.commands.skip:
            lines.append(f"    {name} -.->|/{wizard.commands.skip}| {following}")
    lines += _deadline_lines(wizard)
    if wizard.commands.back:
        lines.append(f'    back[/"/{wizard.commands.back}: previous step in history"/]')
    if wizard.commands.cancel:
        lines.append(f'    cancel[/"/{wizard.commands.cancel}: on_cancel, from any step"/]')
    return "\n".join(lines) + "\n"


def _deadline_lines(wizard: type[RunningWizard]) -> list[str]:
    """Reminders (a loop back to the step) and timeouts (to where ``on_timeout`` goes)."""
    if not wizard._timing:
        return []
    hook = wizard.__dict__.get("on_timeout") or next(
        (k.__dict__["on_timeout"] for k in wizard.__mro__[1:] if "on_timeout" in k.__dict__),
        None,
    )
    overridden = hook is not None and overrides_hook(hook)
    found = returned_names(hook) if overridden else []
    targets = [
        t if t == "finish" else _step_id(t) for t in found if t == "finish" or t in wizard._by_state
    ]
    cancels = not overridden or not targets or not _always_returns(hook)
    lines: list[str] = []
    for spec in wizard._steps:
        timing = wizard._timing.get(spec.state.name)
        if timing is None:
            continue
        name = _step_id(spec.state.name)
        if timing.reminders:
            after = ", ".join(describe(r) for r in timing.reminders)
            lines.append(f"    {name} -.->|reminder after {after}| {name}")
        if timing.timeout is None:
            continue
        label = f"timeout {describe(timing.timeout)}"
        for target in targets:
            lines.append(f"    {name} -.->|{label}| {target}")
        if cancels:
            lines.append(f"    {name} -.->|{label}| timed_out")
    if cancels and any(t.timeout is not None for t in wizard._timing.values()):
        lines.insert(0, "    timed_out((timed out))")
    return lines


def _always_returns(method: Any) -> bool:
    """True when every path through ``method`` returns a value other than ``None`` (it cannot
    fall off its end, and no ``return`` is bare or ``return None``)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return False
    func = tree.body[0] if tree.body else None
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    returns = [n for n in ast.walk(func) if isinstance(n, ast.Return)]
    if not returns or any(_may_be_none(r.value) for r in returns):
        return False
    return _ends_every_path(func.body)


def _may_be_none(value: ast.expr | None) -> bool:
    """Whether a returned expression may be ``None``: bare, ``None``, or a conditional
    expression with such a branch (``State.X if ok else None``)."""
    if value is None or (isinstance(value, ast.Constant) and value.value is None):
        return True
    if isinstance(value, ast.IfExp):
        return _may_be_none(value.body) or _may_be_none(value.orelse)
    return False


def _never_returns_none(spec: StepSpec) -> bool:
    """True when every return of the method returns a value (so no declaration-order edge)."""
    return _always_returns(spec.method)


def _ends_every_path(body: list[ast.stmt]) -> bool:
    """True when no path through ``body`` runs past its end: it ends in a ``return`` or a
    ``raise``, or in an ``if`` whose every branch (an ``else`` included) does."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    if isinstance(last, ast.If):
        return _ends_every_path(last.body) and _ends_every_path(last.orelse)
    return False
