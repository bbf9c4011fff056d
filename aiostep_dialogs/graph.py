"""Describe a Wizard as a Mermaid flowchart: states, declaration-order edges, branches,
reminders and timeouts, and the navigation commands (``/back``, ``/cancel``, ``/skip``)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

from aiostep_dialogs.timeouts import describe
from aiostep_dialogs.wizard import StepSpec, Wizard

__all__ = ["branch_targets", "returned_names", "to_mermaid"]


def branch_targets(wizard: type[Wizard], spec: StepSpec) -> list[str]:
    """State names a step can jump to: its ``branches=`` plus any ``State.X`` it returns or
    passes to ``goto`` (found by reading the method's source); ``"finish"`` when it returns
    ``self.finish(...)``."""
    found: list[str] = [s.name for s in spec.branches]
    states = set(wizard._by_state)
    for name in returned_names(spec.method):
        if (name == "finish" or name in states) and name not in found:
            found.append(name)
    return found


def returned_names(method: Any) -> list[str]:
    """What ``method``'s source returns or passes to ``goto``: the name ``X`` of each
    ``State.X`` (whether or not it has a step), and ``"finish"`` for ``self.finish(...)``.
    Empty when the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return []
    found: list[str] = []
    for node in ast.walk(tree):
        candidates: list[Any] = []
        if isinstance(node, ast.Return) and node.value is not None:
            candidates.append(node.value)
            if isinstance(node.value, ast.IfExp):
                candidates.extend((node.value.body, node.value.orelse))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "goto"
        ):
            candidates.extend(node.args)
        for value in candidates:
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr == "finish"
                and "finish" not in found
            ):
                found.append("finish")
            if (
                isinstance(value, ast.Attribute)
                and isinstance(value.value, (ast.Attribute, ast.Name))
                and (getattr(value.value, "attr", None) or getattr(value.value, "id", None))
                == "State"
                and value.attr not in found
            ):
                found.append(value.attr)
    return found


def _label(spec: StepSpec) -> str:
    prompt = spec.prompt if isinstance(spec.prompt, str) else "(computed prompt)"
    prompt = prompt.replace('"', "'").replace("\n", " ")
    if len(prompt) > 40:
        prompt = prompt[:39] + "…"
    return f'{spec.state.name}["{spec.state.name}<br/><i>{prompt}</i>"]'


def to_mermaid(wizard: type[Wizard]) -> str:
    """The wizard's flow as Mermaid ``flowchart`` source."""
    steps = wizard._steps
    if not steps:
        raise ValueError(f"{wizard.__qualname__} declares no steps")
    lines = ["flowchart TD", "    start((start))", "    finish((finish))"]
    lines += [f"    {_label(s)}" for s in steps]
    lines.append(f"    start --> {steps[0].state.name}")
    for index, spec in enumerate(steps):
        name = spec.state.name
        following = steps[index + 1].state.name if index + 1 < len(steps) else "finish"
        targets = branch_targets(wizard, spec)
        returns_only_branches = bool(targets) and _never_returns_none(spec)
        if not returns_only_branches:
            lines.append(f"    {name} --> {following}")
        for target in targets:
            lines.append(f"    {name} -.->|branch| {target}")
        if spec.optional and wizard.commands.skip:
            lines.append(f"    {name} -.->|/{wizard.commands.skip}| {following}")
    lines += _deadline_lines(wizard)
    if wizard.commands.back:
        lines.append(f'    back[/"/{wizard.commands.back}: previous step in history"/]')
    if wizard.commands.cancel:
        lines.append(f'    cancel[/"/{wizard.commands.cancel}: on_cancel, from any step"/]')
    return "\n".join(lines) + "\n"


def _deadline_lines(wizard: type[Wizard]) -> list[str]:
    """Reminders (a loop back to the step) and timeouts (to where ``on_timeout`` goes)."""
    if not wizard._timing:
        return []
    hook = wizard.__dict__.get("on_timeout") or next(
        (k.__dict__["on_timeout"] for k in wizard.__mro__[1:] if "on_timeout" in k.__dict__),
        None,
    )
    overridden = hook is not None and hook is not Wizard.__dict__["on_timeout"]
    found = returned_names(hook) if overridden else []
    targets = [t for t in found if t == "finish" or t in wizard._by_state]
    cancels = not overridden or not targets or not _always_returns(hook)
    lines: list[str] = []
    for spec in wizard._steps:
        timing = wizard._timing.get(spec.state.name)
        if timing is None:
            continue
        name = spec.state.name
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
    """True when every return of ``method`` returns a value other than ``None``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    except (OSError, TypeError, SyntaxError):
        return False
    returns = [n for n in ast.walk(tree) if isinstance(n, ast.Return)]
    return bool(returns) and all(
        r.value is not None and not (isinstance(r.value, ast.Constant) and r.value.value is None)
        for r in returns
    )


def _never_returns_none(spec: StepSpec) -> bool:
    """True when every return of the method returns a value (so no declaration-order edge)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(spec.method)))
    except (OSError, TypeError, SyntaxError):
        return False
    func = tree.body[0]
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    returns = [n for n in ast.walk(func) if isinstance(n, ast.Return)]
    if not returns or any(r.value is None for r in returns):
        return False
    if any(isinstance(r.value, ast.Constant) and r.value.value is None for r in returns):
        return False
    last = func.body[-1]
    return isinstance(last, (ast.Return, ast.If))
