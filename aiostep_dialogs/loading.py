"""Find the bot or wizard a command-line target names: a file, a module, or ``module:Class``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiostep_dialogs.wizard import Wizard

__all__ = ["Target", "load_target"]


@dataclass
class Target:
    """What a target resolved to: its module, and a wizard class and/or a ``build`` factory."""

    module: ModuleType
    wizard: type[Wizard] | None
    build: Any  # Callable[[storage], Dispatcher] | None


def _import_file(path: str) -> ModuleType:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise SystemExit(f"no such file: {path}")
    directory, filename = os.path.split(path)
    parent = os.path.dirname(directory)
    package = os.path.basename(directory)
    # examples/signup.py imports as examples.signup when examples/ is a package
    if os.path.isfile(os.path.join(directory, "__init__.py")):
        if parent not in sys.path:
            sys.path.insert(0, parent)
        return importlib.import_module(f"{package}.{filename[:-3]}")
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return importlib.import_module(filename[:-3])


def load_target(spec: str) -> Target:
    """Load ``path/to/bot.py``, ``package.module`` or ``module:WizardClass``."""
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
        found = getattr(module, attr, None)
        if not (isinstance(found, type) and issubclass(found, Wizard)):
            raise SystemExit(f"{spec}: {attr!r} is not a Wizard subclass in {module.__name__}")
        return Target(module, found, None)
    wizards = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Wizard)
        and obj.__module__ == module.__name__
        and obj._steps
    ]
    build = getattr(module, "build", None)
    if not callable(build):
        build = None
    if build is None and len(wizards) != 1:
        raise SystemExit(
            f"{spec}: found {len(wizards)} wizards and no build() function; "
            "name one as module:Class"
        )
    return Target(module, wizards[0] if len(wizards) == 1 else None, build)
