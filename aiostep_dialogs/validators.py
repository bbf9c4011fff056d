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
from aiostep_dialogs.i18n import DEFAULT_LOCALE, N_, Language, Localized

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
    """The input is not acceptable; ``reason`` is shown to the user.

    ``reason`` may depend on the user's language (a ``{locale: text}`` dict, a callable
    ``(locale) -> str``, ``lazy_gettext(...)``: see
    [`Localized`][aiostep_dialogs.i18n.Localized]); it is said in the language of the update.
    ``params`` fill its ``{placeholders}`` after translation.
    """

    def __init__(self, reason: Localized, **params: Any) -> None:
        super().__init__(reason)
        #: the reason as given (a string, or a text that depends on the language)
        self.message = reason
        self.params = params

    @property
    def reason(self) -> str:
        """The reason in English (the default locale)."""
        return self.say(Language(DEFAULT_LOCALE))

    def say(self, language: Language) -> str:
        """The reason in ``language``."""
        return language.say(self.message, **self.params)

    def __str__(self) -> str:
        return self.reason


#: Full sentences per kind of expected input (word order and grammatical case differ by
#: language, so a translator gets whole sentences, never a phrase to insert).
_AS_TEXT = {
    "text": N_("Please send a text message."),
    "a number": N_("Please send a number as a text message."),
    "your choice": N_("Please send your choice as a text message."),
    "yes or no": N_("Please send yes or no as a text message."),
    "an e-mail address": N_("Please send an e-mail address as a text message."),
    "a phone number": N_("Please send a phone number as a text message."),
    "a date": N_("Please send a date as a text message."),
}
_SEND = {
    "text": N_("Please send text."),
    "a number": N_("Please send a number."),
    "your choice": N_("Please send your choice."),
    "yes or no": N_("Please send yes or no."),
    "an e-mail address": N_("Please send an e-mail address."),
    "a phone number": N_("Please send a phone number."),
    "a date": N_("Please send a date."),
    "a photo": N_("Please send a photo."),
    "a file": N_("Please send a file."),
    "a contact": N_("Please send a contact."),
    "a location": N_("Please send a location."),
    "a poll": N_("Please send a poll."),
    "users": N_("Please send users."),
    "a chat": N_("Please send a chat."),
}


def _text_of(value: Any, what: str = "text") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Message):
        if value.text is not None:
            return value.text
        raise ValidationError(_AS_TEXT[what])
    raise ValidationError(_SEND[what])


def _given(error: Localized | None) -> bool:
    """Whether ``error=`` was given (not ``None`` or ``""``; a lazy string is not evaluated)."""
    return error is not None and not (isinstance(error, str) and not error)


def _rejected(error: Localized | None, message: str, **params: Any) -> ValidationError:
    """The rejection: the validator's ``error=`` if given, else the built-in ``message``."""
    if error is not None and _given(error):
        return ValidationError(error)
    return ValidationError(message, **params)


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
    error: Localized | None = None,
) -> Validator:
    """A text message, optionally bounded in length and matching ``regex`` (full match)."""
    pattern = re.compile(regex) if isinstance(regex, str) else regex

    def validate(value: Any) -> str:
        result = _text_of(value)
        if strip:
            result = result.strip()
        if min_len is not None and len(result) < min_len:
            raise _rejected(
                error, N_("Please send at least {min_len} characters."), min_len=min_len
            )
        if max_len is not None and len(result) > max_len:
            raise _rejected(
                error, N_("Please keep it to {max_len} characters or fewer."), max_len=max_len
            )
        if pattern is not None and not pattern.fullmatch(result):
            raise _rejected(error, N_("That doesn't look right; please try again."))
        return result

    return validate


def _bounds(value: float, low: float | None, high: float | None, error: Localized | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        if error is not None and _given(error):
            raise ValidationError(error)
        if low is not None and high is not None:
            raise ValidationError(
                N_("Please send a number from {low} to {high}."), low=low, high=high
            )
        if low is not None:
            raise ValidationError(N_("Please send a number of at least {low}."), low=low)
        raise ValidationError(N_("Please send a number of at most {high}."), high=high)


# compiled once: re.fullmatch(pattern, ...) looks its pattern up in re's cache on every answer
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def integer(
    *, min: int | None = None, max: int | None = None, error: Localized | None = None
) -> Validator:
    """A whole number (``int``), optionally within ``[min, max]``."""

    def validate(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        else:
            raw = _text_of(value, "a number").strip().replace(" ", "")
            if not _INTEGER.fullmatch(raw):
                raise _rejected(error, N_("Please send a whole number."))
            result = int(raw)
        _bounds(result, min, max, error)
        return result

    return validate


def number(
    *, min: float | None = None, max: float | None = None, error: Localized | None = None
) -> Validator:
    """A decimal number (``float``; ``,`` accepted as decimal point), optionally bounded."""

    def validate(value: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
        else:
            raw = _text_of(value, "a number").strip().replace(" ", "").replace(",", ".")
            if not _NUMBER.fullmatch(raw) or len(raw) > 40:
                raise _rejected(error, N_("Please send a number, like 12.5."))
            result = float(raw)
        _bounds(result, min, max, error)
        return result

    return validate


def choice(
    options: Mapping[Any, Any] | Sequence[str | int], *, error: Localized | None = None
) -> Validator:
    """One of ``options`` (values, or a ``{value: label}`` mapping); typed labels count too.

    Matching ignores case and surrounding spaces; returns the option's value (a str, or an
    int value typed as its digits).
    """
    mapping = dict(options) if isinstance(options, Mapping) else {o: o for o in options}
    lookup: dict[str, Any] = {}
    for value, label in mapping.items():
        lookup[str(value).casefold()] = value
        lookup[str(label).strip().casefold()] = value

    def validate(value: Any) -> Any:
        if type(value) is int and value in mapping:
            return value  # an int option's value itself (a pressed button's)
        raw = _text_of(value, "your choice").strip().casefold()
        if raw in lookup:
            return lookup[raw]
        labels = ", ".join(str(label) for label in mapping.values())
        raise _rejected(error, N_("Please choose one of: {labels}."), labels=labels)

    return validate


# the languages the built-in texts are translated into: "Please answer yes or no." in Russian
# asks for «да» or «нет», so those are answers too (no word is yes in one and no in another)
_YES = ("yes", "y", "yeah", "yep", "sure", "ok", "true", "1", "да", "sí", "si", "بله", "آره")
_NO = ("no", "n", "nope", "false", "0", "нет", "نه", "خیر")


def yes_no(
    *, yes: Iterable[str] = _YES, no: Iterable[str] = _NO, error: Localized | None = None
) -> Validator:
    """Yes or no, as ``bool``; by default in English, Russian, Spanish and Persian."""
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
        raise _rejected(error, N_("Please answer yes or no."))

    return validate


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[A-Za-z]{2,63}")


def email(*, error: Localized | None = None) -> Validator:
    """An e-mail address (lower-cased domain)."""

    def validate(value: Any) -> str:
        raw = _text_of(value, "an e-mail address").strip()
        if not _EMAIL.fullmatch(raw):
            raise _rejected(error, N_("Please send a valid e-mail address, like name@example.com."))
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


def _own_contact(msg: Message, error: Localized | None) -> None:
    sender = msg.from_user
    shared = msg.contact
    if shared is None or sender is None or shared.user_id != sender.id:
        raise _rejected(
            error,
            N_("Please share your own contact (the button below shares it), not someone else's."),
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
    error: Localized | None = None,
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
    # whole sentences for the catalog (the example number is the one _PHONE_EXAMPLE names)
    ask = N_("Please send a phone number, like +44 20 7946 0958.")
    ask_country = N_("Please include the country code, like +44 20 7946 0958.")

    def validate(value: Any) -> str:
        if isinstance(value, Message) and value.contact is not None:
            if own:
                _own_contact(value, error)
            return _shared_number(value.contact.phone_number)
        if not typed:
            raise _rejected(error, N_("Please share your phone number with the button below."))
        raw = _ascii_digits(_text_of(value, "a phone number").strip())
        digits = _SEPARATORS.sub("", raw)
        if not re.fullmatch(r"\+?\d{3,17}", digits):
            raise _rejected(error, ask)
        if not digits.startswith("+") and region is None:
            # a national number ("020 7946 0958"): which country it is in cannot be known
            raise _rejected(error, ask_country if len(digits) >= 7 else ask)
        if numbers is not None:
            try:
                parsed = numbers.parse(digits, region)
            except numbers.NumberParseException as exc:
                if exc.error_type == numbers.NumberParseException.INVALID_COUNTRY_CODE:
                    raise _rejected(error, ask_country) from None
                raise _rejected(error, ask) from None
            if not numbers.is_valid_number(parsed):
                raise _rejected(error, ask)
            return str(numbers.format_number(parsed, numbers.PhoneNumberFormat.E164))
        if not re.fullmatch(r"\+\d{7,15}", digits):
            raise _rejected(error, ask)
        return digits

    return validate


_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y")


def date(
    *,
    formats: Sequence[str] = _DATE_FORMATS,
    min: _dt.date | None = None,
    max: _dt.date | None = None,
    error: Localized | None = None,
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
                raise _rejected(error, N_("Please send a date like {example}."), example=example)
        if (min is not None and result < min) or (max is not None and result > max):
            raise _rejected(error, N_("That date is out of range."))
        return result

    return validate


def _message(value: Any, what: str, error: Localized | None) -> Message:
    if not isinstance(value, Message):
        raise _rejected(error, _SEND[what])
    return value


def photo(*, error: Localized | None = None) -> Validator:
    """A photo; returns the ``file_id`` of its largest size."""

    def validate(value: Any) -> str:
        msg = _message(value, "a photo", error)
        if not msg.photo:
            raise _rejected(error, N_("Please send a photo."))
        return msg.photo[-1].file_id

    return validate


def document(*, error: Localized | None = None) -> Validator:
    """A document (file); returns ``{"file_id", "file_name", "mime_type"}``."""

    def validate(value: Any) -> dict[str, Any]:
        msg = _message(value, "a file", error)
        if msg.document is None:
            raise _rejected(error, N_("Please send a file."))
        doc = msg.document
        return {"file_id": doc.file_id, "file_name": doc.file_name, "mime_type": doc.mime_type}

    return validate


def contact(*, own: bool = False, error: Localized | None = None) -> Validator:
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
            raise _rejected(error, N_("Please share a contact."))
        if own:
            _own_contact(msg, error)
        c = msg.contact
        return {
            "phone_number": _shared_number(c.phone_number),
            "first_name": c.first_name,
            "user_id": c.user_id,
        }

    return validate


def location(*, error: Localized | None = None) -> Validator:
    """A shared location; returns ``{"latitude", "longitude"}``."""

    def validate(value: Any) -> dict[str, float]:
        msg = _message(value, "a location", error)
        if msg.location is None:
            raise _rejected(error, N_("Please share a location."))
        return {"latitude": msg.location.latitude, "longitude": msg.location.longitude}

    return validate


def poll(*, error: Localized | None = None) -> Validator:
    """A poll the user created (a ``request="poll"`` button opens the poll editor); returns
    ``{"id", "question", "options", "type", "allows_multiple_answers"}``, ``options`` being
    the option texts."""

    def validate(value: Any) -> dict[str, Any]:
        msg = _message(value, "a poll", error)
        if msg.poll is None:
            raise _rejected(error, N_("Please send a poll."))
        p = msg.poll
        return {
            "id": p.id,
            "question": p.question,
            "options": [option.text for option in p.options],
            "type": p.type,
            "allows_multiple_answers": p.allows_multiple_answers,
        }

    return validate


def users_shared(*, request_id: int | None = None, error: Localized | None = None) -> Validator:
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
            raise _rejected(error, N_("Please choose with the button below."))
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


def chat_shared(*, request_id: int | None = None, error: Localized | None = None) -> Validator:
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
            raise _rejected(error, N_("Please choose a chat with the button below."))
        return {"chat_id": shared.chat_id, "title": shared.title, "username": shared.username}

    return validate


#: the built-in validator factories, by ``id`` (a user's validator may not be hashable)
_FACTORIES: dict[int, Callable[..., Any]] = {
    id(factory): factory
    for factory in (
        *(text, integer, number, choice, yes_no, email, phone, date, photo, document),
        *(contact, location, poll, users_shared, chat_shared, chain),
    )
}


def refuse_factories(validators: Iterable[Validator], where: str) -> None:
    """Refuse a built-in validator factory given as a validator (``validate=v.integer``): it
    would be called with the user's message and fail on every answer.

    Raises:
        TypeError: naming the factory and the call to write instead.
    """
    for validator in validators:
        if _FACTORIES.get(id(validator)) is validator:
            name = getattr(validator, "__name__", repr(validator))
            args = "..." if validator is choice else ""  # the one that needs its options
            raise TypeError(
                f"{where}: validate=v.{name} is the factory of a validator, not one; "
                f"call it: v.{name}({args})"
            )
