"""The modules of aiostep_dialogs and aiostep.testing import each other one way: no module
imports, when it runs, a module that imports it back (an import for annotations only, under
``if TYPE_CHECKING:``, is not one). Read from the code by docs/module_map.py, which draws the
architecture page's map."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def module_map() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "aiostep_module_map", ROOT / "docs" / "module_map.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("package", ["aiostep_dialogs", "aiostep.testing"])
def test_modules_import_each_other_one_way(package: str) -> None:
    mapping = module_map()
    assert mapping.cycles(mapping.imports(package)) == []


def test_no_module_under_the_wizard_imports_it_when_it_runs() -> None:
    """Only what is built on top of the Wizard (the CLI, the playgrounds) imports wizard.py;
    the runtime, the record, the prompts and the features take the wizard as a parameter."""
    imports = module_map().imports("aiostep_dialogs")
    importers = sorted(name for name, imported in imports.items() if "wizard" in imported)
    assert importers == ["loading", "web_playground"]


def test_a_wizard_step_method_is_bound_from_its_module_as_a_plain_method() -> None:
    """The runtime's functions are the wizard's methods themselves, not wrappers around them:
    a wizard that does not use a feature pays no extra call for the split."""
    from aiostep_dialogs import record, render, runtime
    from aiostep_dialogs.wizard import Wizard

    assert Wizard._park is runtime.park
    assert Wizard._send_prompt is render.send_prompt
    assert Wizard.__dict__["_restore"].__func__ is record.restore
