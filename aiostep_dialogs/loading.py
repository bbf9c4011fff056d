"""Find the bot or wizard a command-line target names: a file, a module, or ``module:name``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiogram import Dispatcher

from aiostep_dialogs.wizard import Wizard

__all__ = ["Target", "load_target"]


@dataclass
class Target:
    """What a target resolved to: its module and what runs it, in this order of preference: a
    ``build`` factory, a Dispatcher the module made at import time, a wizard class.

    Attributes:
        module: the imported module.
        wizard: the module's only wizard (or the one named), or ``None``; it runs alone, with
            ``/start`` as its entry, when there is neither ``build`` nor ``dispatcher``.
        build: ``build(storage) -> Dispatcher``, or ``None``.
        dispatcher: a module-level Dispatcher (``dp = Dispatcher()``), or ``None``. It cannot
            be rebuilt, so it has no ``/restart`` and uses the storage its module gave it.
        name: how the target names it, for messages (``bot.py:dp``).
    """

    module: ModuleType
    wizard: type[Wizard] | None
    build: Any  # Callable[[storage], Dispatcher] | None
    dispatcher: Dispatcher | None = None
    name: str = ""


def _import_file(path: str) -> ModuleType:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise SystemExit(f"no such file: {path}")
    directory, filename = os.path.split(path)
    # examples/signup.py imports as examples.signup when examples/ is a package, and
    # examples/webhook/app.py as examples.webhook.app (not webhook.app, a second copy)
    parts = [filename[:-3]]
    root = directory
    while os.path.isfile(os.path.join(root, "__init__.py")) and os.path.dirname(root) != root:
        parts.insert(0, os.path.basename(root))
        root = os.path.dirname(root)
    if len(parts) > 1:
        if root not in sys.path:
            sys.path.insert(0, root)
        return importlib.import_module(".".join(parts))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = filename[:-3]
    loaded = sys.modules.get(name)
    if loaded is not None and _is_file(getattr(loaded, "__file__", None), path):
        return loaded
    if loaded is None:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is not None and _is_file(found.origin, path):
            return importlib.import_module(name)
    # the name is another module's (the standard library's calendar.py, the built-in time):
    # load the file itself, leaving that module in its place
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path} as a module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_file(origin: str | None, path: str) -> bool:
    """Whether the module file ``origin`` is the file at ``path``."""
    return origin is not None and os.path.isfile(origin) and os.path.samefile(origin, path)


def _named(spec: str, module: ModuleType, attr: str) -> Target:
    found = getattr(module, attr, None)
    if isinstance(found, Dispatcher):
        return Target(module, None, None, found, name=spec)
    if isinstance(found, type) and issubclass(found, Wizard):
        if not found._steps:  # a base class the bot's wizards share: nothing to run or draw
            raise SystemExit(
                f"{spec}: {found.__qualname__} declares no steps; name a wizard that has steps"
            )
        return Target(module, found, None, name=spec)
    raise SystemExit(
        f"{spec}: {attr!r} is not a Wizard subclass or a Dispatcher in {module.__name__}"
    )


def load_target(spec: str) -> Target:
    """Load ``path/to/bot.py``, ``package.module`` or ``module:name``.

    Without a name, the module's ``build`` function is used, else the Dispatcher it defines at
    module level (``dp = Dispatcher()``), else its only wizard. ``module:name`` picks a
    Dispatcher or a wizard class by name.
    """
    name, _, attr = spec.partition(":")
    if name.endswith(".py") or os.sep in name:
        module = _import_file(name)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise SystemExit(f"cannot import {name!r}: {exc}") from exc
    if attr:
        return _named(spec, module, attr)
    wizards = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Wizard)
        and obj.__module__ == module.__name__
        and obj._steps
    ]
    only = wizards[0] if len(wizards) == 1 else None  # what ``graph`` draws
    build = getattr(module, "build", None)
    if callable(build):
        return Target(module, only, build, name=f"{spec}:build")
    dispatchers = {key: obj for key, obj in vars(module).items() if isinstance(obj, Dispatcher)}
    unique = {id(obj): key for key, obj in dispatchers.items()}
    if len(unique) == 1:
        key = next(iter(unique.values()))
        return Target(module, only, None, dispatchers[key], name=f"{spec}:{key}")
    if len(unique) > 1:
        names = ", ".join(sorted(unique.values()))
        raise SystemExit(f"{spec}: found several Dispatchers ({names}); name one as {spec}:NAME")
    if only is None:
        raise SystemExit(
            f"{spec}: found {len(wizards)} wizards, no Dispatcher and no build() function; "
            "name one as module:Class"
        )
    return Target(module, only, None, name=f"{spec}:{only.__name__}")
