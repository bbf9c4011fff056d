"""examples/survey.py: a branch on "Do you use Python?", optional steps with /skip, progress."""

from __future__ import annotations

from typing import TYPE_CHECKING

from examples.survey import build

if TYPE_CHECKING:
    from conftest import Backend


async def test_python_users_are_asked_for_their_version(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    talk.assert_last("Step 1 of 5\nDo you use Python?", buttons=[["Yes", "No"]])
    await talk.click("Yes")
    talk.assert_last(
        "Step 2 of 5\nWhich Python version do you use most?",
        buttons=[["3.10"], ["3.11"], ["3.12"], ["3.13"]],
    )
    await talk.click("3.12")
    # OTHER_LANGUAGE comes next in declaration order, but VERSION branches past it
    talk.assert_last("Step 4 of 5\nYour e-mail, if we may follow up (or /skip):")
    await talk.send("ann@example.org")
    talk.assert_last("Step 5 of 5\nAnything else? (or /skip)")
    await talk.send("Great tool")
    talk.assert_last(
        "Thanks! Recorded: python=True, version='3.12', email='ann@example.org', "
        "comment='Great tool'"
    )
    assert await backend.record(talk) is None


async def test_others_are_asked_for_their_language_and_may_skip(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/survey")
    await talk.click("No")
    talk.assert_last("Step 3 of 5\nWhich language do you use instead?")
    await talk.send("Rust")
    talk.assert_last("Step 4 of 5\nYour e-mail, if we may follow up (or /skip):")
    await talk.send("/skip")
    talk.assert_last("Step 5 of 5\nAnything else? (or /skip)")
    await talk.send("/skip")
    talk.assert_last("Thanks! Recorded: python=False, language='Rust', email=None, comment=''")


async def test_skip_on_a_required_question_is_refused(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.send("/skip")
    assert [m.text for m in talk.messages][-2:] == [
        "This step can't be skipped.",
        "Step 1 of 5\nDo you use Python?",
    ]
    await talk.click("No")
    await talk.send("/skip")
    talk.assert_last("Step 3 of 5\nWhich language do you use instead?")


async def test_a_bad_email_is_refused_but_can_still_be_skipped(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("No")
    await talk.send("Go")
    await talk.send("ann at example")
    talk.assert_last(
        "Please send a valid e-mail address, like name@example.com.\n\n"
        "Step 4 of 5\nYour e-mail, if we may follow up (or /skip):"
    )
    await talk.send("/skip")
    talk.assert_last("Step 5 of 5\nAnything else? (or /skip)")


async def test_back_after_the_branch_returns_along_the_path_taken(backend: Backend) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Yes")
    await talk.click("3.11")
    await talk.send("/back")  # to VERSION (the path taken), not OTHER_LANGUAGE (declared before)
    talk.assert_last(
        "Step 2 of 5\nWhich Python version do you use most?",
        buttons=[["3.10"], ["3.11"], ["3.12"], ["3.13"]],
    )
    await talk.click("3.13")
    await talk.send("/skip")
    await talk.send("/skip")
    talk.assert_last("Thanks! Recorded: python=True, version='3.13', email=None, comment=''")


async def test_restart_mid_survey_continues(persistent_backend: Backend) -> None:
    sim = persistent_backend.simulate(build)
    talk = sim.chat()
    await talk.send("/start")
    await talk.click("Yes")
    await sim.restart()
    await talk.click("3.10")
    talk.assert_last("Step 4 of 5\nYour e-mail, if we may follow up (or /skip):")
    await sim.restart()
    await talk.send("/skip")
    await talk.send("/back")  # history survived both restarts
    talk.assert_last("Step 4 of 5\nYour e-mail, if we may follow up (or /skip):")
    await talk.send("ann@example.org")
    await talk.send("no")
    talk.assert_last(
        "Thanks! Recorded: python=True, version='3.10', email='ann@example.org', comment='no'"
    )
