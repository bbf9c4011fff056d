"""A wizard's flow as a Mermaid flowchart, from Python and from the command line."""

from __future__ import annotations

import subprocess
import sys
from enum import Enum, auto
from pathlib import Path

import pytest
from aiogram.utils.i18n import lazy_gettext

from aiostep_dialogs import Wizard, step
from aiostep_dialogs.__main__ import main
from examples.signup import Signup
from examples.survey import Survey

ROOT = Path(__file__).resolve().parents[2]


def test_signup_graph_has_the_states_the_declaration_edges_and_the_branch() -> None:
    graph = Signup.to_mermaid()
    lines = [line.strip() for line in graph.splitlines()]
    assert lines[0] == "flowchart TD"
    for state in ("NAME", "AGE", "CONFIRM"):
        assert any(line.startswith(f'{state}["{state}') for line in lines), state
    assert "start --> NAME" in lines
    assert "NAME --> AGE" in lines
    assert "AGE --> CONFIRM" in lines
    assert "CONFIRM -.->|branch| NAME" in lines
    assert "CONFIRM -.->|branch| finish" in lines
    # CONFIRM always returns a branch or finish(): no plain edge out of it
    assert not any(line.startswith("CONFIRM -->") for line in lines)
    assert any("/back" in line for line in lines)
    assert any("/cancel" in line for line in lines)


def test_survey_graph_shows_branches_and_skips() -> None:
    lines = [line.strip() for line in Survey.to_mermaid().splitlines()]
    assert "USES_PYTHON -.->|branch| VERSION" in lines
    assert "USES_PYTHON -.->|branch| OTHER_LANGUAGE" in lines
    assert "VERSION -.->|branch| EMAIL" in lines
    assert "OTHER_LANGUAGE --> EMAIL" in lines
    assert "EMAIL -.->|/skip| COMMENT" in lines
    assert "COMMENT --> finish" in lines


@pytest.mark.slow  # a fresh interpreter: the command as a user types it
def test_graph_command_prints_the_flowchart() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aiostep_dialogs", "graph", "examples/signup.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == Signup.to_mermaid()
    assert "CONFIRM -.->|branch| NAME" in result.stdout


def test_graph_command_takes_module_and_class(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "examples.survey:Survey"]) == 0
    assert capsys.readouterr().out == Survey.to_mermaid()


def test_the_graph_shows_reminders_and_timeouts() -> None:
    from tests.aiostep_dialogs.test_wizard_timeouts import Order, Patient, Plain

    lines = [line.strip() for line in Order.to_mermaid().splitlines()]
    assert "timed_out((timed out))" in lines
    assert "NAME -.->|reminder after 1m, 2m| NAME" in lines
    assert "NAME -.->|timeout 5m| timed_out" in lines
    assert "ADDRESS -.->|reminder after 30s| ADDRESS" in lines  # the step's own
    assert "ADDRESS -.->|timeout 1m40s| timed_out" in lines
    # an on_timeout that always goes somewhere: its targets, and no "timed out" end
    lines = [line.strip() for line in Patient.to_mermaid().splitlines()]
    assert "NEXT -.->|timeout 50s| ASK" in lines
    assert "ASK -.->|timeout 50s| finish" in lines
    assert not any("timed_out" in line for line in lines)
    # a wizard without timeouts draws none
    assert "timeout" not in Plain.to_mermaid()


def test_a_prompt_in_several_languages_shows_its_english_text() -> None:
    class Polyglot(Wizard, name="t_graph_polyglot"):
        class State(Enum):
            NAME = auto()
            CITY = auto()

        @step(State.NAME, prompt={"ru": "Имя?", "en": "Your name?"})
        async def name(self, value: str) -> None: ...

        @step(State.CITY, prompt=lazy_gettext("City?"))
        async def city(self, value: str) -> None: ...

    chart = Polyglot.to_mermaid()
    assert "<i>Your name?</i>" in chart
    assert "<i>City?</i>" in chart
