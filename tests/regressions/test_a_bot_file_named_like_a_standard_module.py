"""How a file target is imported. ``python -m aiostep_dialogs play bot/calendar.py`` (or
``graph``) loaded the standard library's ``calendar`` (already imported, or found first by its
importer) instead of the file, and answered "found 0 wizards". A file target is the file: it is
loaded from its path, without replacing the module that has its name."""

from __future__ import annotations

import calendar
import shutil
import sys
import time
from pathlib import Path

import pytest

from aiostep_dialogs.loading import load_target

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["calendar", "time"])
def test_a_bot_file_named_like_a_standard_module_is_the_file_loaded(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / f"{name}.py"
    shutil.copy(ROOT / "examples" / "signup.py", path)
    target = load_target(str(path))
    assert Path(target.module.__file__ or "").resolve() == path.resolve()
    assert target.wizard is not None and target.wizard.__name__ == "Signup"
    assert target.wizard.to_mermaid().startswith("flowchart TD")
    # the standard library's module keeps its name
    assert sys.modules["calendar"] is calendar and sys.modules["time"] is time
    assert callable(calendar.monthrange) and callable(time.monotonic)


def test_a_plain_bot_file_still_imports_under_its_name(tmp_path: Path) -> None:
    path = tmp_path / "my_signup_bot_for_loading.py"
    shutil.copy(ROOT / "examples" / "signup.py", path)
    target = load_target(str(path))
    assert target.module is sys.modules["my_signup_bot_for_loading"]
    assert target.wizard is not None


def test_a_file_in_a_nested_package_imports_under_its_full_name() -> None:
    """``examples/webhook/app.py`` was imported as ``webhook.app``: a second copy of the
    package beside ``examples.webhook``, whose wizards would get other ids than the bot's."""
    target = load_target(str(ROOT / "examples" / "webhook" / "app.py"))
    assert target.module.__name__ == "examples.webhook.app"
    assert target.module is sys.modules["examples.webhook.app"]
    assert "webhook.app" not in sys.modules
