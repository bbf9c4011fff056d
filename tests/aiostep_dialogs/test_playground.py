"""The playground: ``python -m aiostep_dialogs play TARGET`` — the project's main job."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from aiostep_dialogs.playground import run_playground

ROOT = Path(__file__).resolve().parents[2]


def play(target: str, lines: list[str], *args: str) -> str:
    """Run the playground in this process, with one message per line as its input."""
    storage = args[1] if args[:1] == ("--storage",) else "memory"
    out = io.StringIO()
    status = run_playground(
        target, storage=storage, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out
    )
    assert status == 0
    return out.getvalue()


def play_command(target: str, lines: list[str], *args: str) -> str:
    """Run the playground as a user would: a process, one message per line on stdin."""
    result = subprocess.run(
        [sys.executable, "-m", "aiostep_dialogs", "play", target, *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow  # a fresh interpreter: the command as a user types it
def test_piped_input_prints_the_whole_conversation() -> None:
    out = play_command("examples/signup.py", ["Bob", "30", "1"])
    assert "bot> What is your name?" in out
    assert "user> Bob" in out
    assert "bot> How old are you?" in out
    assert "press: 1) Yes  2) Start over" in out
    assert out.rstrip().endswith("bot> Welcome, Bob!")


def test_a_number_presses_the_numbered_button() -> None:
    out = play("examples/signup.py", ["Bob", "30", "2", "Ann", "41", "1"])
    assert "user clicked [Start over]" in out
    assert out.rstrip().endswith("bot> Welcome, Ann!")


def test_restart_resumes_the_conversation_on_file_storage(tmp_path: Path) -> None:
    state = tmp_path / "state.jsonl"
    out = play("examples/signup.py", ["Bob", "/restart", "30", "1"], "--storage", f"file:{state}")
    assert "--- restarted ---" in out
    assert out.rstrip().endswith("bot> Welcome, Bob!")


def test_restart_resumes_the_conversation_on_redis(redis_url: str) -> None:
    out = play("examples/signup.py", ["Bob", "/restart", "30", "1"], "--storage", redis_url)
    assert out.rstrip().endswith("bot> Welcome, Bob!")


def test_restart_on_memory_storage_says_the_state_is_gone() -> None:
    out = play("examples/signup.py", ["Bob", "/restart", "30"])
    assert "--- restarted (memory storage: state is gone) ---" in out
    assert "Welcome" not in out


def test_a_module_class_target_runs_that_wizard() -> None:
    out = play("examples.order:Order", ["1", "2", "2", "1"])
    assert "bot> Which pizza?" in out
    assert "Total: 16 EUR" in out
    assert out.rstrip().endswith("bot> Order placed. Enjoy!")


def test_an_unknown_target_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="no such file"):
        run_playground("examples/nope.py", stdin=io.StringIO(""), stdout=io.StringIO())


@pytest.mark.parametrize("text", ["/quit"])
def test_quit_ends_the_session_in_process(text: str) -> None:
    out = io.StringIO()
    status = run_playground(
        "examples/survey.py", stdin=io.StringIO(f"{text}\nnever sent\n"), stdout=out
    )
    assert status == 0
    assert "Do you use Python?" in out.getvalue()
    assert "never sent" not in out.getvalue()
