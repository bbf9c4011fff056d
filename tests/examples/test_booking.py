"""examples/booking.py: a sub-wizard for the address, a reminder after a minute and a timeout
after five with no message from the user, in English and in Russian."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from examples.booking import build

if TYPE_CHECKING:
    from conftest import Backend

ROOT = Path(__file__).resolve().parents[2]


async def test_an_english_booking_with_delivery_calls_the_address_wizard(
    backend: Backend,
) -> None:
    sim = backend.simulate(build)
    talk = sim.chat()
    await talk.send("/book")
    talk.assert_last("Which day?", buttons=[["Friday", "Saturday", "Sunday"]])
    await talk.click("Saturday")
    await talk.send("4")
    await talk.click("Delivery")
    talk.assert_last("Street and number?")  # the Address wizard runs now
    await talk.send("/back")  # from its first step: back to the step that called it
    talk.assert_last("Eat in or delivery?", buttons=[["Eat in", "Delivery"]])
    await talk.click("Delivery")
    await talk.send("1 Main St")
    await talk.send("Springfield")
    talk.assert_last(
        "Saturday, 4 guest(s), delivery to 1 Main St, Springfield. Book it?",
        buttons=[["Book", "No"]],
    )
    await talk.click("Book")
    talk.assert_last("Booked. See you!")
    assert await backend.record(talk) is None


async def test_a_russian_user_books_in_russian_across_a_restart(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulate(build)
    talk = sim.chat(sim.user(language_code="ru"))
    await talk.send("/book")
    talk.assert_last("Какой день?", buttons=[["Пятница", "Суббота", "Воскресенье"]])
    await talk.click("Пятница")
    await sim.restart()
    await talk.send("два")
    talk.assert_last("Пожалуйста, отправьте целое число.\n\nНа сколько человек?")
    await talk.send("2")
    await talk.click("Доставка")
    await sim.restart()  # inside the called wizard
    await talk.send("Тверская, 1")
    await talk.send("Москва")
    talk.assert_last("Пятница, гостей: 2, доставка: Тверская, 1, Москва. Бронируем?")
    await talk.click("Забронировать")
    talk.assert_last("Забронировано. Ждём вас!")


async def test_an_idle_user_is_reminded_after_a_minute_and_dropped_after_five(
    backend: Backend,
) -> None:
    sim = backend.simulate(build)
    clock = sim.use_fake_clock()
    talk = sim.chat()
    await talk.send("/book")
    await clock.advance(59)
    talk.assert_last("Which day?", buttons=[["Friday", "Saturday", "Sunday"]])
    await clock.advance(1)  # no message from the user: the reminder comes on its own
    assert (talk.last or "").startswith("Still there?")
    await clock.advance(240)
    talk.assert_last("No answer, so I dropped the booking. /book starts again.")
    assert await backend.record(talk) is None


async def test_the_reminder_and_timeout_speak_russian_inside_the_address_wizard(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulate(build)
    clock = sim.use_fake_clock()
    talk = sim.chat(sim.user(language_code="ru"))
    await talk.send("/book")
    await talk.click("Суббота")
    await talk.send("3")
    await talk.click("Доставка")
    talk.assert_last("Улица и дом?")
    await sim.restart()  # a new process finds the deadline in the storage
    await clock.advance(60)
    assert (talk.last or "").startswith("Вы ещё здесь?")
    await clock.advance(240)
    assert "Ответа нет" in (talk.transcript())
    assert await persistent_backend.record(talk) is None


@pytest.mark.slow  # a fresh interpreter, real seconds: the reminder arrives while idle
def test_the_playground_shows_the_reminder_while_the_user_is_idle() -> None:
    env = {**os.environ, "BOOKING_REMIND_AFTER": "0.5", "BOOKING_TIMEOUT": "1.2"}
    result = subprocess.run(
        [sys.executable, "-m", "aiostep_dialogs", "play", "examples/booking.py"],
        input="",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("bot> Which day?") < out.index("Still there?")
    assert "No answer, so I dropped the booking." in out
