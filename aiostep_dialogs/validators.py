"""Validators: turn a user's message into a checked value, or say what is wrong.

A validator is any callable ``value -> value`` (sync or async) that raises
[`ValidationError`][aiostep_dialogs.ValidationError] with a reason the user can read. The first
validator of a step gets the ``Message``; built-ins also take the plain value a previous validator
returned, so they
compose: ``validate=[v.text(), my_check]`` or ``v.chain(v.text(), my_check)``.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aiogram.types import Message

from aiostep.exceptions import MissingDependencyError

__all__ = [
    "ValidationError",
    "Validator",
    "chain",
    "chat_shared",
    "choice",
    "contact",
    "date",
    "document",
    "email",
    "integer",
    "location",
    "number",
    "phone",
    "photo",
    "poll",
    "run",
    "text",
    "users_shared",
    "yes_no",
]

Validator = Callable[[Any], Any]


class ValidationError(Exception):
    """The input is not acceptable; ``reason`` is shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _text_of(value: Any, what: str = "text") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Message):
        if value.text is not None:
            return value.text
        if what == "text":
            raise ValidationError("Please send a text message.")
        raise ValidationError(f"Please send {what} as a text message.")
    raise ValidationError(f"Please send {what}.")


async def run(validators: Iterable[Validator], value: Any) -> Any:
    """Pass ``value`` through ``validators`` in order; the last result is the converted value."""
    for validator in validators:
        result = validator(value)
        value = await result if inspect.isawaitable(result) else result
    return value


def chain(*validators: Validator) -> Validator:
    """One validator that runs ``validators`` in order (sync ones stay sync)."""

    async def chained(value: Any) -> Any:
        return await run(validators, value)

    return chained


def text(
    *,
    min_len: int | None = None,
    max_len: int | None = 4096,
    regex: str | re.Pattern[str] | None = None,
    strip: bool = True,
    error: str | None = None,
) -> Validator:
    """A text message, optionally bounded in length and matching ``regex`` (full match)."""
    pattern = re.compile(regex) if isinstance(regex, str) else regex

    def validate(value: Any) -> str:
        result = _text_of(value)
        if strip:
            result = result.strip()
        if min_len is not None and len(result) < min_len:
            raise ValidationError(error or f"Please send at least {min_len} characters.")
        if max_len is not None and len(result) > max_len:
            raise ValidationError(error or f"Please keep it to {max_len} characters or fewer.")
        if pattern is not None and not pattern.fullmatch(result):
            raise ValidationError(error or "That doesn't look right; please try again.")
        return result

    return validate


def _bounds(value: float, low: float | None, high: float | None, error: str | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        if error:
            raise ValidationError(error)
        if low is not None and high is not None:
            raise ValidationError(f"Please send a number from {low} to {high}.")
        if low is not None:
            raise ValidationError(f"Please send a number of at least {low}.")
        raise ValidationError(f"Please send a number of at most {high}.")


def integer(
    *, min: int | None = None, max: int | None = None, error: str | None = None
) -> Validator:
    """A whole number (``int``), optionally within ``[min, max]``."""

    def validate(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        else:
            raw = _text_of(value, "a number").strip().replace(" ", "")
            if not re.fullmatch(r"[+-]?\d{1,18}", raw):
                raise ValidationError(error or "Please send a whole number.")
            result = int(raw)
        _bounds(result, min, max, error)
        return result

    return validate


def number(
    *, min: float | None = None, max: float | None = None, error: str | None = None
) -> Validator:
    """A decimal number (``float``; ``,`` accepted as decimal point), optionally bounded."""

    def validate(value: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
        else:
            raw = _text_of(value, "a number").strip().replace(" ", "").replace(",", ".")
            if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", raw) or len(raw) > 40:
                raise ValidationError(error or "Please send a number, like 12.5.")
            result = float(raw)
        _bounds(result, min, max, error)
        return result

    return validate


def choice(options: Mapping[str, str] | Sequence[str], *, error: str | None = None) -> Validator:
    """One of ``options`` (values, or a ``{value: label}`` mapping); typed labels count too.

    Matching ignores case and surrounding spaces; returns the option's value.
    """
    mapping = dict(options) if isinstance(options, Mapping) else {o: o for o in options}
    lookup: dict[str, str] = {}
    for value, label in mapping.items():
        lookup[value.casefold()] = value
        lookup[str(label).strip().casefold()] = value

    def validate(value: Any) -> str:
        raw = _text_of(value, "your choice").strip().casefold()
        if raw in lookup:
            return lookup[raw]
        labels = ", ".join(str(label) for label in mapping.values())
        raise ValidationError(error or f"Please choose one of: {labels}.")

    return validate


_YES = ("yes", "y", "yeah", "yep", "sure", "ok", "true", "1")
_NO = ("no", "n", "nope", "false", "0")


def yes_no(
    *, yes: Iterable[str] = _YES, no: Iterable[str] = _NO, error: str | None = None
) -> Validator:
    """Yes or no, as ``bool``."""
    yes_set = {w.casefold() for w in yes}
    no_set = {w.casefold() for w in no}

    def validate(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        raw = _text_of(value, "yes or no").strip().casefold()
        if raw in yes_set:
            return True
        if raw in no_set:
            return False
        raise ValidationError(error or "Please answer yes or no.")

    return validate


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,63}")


def email(*, error: str | None = None) -> Validator:
    """An e-mail address (lower-cased domain)."""

    def validate(value: Any) -> str:
        raw = _text_of(value, "an e-mail address").strip()
        if not _EMAIL.fullmatch(raw):
            raise ValidationError(
                error or "Please send a valid e-mail address, like name@example.com."
            )
        local, _, domain = raw.rpartition("@")
        return f"{local}@{domain.lower()}"

    return validate


_PHONE_EXAMPLE = "+44 20 7946 0958"
_SEPARATORS = re.compile(r"[\s\-().]")


def _ascii_digits(raw: str) -> str:
    """``raw`` with every decimal digit of any script as its ASCII digit, as ``int()`` reads
    them (``"٠٢٠"`` -> ``"020"``); other characters unchanged (``"²"`` is not a decimal digit)."""
    if raw.isascii():
        return raw
    return re.sub(r"\d", lambda m: str(unicodedata.decimal(m.group())), raw)


def _phonenumbers() -> Any:
    """The ``phonenumbers`` module, or ``None`` when it is not installed."""
    try:
        return importlib.import_module("phonenumbers")
    except ImportError:
        return None


def _own_contact(msg: Message, error: str | None) -> None:
    sender = msg.from_user
    shared = msg.contact
    if shared is None or sender is None or shared.user_id != sender.id:
        raise ValidationError(
            error
            or "Please share your own contact (the button below shares it), not someone else's."
        )


def _shared_number(raw: str) -> str:
    """A shared contact's number: Telegram gives it in international form, with or without
    ``+`` (``"15550100000"``); never a national number to place."""
    digits = _SEPARATORS.sub("", _ascii_digits(raw.strip()))
    return digits if digits.startswith("+") else "+" + digits


def phone(
    *,
    region: str | None = None,
    own: bool = False,
    typed: bool = True,
    error: str | None = None,
) -> Validator:
    """A phone number, typed or shared as a contact; returns it in E.164 form (``"+442079460958"``).

    Digits of any script are read as ``v.integer`` reads them; spaces, dashes, dots and
    brackets are ignored. A typed number must name its country (``+44 20 7946 0958``) unless
    ``region`` says which country a national number (``020 7946 0958``) is in. Nothing is
    guessed: a number without a country code and no ``region`` is refused with a reason that
    asks for it.

    With the [`phonenumbers`](https://pypi.org/project/phonenumbers/) package (the
    ``aiostep[phone]`` extra) a typed number is checked against the numbering plan of its
    country; without it, ``+`` and 7 to 15 digits are accepted. A shared contact's number comes
    from Telegram in international form and is only normalised.

    Args:
        region: the two-letter country (``"GB"``, ``"US"``) a national number is read in; needs
            ``phonenumbers``.
        own: accept a shared contact only if it is the sender's own (a "Share my phone" button
            shares it). A typed number is the user's word either way.
        typed: accept a typed number; ``False`` accepts only a shared contact.
        error: shown instead of every built-in reason.

    Raises:
        MissingDependencyError: ``region`` was given and ``phonenumbers`` is not installed.
        ValueError: ``region`` is not a region ``phonenumbers`` knows.
    """
    numbers = _phonenumbers()
    if region is not None:
        if numbers is None:
            raise MissingDependencyError(
                f"v.phone(region={region!r}) reads national numbers with the phonenumbers "
                "package, which is not installed: pip install 'aiostep[phone]' (or leave "
                "region out and ask users for the country code)"
            )
        if region.upper() not in numbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"v.phone(region={region!r}): not a region phonenumbers knows; give a "
                "two-letter country code such as 'GB' or 'US'"
            )
        region = region.upper()
    ask = error or f"Please send a phone number, like {_PHONE_EXAMPLE}."
    ask_country = error or f"Please include the country code, like {_PHONE_EXAMPLE}."

    def validate(value: Any) -> str:
        if isinstance(value, Message) and value.contact is not None:
            if own:
                _own_contact(value, error)
            return _shared_number(value.contact.phone_number)
        if not typed:
            raise ValidationError(error or "Please share your phone number with the button below.")
        raw = _ascii_digits(_text_of(value, "a phone number").strip())
        digits = _SEPARATORS.sub("", raw)
        if not re.fullmatch(r"\+?\d{3,17}", digits):
            raise ValidationError(ask)
        if not digits.startswith("+") and region is None:
            # a national number ("020 7946 0958"): which country it is in cannot be known
            raise ValidationError(ask_country if len(digits) >= 7 else ask)
        if numbers is not None:
            try:
                parsed = numbers.parse(digits, region)
            except numbers.NumberParseException as exc:
                if exc.error_type == numbers.NumberParseException.INVALID_COUNTRY_CODE:
                    raise ValidationError(ask_country) from None
                raise ValidationError(ask) from None
            if not numbers.is_valid_number(parsed):
                raise ValidationError(ask)
            return str(numbers.format_number(parsed, numbers.PhoneNumberFormat.E164))
        if not re.fullmatch(r"\+\d{7,15}", digits):
            raise ValidationError(ask)
        return digits

    return validate


_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")


def date(
    *,
    formats: Sequence[str] = _DATE_FORMATS,
    min: _dt.date | None = None,
    max: _dt.date | None = None,
    error: str | None = None,
) -> Validator:
    """A date in one of ``formats``; returns ``datetime.date`` (store it as ``.isoformat()``)."""

    def validate(value: Any) -> _dt.date:
        if isinstance(value, _dt.date):
            result = value
        else:
            raw = _text_of(value, "a date").strip()
            for fmt in formats:
                try:
                    result = _dt.datetime.strptime(raw, fmt).date()
                    break
                except ValueError:
                    continue
            else:
                example = _dt.date(2024, 12, 31).strftime(formats[0])
                raise ValidationError(error or f"Please send a date like {example}.")
        if (min is not None and result < min) or (max is not None and result > max):
            raise ValidationError(error or "That date is out of range.")
        return result

    return validate


def _message(value: Any, what: str, error: str | None) -> Message:
    if not isinstance(value, Message):
        raise ValidationError(error or f"Please send {what}.")
    return value


def photo(*, error: str | None = None) -> Validator:
    """A photo; returns the ``file_id`` of its largest size."""

    def validate(value: Any) -> str:
        msg = _message(value, "a photo", error)
        if not msg.photo:
            raise ValidationError(error or "Please send a photo.")
        return msg.photo[-1].file_id

    return validate


def document(*, error: str | None = None) -> Validator:
    """A document (file); returns ``{"file_id", "file_name", "mime_type"}``."""

    def validate(value: Any) -> dict[str, Any]:
        msg = _message(value, "a file", error)
        if msg.document is None:
            raise ValidationError(error or "Please send a file.")
        doc = msg.document
        return {"file_id": doc.file_id, "file_name": doc.file_name, "mime_type": doc.mime_type}

    return validate


def contact(*, own: bool = False, error: str | None = None) -> Validator:
    """A shared contact; returns ``{"phone_number", "first_name", "user_id"}`` (a dict, so it
    can be stored), the number normalised to E.164 (``"+15550100000"``).

    Args:
        own: accept only the sender's own contact (``contact.user_id`` is theirs), as a
            ``request="contact"`` button shares it; a contact picked from the address book is
            refused. For a step that also takes a typed number use
            [`v.phone(own=True)`][aiostep_dialogs.validators.phone], which returns the number.
        error: shown instead of the built-in reasons.
    """

    def validate(value: Any) -> dict[str, Any]:
        msg = _message(value, "a contact", error)
        if msg.contact is None:
            raise ValidationError(error or "Please share a contact.")
        if own:
            _own_contact(msg, error)
        c = msg.contact
        return {
            "phone_number": _shared_number(c.phone_number),
            "first_name": c.first_name,
            "user_id": c.user_id,
        }

    return validate


def location(*, error: str | None = None) -> Validator:
    """A shared location; returns ``{"latitude", "longitude"}``."""

    def validate(value: Any) -> dict[str, float]:
        msg = _message(value, "a location", error)
        if msg.location is None:
            raise ValidationError(error or "Please share a location.")
        return {"latitude": msg.location.latitude, "longitude": msg.location.longitude}

    return validate


def poll(*, error: str | None = None) -> Validator:
    """A poll the user created (a ``request="poll"`` button opens the poll editor); returns
    ``{"id", "question", "options", "type", "allows_multiple_answers"}``, ``options`` being
    the option texts."""

    def validate(value: Any) -> dict[str, Any]:
        msg = _message(value, "a poll", error)
        if msg.poll is None:
            raise ValidationError(error or "Please send a poll.")
        p = msg.poll
        return {
            "id": p.id,
            "question": p.question,
            "options": [option.text for option in p.options],
            "type": p.type,
            "allows_multiple_answers": p.allows_multiple_answers,
        }

    return validate


def users_shared(*, request_id: int | None = None, error: str | None = None) -> Validator:
    """Users shared with a ``request="users"`` button; returns a list of
    ``{"user_id", "first_name", "last_name", "username"}`` (the names are ``None`` unless the
    button asked for them: ``KeyboardButtonRequestUsers(request_name=True, ...)``).

    Args:
        request_id: accept only the answer to the button with this ``request_id``.
        error: shown instead of the built-in reason.
    """

    def validate(value: Any) -> list[dict[str, Any]]:
        msg = _message(value, "users", error)
        shared = msg.users_shared
        if shared is None or (request_id is not None and shared.request_id != request_id):
            raise ValidationError(error or "Please choose with the button below.")
        return [
            {
                "user_id": user.user_id,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "username": user.username,
            }
            for user in shared.users
        ]

    return validate


def chat_shared(*, request_id: int | None = None, error: str | None = None) -> Validator:
    """A chat shared with a ``request="chat"`` button; returns
    ``{"chat_id", "title", "username"}`` (``title``/``username`` are ``None`` unless the button
    asked for them).

    Args:
        request_id: accept only the answer to the button with this ``request_id``.
        error: shown instead of the built-in reason.
    """

    def validate(value: Any) -> dict[str, Any]:
        msg = _message(value, "a chat", error)
        shared = msg.chat_shared
        if shared is None or (request_id is not None and shared.request_id != request_id):
            raise ValidationError(error or "Please choose a chat with the button below.")
        return {"chat_id": shared.chat_id, "title": shared.title, "username": shared.username}

    return validate
