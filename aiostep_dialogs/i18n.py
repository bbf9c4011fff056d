"""Languages: texts said in the user's language, and the catalogs of the built-in texts.

A text a wizard says (a prompt, ``error=``, a choice label, a field of
[`Texts`][aiostep_dialogs.Texts], a validator's ``error=`` or reason) is a
[`Localized`][aiostep_dialogs.i18n.Localized]: a plain string (said as is), a ``{locale: text}``
mapping, a callable ``(locale) -> str``, or a lazy string (aiogram's ``lazy_gettext``, any
Babel ``LazyProxy``). It is resolved when it is said, in the language of the update being
handled ([`locale_of`][aiostep_dialogs.i18n.locale_of]).

The built-in texts and validator reasons are messages of the gettext domain ``aiostep_dialogs``
(catalogs under ``aiostep_dialogs/locales``, read with the standard library's ``gettext``).
"""

from __future__ import annotations

import gettext
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from aiogram import Dispatcher
from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware

if TYPE_CHECKING:
    from babel.support import LazyProxy
else:  # Babel's LazyProxy when Babel is installed, else a stand-in no object is an instance of
    from aiogram.utils.i18n.lazy_proxy import LazyProxy

logger = logging.getLogger("aiostep_dialogs")

__all__ = [
    "DEFAULT_LOCALE",
    "DOMAIN",
    "LOCALES_DIR",
    "N_",
    "Language",
    "LazyProxy",
    "Localized",
    "catalog",
    "check_localized",
    "is_localized",
    "locale_now",
    "locale_of",
    "localize",
]

DEFAULT_LOCALE = "en"
"""The locale of a user whose language is not known (no update, no ``language_code``)."""
DOMAIN = "aiostep_dialogs"
"""The gettext domain of the built-in texts."""
LOCALES_DIR = Path(__file__).parent / "locales"
"""Where the compiled catalogs are: ``<locale>/LC_MESSAGES/aiostep_dialogs.mo``."""

Localized: TypeAlias = "str | Mapping[str, str] | Callable[[str], str] | LazyProxy"
"""A text that may depend on the user's language: a plain string (said as is), a
``{locale: text}`` dict (the user's locale, else its language, else ``"en"``, else the first
text), a callable ``(locale) -> str``, or a lazy string (aiogram's ``lazy_gettext(...)``)."""


class _Builtin(str):
    """A built-in text: a message of the ``aiostep_dialogs`` catalog, said translated."""

    __slots__ = ()


def N_(text: str) -> str:
    """Mark ``text`` as a built-in message: extracted into the catalog (``pybabel -k N_``) and
    said in the user's language. Not for a bot's own texts (they are not in the catalog)."""
    return _Builtin(text)


_catalogs: dict[str, gettext.NullTranslations] = {}
_MAX_CATALOGS = 64  # language codes come from users' clients: keep the cache bounded


def _language_part(locale: str) -> str:
    return locale.replace("-", "_").partition("_")[0].lower()


def catalog(locale: str) -> gettext.NullTranslations:
    """The built-in texts' translations for ``locale`` (``"pt-br"`` looks for ``pt``); a
    locale without a catalog gets the English texts."""
    language = _language_part(locale)
    found = _catalogs.get(language)
    if found is None:
        if not (language.isascii() and language.isalpha()):
            language = DEFAULT_LOCALE  # a language code names a directory: letters only
        found = gettext.translation(DOMAIN, LOCALES_DIR, languages=[language], fallback=True)
        if len(_catalogs) < _MAX_CATALOGS:
            _catalogs[language] = found
    return found


def is_localized(text: object) -> bool:
    """Whether ``text`` depends on the language (anything but a plain string)."""
    return not isinstance(text, str) or isinstance(text, _Builtin)


def check_localized(text: object, what: str) -> None:
    """Refuse, where it is declared, a ``{locale: text}`` dict no one could be answered from.

    Raises:
        ValueError: the dict is empty.
        TypeError: a key or a text is not a string.
    """
    if not isinstance(text, Mapping):
        return
    if not text:
        raise ValueError(f"{what}={{}}: give at least one text, e.g. {{'en': '...'}}")
    for locale, said in text.items():
        if not isinstance(locale, str) or not isinstance(said, str):
            raise TypeError(
                f"{what}: the {{locale: text}} dict has {locale!r}: {said!r}; keys are "
                "language codes ('en', 'ru') and texts are strings"
            )


def _pick(texts: Mapping[str, str], locale: str) -> str:
    """The text of ``locale`` in ``texts``: exact, then the same tag written otherwise
    (``pt-BR``, ``pt_BR`` for ``pt-br``), then its language (``pt-br`` -> ``pt``), then
    English, then the first one."""
    found = texts.get(locale)
    if found is None:
        wanted = locale.replace("_", "-").lower()
        language = _language_part(locale)
        of_language = None
        for key, said in texts.items():
            written = key.replace("_", "-").lower() if isinstance(key, str) else key
            if written == wanted:
                found = said
                break
            if written == language and of_language is None:
                of_language = said
        if found is None:
            found = of_language
        if found is None:
            found = texts.get(DEFAULT_LOCALE)
            if found is None:
                first = next(iter(texts.values()), None)
                if first is None:
                    raise ValueError("a {locale: text} mapping must not be empty")
                found = first
    return found


@contextmanager
def _speaking(locale: str, i18n: I18n | None) -> Iterator[None]:
    """aiogram's ``gettext``/``lazy_gettext`` answer in ``locale`` inside this block."""
    if i18n is None:
        yield
        return
    with i18n.context(), i18n.use_locale(locale):
        yield


def localize(text: Localized, locale: str, i18n: I18n | None = None, **params: Any) -> str:
    """``text`` in ``locale``; ``params`` fill the placeholders of a built-in message (and of
    any text when given).

    Args:
        text: see [`Localized`][aiostep_dialogs.i18n.Localized].
        locale: a language code (``"ru"``, ``"pt-br"``).
        i18n: aiogram's ``I18n`` that lazy strings and ``gettext`` calls in callables use
            (default: the one whose context is active, if any).

    Raises:
        TypeError: ``text`` is none of the accepted kinds, or a callable returned no string.
    """
    result: object
    if isinstance(text, _Builtin):
        result = catalog(locale).gettext(text)
    elif isinstance(text, str):
        result = text
    elif isinstance(text, Mapping):
        result = _pick(text, locale)
    elif isinstance(text, LazyProxy) or callable(text):
        if i18n is None:
            i18n = I18n.get_current(no_error=True)
        with _speaking(locale, i18n):
            result = str(text) if isinstance(text, LazyProxy) else text(locale)
    else:
        raise TypeError(
            f"cannot say {text!r}: give a str, a {{locale: text}} dict, a callable "
            "(locale) -> str or a lazy_gettext(...) string"
        )
    if not isinstance(result, str):
        raise TypeError(f"the text callable {text!r} returned {result!r}; return a str")
    return result.format(**params) if params else result


class Language(NamedTuple):
    """The language an update is answered in: its ``locale``, and aiogram's ``I18n`` when the
    bot installed its i18n middleware (lazy strings resolve through it)."""

    locale: str
    i18n: I18n | None = None

    def say(self, text: Localized, **params: Any) -> str:
        """``text`` in this language (see [`localize`][aiostep_dialogs.i18n.localize])."""
        return localize(text, self.locale, self.i18n, **params)

    @contextmanager
    def speaking(self) -> Iterator[None]:
        """aiogram's ``gettext``/``lazy_gettext`` answer in this language inside the block."""
        with _speaking(self.locale, self.i18n):
            yield


def _i18n_middlewares(data: Mapping[str, Any]) -> Iterator[I18nMiddleware]:
    dispatcher = data.get("dispatcher")
    if not isinstance(dispatcher, Dispatcher):
        return
    seen: set[int] = set()
    # the update observer's first: installed there, it chose before any event's middleware
    for observer in (dispatcher.update, dispatcher.message, dispatcher.callback_query):
        for middleware in observer.outer_middleware:
            if isinstance(middleware, I18nMiddleware) and id(middleware) not in seen:
                seen.add(id(middleware))
                yield middleware


def _user_locale(event: TelegramObject | None, data: Mapping[str, Any]) -> str | None:
    # the event's sender first: a wizard started for one user from another's update
    # (``Wizard.start(event)`` in an admin's handler) speaks the language of its own user
    user = getattr(event, "from_user", None)
    if not isinstance(user, User):
        user = data.get("event_from_user")
    code = getattr(user, "language_code", None)
    return code if isinstance(code, str) and code else None


_warned: set[int] = set()


def _warn_late(middleware: I18nMiddleware) -> None:
    """Say once per middleware that it runs after the wizards' steps."""
    if id(middleware) in _warned:
        return
    _warned.add(id(middleware))
    logger.warning(
        "%s runs after aiostep's Listen, so wizard steps run before it chose a language: "
        "texts given to a wizard are still said in its choice (it is asked), but gettext() "
        "called directly in a step method or hook finds no I18n context. Install it before "
        "Wizard.setup / aiostep.setup (middleware.setup(dp) first)",
        type(middleware).__name__,
    )


def _ran(middleware: I18nMiddleware, data: Mapping[str, Any]) -> bool:
    """Whether ``middleware`` already chose the language of this update (we run inside it)."""
    return data.get(middleware.middleware_key) is middleware


def locale_now(
    event: TelegramObject | None, data: Mapping[str, Any], stored: str | None = None
) -> Language:
    """The language to answer ``event`` in, without awaiting anything: as
    [`locale_of`][aiostep_dialogs.i18n.locale_of], except that an i18n middleware that has not
    run for this update yet is not asked (the sender's ``language_code`` is taken)."""
    i18n = None
    for middleware in _i18n_middlewares(data):
        i18n = middleware.i18n
        if _ran(middleware, data):
            return Language(i18n.current_locale, i18n)  # we are inside its choice
        break
    if i18n is None:
        i18n = I18n.get_current(no_error=True)
    user_locale = _user_locale(event, data)
    if user_locale is not None:
        return Language(user_locale, i18n)
    return Language(stored or DEFAULT_LOCALE, i18n)


async def locale_of(
    event: TelegramObject | None, data: Mapping[str, Any], stored: str | None = None
) -> Language:
    """The language to answer ``event`` in.

    In order: the choice of aiogram's i18n middleware when the bot installed one (asked now
    if it runs after aiostep's ``Listen`` and has not chosen yet); the sender's Telegram
    ``language_code``; ``stored`` (the language a conversation was stored with, for a message
    sent with no update); [`DEFAULT_LOCALE`][aiostep_dialogs.i18n.DEFAULT_LOCALE].

    Args:
        event: the update's event (``None``: no update).
        data: the update's handler data (``dispatcher``, ``event_from_user``...).
        stored: the locale stored with the conversation, if any.
    """
    if event is not None:
        for middleware in _i18n_middlewares(data):
            if not _ran(middleware, data):
                _warn_late(middleware)
                chosen = await middleware.get_locale(event=event, data=dict(data))
                i18n = middleware.i18n
                return Language(chosen or i18n.default_locale, i18n)
            break
    return locale_now(event, data, stored)
