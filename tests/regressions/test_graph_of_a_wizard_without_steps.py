"""``python -m aiostep_dialogs graph module:Base`` on a wizard class that declares no steps
(a base class the bot's wizards share) ended in a ``ValueError`` traceback. The command answers
like for any other unusable target: a one-line message naming it and the fix. ``play`` on it
started the wizard at ``/start`` and failed with an ``IndexError``; it is refused the same way."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from aiostep_dialogs import Wizard
from aiostep_dialogs.__main__ import main
from aiostep_dialogs.loading import load_target


class Base(Wizard):
    """Shared settings, no steps."""

    show_progress = True


def test_graph_of_a_wizard_without_steps_says_so_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = ModuleType("t_reg_graph_base")
    module.Base = Base  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "t_reg_graph_base", module)
    with pytest.raises(SystemExit, match=r"t_reg_graph_base:Base: .*declares no steps"):
        main(["graph", "t_reg_graph_base:Base"])


def test_play_of_a_wizard_without_steps_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = ModuleType("t_reg_play_base")
    module.Base = Base  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "t_reg_play_base", module)
    with pytest.raises(SystemExit, match=r"t_reg_play_base:Base: .*declares no steps"):
        load_target("t_reg_play_base:Base")
