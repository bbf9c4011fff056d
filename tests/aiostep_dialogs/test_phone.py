"""``v.phone``: national numbers are never given a made-up ``+``; digits of any script are
read; ``region=`` places a national number; with ``phonenumbers`` a number is checked against
its country's plan, without it only the form is checked. Both paths run here (the package is a
dev dependency; one fixture makes its import fail)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from enum import Enum, auto
from typing import TYPE_CHECKING

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command

from aiostep.exceptions import MissingDependencyError
from aiostep_dialogs import Finish, ValidationError, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend

pytest.importorskip("phonenumbers")  # the dev extra installs it: the checked path is tested

ASK = "Please send a phone number, like +44 20 7946 0958."
ASK_COUNTRY = "Please include the country code, like +44 20 7946 0958."


@pytest.fixture
def without_phonenumbers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``import phonenumbers`` fails, as where the extra is not installed."""
    monkeypatch.setitem(sys.modules, "phonenumbers", None)
    yield


def _check(validator: object, raw: str) -> str:
    assert callable(validator)
    result = validator(raw)
    assert isinstance(result, str)
    return result


def _reason(validator: object, raw: str) -> str:
    assert callable(validator)
    with pytest.raises(ValidationError) as caught:
        validator(raw)
    return caught.value.reason


@pytest.mark.parametrize("checked", [True, False], ids=["phonenumbers", "fallback"])
def test_national_number_without_region_asks_for_the_country_code(
    checked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not checked:
        monkeypatch.setitem(sys.modules, "phonenumbers", None)
    phone = v.phone()
    assert _reason(phone, "020 7946 0958") == ASK_COUNTRY  # was "+02079460958"
    assert _reason(phone, "123") == ASK
    assert _check(phone, "+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize("checked", [True, False], ids=["phonenumbers", "fallback"])
def test_digits_of_any_script_are_read(checked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not checked:
        monkeypatch.setitem(sys.modules, "phonenumbers", None)
    # Arabic-Indic and full-width digits, as v.integer reads them
    assert _check(v.phone(), "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨") == "+442079460958"
    assert _check(v.phone(), "+４４２０７９４６０９５８") == "+442079460958"
    assert _reason(v.phone(), "+44 20 7946 095²") == ASK  # "²" is no decimal digit


def test_region_places_a_national_number() -> None:
    assert _check(v.phone(region="GB"), "020 7946 0958") == "+442079460958"
    assert _check(v.phone(region="us"), "(202) 555-0143") == "+12025550143"
    # an international number is read as such whatever the region
    assert _check(v.phone(region="GB"), "+1 202 555 0143") == "+12025550143"


def test_phonenumbers_refuses_a_number_its_country_does_not_have() -> None:
    assert _reason(v.phone(), "+44 20 7946 09") == ASK
    assert _reason(v.phone(region="GB"), "0000 000000") == ASK


def test_fallback_checks_only_the_form(without_phonenumbers: None) -> None:
    assert _check(v.phone(), "+44 20 7946 09") == "+4420794609"
    assert _reason(v.phone(), "+1234") == ASK


def test_region_without_phonenumbers_fails_at_definition(without_phonenumbers: None) -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'aiostep\[phone\]'"):
        v.phone(region="GB")
    with pytest.raises(ImportError):  # what code that catches ImportError expects
        v.phone(region="GB")


def test_unknown_region_fails_at_definition() -> None:
    with pytest.raises(ValueError, match="region='XX'"):
        v.phone(region="XX")


class Callback(Wizard, name="t_phone_callback"):
    """A number to call back: a national one is read as British."""

    class State(Enum):
        PHONE = auto()

    @step(State.PHONE, prompt="Your number?", validate=v.phone(region="GB"))
    async def number(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"We will call {self.result}.")


def callback(dp: Dispatcher, storage: object) -> None:
    Callback.setup(dp, entry=Command("call"), storage=storage)


async def test_region_number_through_the_wizard_after_a_restart(
    persistent_backend: Backend,
) -> None:
    sim = persistent_backend.simulator(callback)
    talk = sim.chat()
    await talk.send("/call")
    await sim.restart()
    await talk.send("12")
    assert talk.last == f"{ASK}\n\nYour number?"
    await talk.send("020 7946 0958")
    assert talk.last == "We will call +442079460958."


async def test_shared_contact_number_is_normalised_not_checked(backend: Backend) -> None:
    sim = backend.simulator(callback)
    talk = sim.chat()
    await talk.send("/call")
    await talk.send_contact("15550100000")  # Telegram's form: international, no "+"
    assert talk.last == "We will call +15550100000."
