"""Languages: every text a wizard says follows the user's language (the sender's Telegram
``language_code``, or the choice of aiogram's i18n middleware), built-in texts and validator
reasons come translated (en, ru, es, fa), and a wizard's own texts may be a ``{locale: text}``
dict, a callable or a ``lazy_gettext`` string, resolved when they are said."""

from __future__ import annotations

from enum import Enum, auto
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.utils.i18n import ConstI18nMiddleware, I18n, SimpleI18nMiddleware
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

import aiostep_dialogs.wizard as wizard_module
from aiostep.keys import ConversationKey, storage_key
from aiostep.testing import BotSimulator, Conversation
from aiostep_dialogs import Finish, PrivateChatOnlyError, Texts, ValidationError, Wizard, step, v

if TYPE_CHECKING:
    from conftest import Backend


class Age(Wizard, name="t_i18n_age"):
    """Plain strings only: its built-in texts and validator reasons still follow the user."""

    show_progress = True

    class State(Enum):
        AGE = auto()
        SURE = auto()

    @step(State.AGE, prompt="Age?", validate=v.integer(min=1, max=120))
    async def age(self, value: int) -> None:
        self.data["age"] = value

    @step(State.SURE, prompt="Sure?", validate=v.yes_no())
    async def sure(self, value: bool) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"ok {self.result}")


def age_bot(dp: Dispatcher, storage: object) -> None:
    Age.setup(dp, entry=Command("age"), storage=storage)


def speaker(sim: BotSimulator, language: str | None) -> Conversation:
    return sim.chat(sim.user(language_code=language))


# what each language says for: progress of step 1, a number out of range, the first step's
# /back, a yes/no answer that is neither, and /cancel
SAID = {
    "ru": (
        "Шаг 1 из 2",
        "Пожалуйста, отправьте число от 1 до 120.",
        "Это первый шаг: возвращаться некуда.",
        "Пожалуйста, ответьте «да» или «нет».",
        "Отменено.",
        "да",
    ),
    "es": (
        "Paso 1 de 2",
        "Envía un número del 1 al 120, por favor.",
        "Este es el primer paso; no hay ningún paso anterior al que volver.",
        "Responde sí o no, por favor.",
        "Cancelado.",
        "sí",
    ),
    "fa": (
        "مرحلهٔ 1 از 2",
        "لطفاً عددی از 1 تا 120 بفرستید.",
        "این نخستین مرحله است؛ مرحله\u200cای برای بازگشت نیست.",
        "لطفاً با «بله» یا «نه» پاسخ دهید.",
        "لغو شد.",
        "بله",
    ),
    "en": (
        "Step 1 of 2",
        "Please send a number from 1 to 120.",
        "This is the first step; there is nothing to go back to.",
        "Please answer yes or no.",
        "Cancelled.",
        "yes",
    ),
}


@pytest.mark.parametrize("language", ["ru", "es", "fa"])
async def test_built_in_texts_and_validator_reasons_speak_the_users_language(
    backend: Backend, language: str
) -> None:
    progress, out_of_range, cannot_go_back, not_yes_no, cancelled, yes = SAID[language]
    talk = speaker(backend.simulator(age_bot), language)
    await talk.send("/age")
    talk.assert_last(f"{progress}\nAge?")
    await talk.send("/back")
    assert talk.transcript().count(cannot_go_back) == 1
    await talk.send("500")
    talk.assert_last(f"{out_of_range}\n\n{progress}\nAge?")
    await talk.send("30")
    await talk.send("maybe")
    assert not_yes_no in (talk.last or "")
    await talk.send(yes)  # the yes of that language is understood
    talk.assert_last("ok True")
    await talk.send("/age")
    await talk.send("/cancel")
    talk.assert_last(cancelled)


@pytest.mark.parametrize("language", ["de", None, "pt-br", "../../ru", "ру"])
async def test_an_unknown_or_missing_language_falls_back_to_english(
    bot_simulator: Any, language: str | None
) -> None:
    dp = Dispatcher()
    age_bot(dp, None)
    talk = speaker(bot_simulator(dp), language)
    await talk.send("/age")
    await talk.send("0")
    progress, out_of_range, *_ = SAID["en"]
    talk.assert_last(f"{out_of_range}\n\n{progress}\nAge?")


async def test_a_russian_user_with_a_territory_gets_the_russian_texts(bot_simulator: Any) -> None:
    dp = Dispatcher()
    age_bot(dp, None)
    talk = speaker(bot_simulator(dp), "ru-RU")
    await talk.send("/age")
    talk.assert_last("Шаг 1 из 2\nAge?")


# -- the bot's own catalog, as an aiogram bot with i18n has it -----------------------------------

BOT_TEXTS = {
    "ru": {"What is your name?": "Как вас зовут?", "Hello, {name}!": "Привет, {name}!"},
    "es": {"What is your name?": "¿Cómo te llamas?", "Hello, {name}!": "¡Hola, {name}!"},
}


def compile_bot_catalogs(root: Path) -> Path:
    """A locales dir with the bot's own ``messages`` domain in ru and es, compiled here."""
    for locale, texts in BOT_TEXTS.items():
        catalog = Catalog(locale=locale, domain="messages")
        for msgid, msgstr in texts.items():
            catalog.add(msgid, msgstr)
        target = root / locale / "LC_MESSAGES"
        target.mkdir(parents=True)
        with (target / "messages.mo").open("wb") as f:
            write_mo(f, catalog)
    return root


class Greeter(Wizard, name="t_i18n_greeter"):
    """Prompts through the bot's gettext catalog: lazy and called from a callable."""

    class State(Enum):
        NAME = auto()
        COLOUR = auto()

    @step(State.NAME, prompt=__("What is your name?"), validate=v.text(min_len=2))
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.COLOUR,
        prompt=lambda self: _("Hello, {name}!").format(name=self.data["name"]),
        choices={"red": {"en": "Red", "ru": "Красный", "es": "Rojo"}},
    )
    async def colour(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer(f"{self.result} ({self.locale})")


@pytest.mark.parametrize("installed", ["before", "after"])
async def test_the_i18n_middleware_chooses_the_language(
    bot_simulator: Any, tmp_path: Path, installed: str, caplog: pytest.LogCaptureFixture
) -> None:
    """SimpleI18nMiddleware's choice, whether it runs before aiostep's Listen (installed
    before ``Wizard.setup``) or after it (then the wizard asks it)."""
    i18n = I18n(path=compile_bot_catalogs(tmp_path / "locales"), default_locale="en")
    dp = Dispatcher()
    if installed == "before":
        SimpleI18nMiddleware(i18n).setup(dp)
    Greeter.setup(dp, entry=Command("hi"))
    Age.setup(dp, entry=Command("age"))
    if installed == "after":
        SimpleI18nMiddleware(i18n).setup(dp)
    sim = bot_simulator(dp)

    ru = speaker(sim, "ru")
    await ru.send("/hi")
    ru.assert_last("Как вас зовут?")  # lazy_gettext, in the middleware's language
    await ru.send("A")
    assert (ru.last or "").startswith("Пожалуйста, отправьте текст подлиннее")
    await ru.send("Аня")
    ru.assert_last("Привет, Аня!", buttons=[["Красный"]])
    await ru.click("Красный")
    ru.assert_last("red (ru)")

    # the bot has no Persian catalog: the middleware chooses its default, English, and the
    # wizard's built-in texts follow that choice rather than the user's language_code
    fa = speaker(sim, "fa")
    await fa.send("/age")
    await fa.send("0")
    assert (fa.last or "").startswith("Please send a number from 1 to 120.")
    # installed after: said once, since gettext() in a step method would find no context
    late = [r for r in caplog.records if "runs after aiostep's Listen" in r.getMessage()]
    assert len(late) == (1 if installed == "after" else 0)


async def test_a_const_i18n_middleware_overrides_the_users_language(
    bot_simulator: Any, tmp_path: Path
) -> None:
    i18n = I18n(path=compile_bot_catalogs(tmp_path / "locales"))
    dp = Dispatcher()
    Greeter.setup(dp, entry=Command("hi"))
    Age.setup(dp, entry=Command("age"))
    ConstI18nMiddleware("es", i18n).setup(dp)
    talk = speaker(bot_simulator(dp), "ru")
    await talk.send("/hi")
    talk.assert_last("¿Cómo te llamas?")
    await talk.send("Ana")
    talk.assert_last("¡Hola, Ana!", buttons=[["Rojo"]])
    await talk.send("rojo")  # a typed label of that language is a choice too
    talk.assert_last("red (es)")
    await talk.send("/age")
    await talk.send("/back")  # a command's reply goes through the middleware's choice too
    assert talk.transcript().count(SAID["es"][2]) == 1


async def test_a_stale_buttons_toast_speaks_the_users_language(backend: Backend) -> None:
    talk = speaker(backend.simulator(order_bot), "ru")
    await talk.send("/order")
    await talk.send("Ира")
    await talk.send("/cancel")
    await talk.click("Маленький")  # the prompt of a wizard that is over
    assert talk.toasts == ["Эта кнопка больше не действует."]


# -- a wizard's own texts: {locale: text}, callables -----------------------------------------


def too_short(locale: str) -> str:
    return "Слишком коротко." if locale.startswith("ru") else "Too short."


def no_digits(value: str) -> str:
    if any(c.isdigit() for c in value):
        raise ValidationError(
            {"en": "No digits in {field}, please.", "ru": "Без цифр в {field}."}, field="name"
        )
    return value


class Order(Wizard, name="t_i18n_order"):
    """A wizard written in two languages with dicts and callables."""

    texts = Texts(cancelled={"en": "Order dropped.", "ru": "Заказ отменён."})

    class State(Enum):
        NAME = auto()
        SIZE = auto()
        NOTE = auto()

    @step(
        State.NAME,
        prompt={"en": "Your name?", "ru": "Ваше имя?"},
        validate=[v.text(min_len=2, error=too_short), no_digits],
    )
    async def name(self, value: str) -> None:
        self.data["name"] = value

    @step(
        State.SIZE,
        prompt=lambda locale: "Размер?" if locale == "ru" else "Size?",
        choices={"s": {"en": "Small", "ru": "Маленький"}, "l": {"en": "Large", "ru": "Большой"}},
        error={"en": "Pick a size.", "ru": "Выберите размер."},
    )
    async def size(self, value: str) -> None:
        self.data["size"] = value

    @step(State.NOTE, prompt=lambda self: f"[{self.locale}] {self.data['name']}, a note?")
    async def note(self, value: str) -> Finish:
        return self.finish(value)

    async def on_finish(self) -> None:
        await self.answer({"en": "Thanks, {name}!", "ru": "Спасибо!"}[self.locale])


def order_bot(dp: Dispatcher, storage: object) -> None:
    Order.setup(dp, entry=Command("order"), storage=storage)


async def test_a_mapping_prompt_callables_and_localized_labels_follow_the_user(
    backend: Backend,
) -> None:
    sim = backend.simulator(order_bot)
    ru = speaker(sim, "ru")
    en = speaker(sim, "en")
    await ru.send("/order")
    await en.send("/order")
    ru.assert_last("Ваше имя?")
    en.assert_last("Your name?")
    await ru.send("A")
    ru.assert_last("Слишком коротко.\n\nВаше имя?")  # a validator's error= callable
    await ru.send("R2")
    ru.assert_last("Без цифр в name.\n\nВаше имя?")  # a ValidationError({locale: text})
    await en.send("E2")
    en.assert_last("No digits in name, please.\n\nYour name?")
    await ru.send("Ира")
    ru.assert_last("Размер?", buttons=[["Маленький", "Большой"]])  # a (locale) callable
    await ru.send("huge")
    ru.assert_last("Выберите размер.\n\nРазмер?")  # error= as a dict
    await ru.click("Большой")
    ru.assert_last("[ru] Ира, a note?")  # a (wizard) callable reads self.locale
    await en.send("Ed")
    en.assert_last("Size?", buttons=[["Small", "Large"]])
    await en.send("small")
    en.assert_last("[en] Ed, a note?")
    await en.send("/cancel")
    en.assert_last("Order dropped.")  # a Texts field as a dict


async def test_the_language_is_stored_and_survives_a_restart(backend: Backend) -> None:
    sim = backend.simulator(order_bot)
    talk = speaker(sim, "ru")
    await talk.send("/order")
    await talk.send("Ира")
    record = await backend.storage.read(storage_key(key_of(talk)))
    assert record is not None and record.kwargs["l"] == "ru"
    if backend.persistent:
        await sim.restart()
    await talk.click("Маленький")
    talk.assert_last("[ru] Ира, a note?")
    await talk.send("/cancel")
    talk.assert_last("Заказ отменён.")


async def test_a_message_sent_with_no_update_speaks_the_stored_language(
    backend: Backend,
) -> None:
    """What a scheduler says to a paused conversation (a timeout, a reminder) has no update to
    take a language from: the one stored with the conversation, from its first step on."""
    sim = backend.simulator(order_bot)
    talk = speaker(sim, "ru")
    await talk.send("/order")
    if backend.persistent:
        await sim.restart()
    key = key_of(talk)
    record = await backend.storage.read(storage_key(key))
    assert record is not None and record.kwargs["l"] == "ru"
    paused = Order._restore(record, key, sim.bot, None)
    assert paused is not None
    assert paused.locale == "ru"
    await paused.answer(Order.texts.cancelled)
    talk.assert_last("Заказ отменён.")
    await paused.answer(Wizard.texts.gave_up)  # a built-in text too
    talk.assert_last(
        "Слишком много попыток, давайте на этом остановимся. Начать заново можно в любой момент."
    )


@pytest.mark.parametrize(("bot", "language"), [(order_bot, "en"), (age_bot, "ru")])
async def test_no_language_is_stored_when_none_is_needed(
    backend: Backend, bot: Any, language: str
) -> None:
    """English is what a conversation with nothing stored speaks; a wizard of plain strings
    says nothing in a language with no update to answer, so it stores none."""
    talk = speaker(backend.simulator(bot), language)
    await talk.send("/order" if bot is order_bot else "/age")
    await talk.send("Ed" if bot is order_bot else "0")
    await talk.send("Ed" if bot is order_bot else "20")
    record = await backend.storage.read(storage_key(key_of(talk)))
    assert record is not None and "l" not in record.kwargs


def key_of(talk: Conversation) -> ConversationKey:
    return ConversationKey(talk.chat.id, talk.user.id, talk.thread_id, talk.sim.bot.id)


# -- cost ----------------------------------------------------------------------------------------


def refuse_bad(message: Any) -> str:
    if message.text == "bad":
        raise ValidationError("Not that.")
    return str(message.text)


async def test_a_wizard_of_plain_strings_works_out_no_language_per_answer(
    bot_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain prompts, labels and accepted answers: no locale detection, no catalog lookup."""
    calls: list[str] = []
    for name in ("locale_of", "locale_now"):
        real = getattr(wizard_module, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(wizard_module, name, spy)

    class Plain(Wizard, name="t_i18n_plain"):
        class State(Enum):
            A = auto()
            B = auto()

        @step(State.A, prompt="A?", validate=refuse_bad)
        async def a(self, value: str) -> None: ...

        @step(State.B, prompt="B {x}?", choices={"x": "X"})
        async def b(self, value: str) -> None: ...

    assert not any(spec.localized for spec in Plain._steps)
    dp = Dispatcher()
    Plain.setup(dp, entry=Command("plain"))
    talk = speaker(bot_simulator(dp), "ru")
    await talk.send("/plain")
    await talk.send("bad")  # your own plain reason: said as is
    talk.assert_last("Not that.\n\nA?")
    await talk.send("a")
    await talk.click("X")
    assert calls == []
    await talk.send("/plain")
    await talk.send("/back")  # a built-in text: now the language is worked out
    assert calls == ["locale_now"]


# -- bad input -------------------------------------------------------------------------------


def test_an_empty_language_dict_is_refused_where_it_is_declared() -> None:
    with pytest.raises(ValueError, match=r"prompt=\{\}"):

        class Empty(Wizard, name="t_i18n_empty"):
            class State(Enum):
                A = auto()

            @step(State.A, prompt={})
            async def a(self, value: str) -> None: ...


def test_a_language_dict_of_non_strings_is_refused_where_it_is_declared() -> None:
    with pytest.raises(TypeError, match="'ru'"):

        class Odd(Wizard, name="t_i18n_odd"):
            class State(Enum):
                A = auto()

            @step(State.A, prompt={"en": "A?", "ru": 42})  # type: ignore[dict-item]
            async def a(self, value: str) -> None: ...


# -- choices from data, multi-select, pages and request buttons ------------------------------


def cities(locale: str) -> dict[str, str]:
    """A choices callable that takes only ``locale``: it gets the user's language."""
    names = {"msk": ("Moscow", "Москва"), "spb": ("St Petersburg", "Петербург")}
    names |= {"kzn": ("Kazan", "Казань"), "ekb": ("Yekaterinburg", "Екатеринбург")}
    ru = locale.startswith("ru")
    return {value: pair[1] if ru else pair[0] for value, pair in names.items()}


class Trip(Wizard, name="t_i18n_trip"):
    """Paged options from a callable, a multi-select of localized labels, a request button:
    every button, toast and reason of theirs comes from ``Texts`` or the step."""

    class State(Enum):
        CITY = auto()
        EXTRAS = auto()
        PHONE = auto()

    @step(State.CITY, prompt={"en": "City?", "ru": "Город?"}, choices=cities, per_page=2)
    async def city(self, value: str) -> None:
        self.data["city"] = value

    @step(
        State.EXTRAS,
        prompt={"en": "Extras?", "ru": "Дополнительно?"},
        choices={"bag": {"en": "Bag", "ru": "Багаж"}, "meal": {"en": "Meal", "ru": "Обед"}},
        multi=True,
        min=2,
        max=2,
    )
    async def extras(self, value: list[str]) -> None:
        self.data["extras"] = value

    @step(State.PHONE, prompt={"en": "Phone?", "ru": "Телефон?"}, request="contact")
    async def phone_number(self, value: dict[str, Any]) -> Finish:
        return self.finish(value["phone_number"])

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['city']} {self.data['extras']} {self.result}")


def trip_bot(dp: Dispatcher, storage: object) -> None:
    Trip.setup(dp, entry=Command("trip"), storage=storage)


async def test_choices_multi_select_and_request_buttons_speak_russian(backend: Backend) -> None:
    sim = backend.simulator(trip_bot)
    group = sim.group()
    talk = sim.chat(sim.user(language_code="ru"), group)
    other = sim.chat(sim.user(language_code="ru"), group)
    await talk.send("/trip")
    talk.assert_last("Город?", buttons=[["Москва", "Петербург"], ["Далее »"]])
    await talk.click("Далее »")
    page = talk.last_message
    assert page is not None and page.buttons == [["Казань", "Екатеринбург"], ["« Назад"]]
    await other.click("Казань", message=page)  # another user's button
    assert other.toasts == ["Эта кнопка не для вас."]
    await talk.send("Хабаровск")  # a typed miss at a paged step: use the buttons
    assert talk.last is not None and talk.last.startswith("Пожалуйста, воспользуйтесь кнопками.")
    await talk.send("казань")  # a typed label in the user's language is an answer
    talk.assert_last("Дополнительно?", buttons=[["Багаж", "Обед"], ["Готово"]])
    extras = talk.last_message
    assert extras is not None
    await talk.click("Багаж")
    await talk.click("Готово")  # one of two: refused with a toast
    assert talk.toasts[-1] == "Выберите хотя бы 2."
    assert extras.buttons == [["✅ Багаж", "Обед"], ["Готово"]]
    await talk.click("Обед")
    with pytest.raises(PrivateChatOnlyError):  # request buttons work in private chats only
        await talk.click("Готово")
    assert talk.last == "Этот шаг работает только в личном чате со мной."

    ru = sim.chat(sim.user(language_code="ru"))  # the request button, in a private chat
    await ru.send("/trip")
    await ru.click("Москва")
    await ru.click("Багаж")
    await ru.click("Обед")
    await ru.click("Готово")
    ru.assert_last("Телефон?")
    assert ru.keyboard == [["Поделиться номером телефона"]]
    await ru.send("+7 900 000-00-00")  # typed, where only the button's answer is taken
    assert ru.last == "Пожалуйста, нажмите кнопку «Поделиться номером телефона» ниже.\n\nТелефон?"
    await ru.press("Поделиться номером телефона")
    assert ru.last is not None and ru.last.startswith("msk ['bag', 'meal'] +")

    en = sim.chat(sim.user(language_code="en"))  # the same wizard, in English
    await en.send("/trip")
    en.assert_last("City?", buttons=[["Moscow", "St Petersburg"], ["Next »"]])
    await en.click("Moscow")
    await en.click("Bag")
    await en.click("Done")
    assert en.toasts[-1] == "Choose at least 2."
    await en.click("Meal")
    await en.click("Done")
    assert en.keyboard == [["Share my phone number"]]


class Callback(Wizard, name="t_i18n_callback"):
    """``v.phone`` (asks for the country code) and ``v.contact(own=True)``."""

    class State(Enum):
        PHONE = auto()
        CONTACT = auto()

    @step(State.PHONE, prompt="Phone?", validate=v.phone(own=True))
    async def phone_number(self, value: str) -> None:
        self.data["phone"] = value

    @step(State.CONTACT, prompt="Contact?", validate=v.contact(own=True))
    async def contact(self, value: dict[str, Any]) -> Finish:
        return self.finish(value["phone_number"])

    async def on_finish(self) -> None:
        await self.answer(f"{self.data['phone']} {self.result}")


def callback_bot(dp: Dispatcher, storage: object) -> None:
    Callback.setup(dp, entry=Command("callback"), storage=storage)


async def test_phone_and_own_contact_reasons_speak_the_users_language(backend: Backend) -> None:
    talk = speaker(backend.simulator(callback_bot), "ru")
    await talk.send("/callback")
    await talk.send("020 7946 0958")  # no country code, and no region= to read it in
    talk.assert_last("Пожалуйста, укажите код страны, например +44 20 7946 0958.\n\nPhone?")
    await talk.send_contact(first_name="Someone", user_id=1)  # not their own
    own = "Пожалуйста, поделитесь своим контактом (это делает кнопка ниже), а не чужим."
    talk.assert_last(f"{own}\n\nPhone?")
    await talk.send("+44 20 7946 0958")
    await talk.send_contact(first_name="Someone", user_id=1)
    talk.assert_last(f"{own}\n\nContact?")
    await talk.send_contact()
    talk.assert_last("+442079460958 +15550100000")


class Street(Wizard, name="t_i18n_street"):
    class State(Enum):
        STREET = auto()

    @step(State.STREET, prompt={"en": "Street?", "ru": "Улица?"})
    async def street(self, value: str) -> Finish:
        return self.finish(value)


class Parcel(Wizard, name="t_i18n_parcel"):
    """Calls ``Street``; its own language goes with it onto the stack."""

    class State(Enum):
        WHAT = auto()
        DONE = auto()

    @step(State.WHAT, prompt={"en": "What?", "ru": "Что?"})
    async def what(self, value: str) -> Any:
        self.data["what"] = value
        return self.call(Street, key="street")

    @step(State.DONE, prompt={"en": "Sure?", "ru": "Точно?"}, validate=v.yes_no())
    async def done(self, value: bool) -> Finish:
        return self.finish(value)


def parcel_bot(dp: Dispatcher, storage: object) -> None:
    Parcel.setup(dp, entry=Command("parcel"), storage=storage)
    Street.setup(dp, storage=storage)


async def test_a_callers_language_is_kept_on_the_stack_of_a_called_wizard(
    backend: Backend,
) -> None:
    sim = backend.simulator(parcel_bot)
    talk = speaker(sim, "ru")
    await talk.send("/parcel")
    await talk.send("книга")
    talk.assert_last("Улица?")
    record = await backend.storage.read(storage_key(key_of(talk)))
    assert record is not None and record.kwargs["l"] == "ru"
    assert [frame["l"] for frame in record.kwargs["st"]] == ["ru"]
    await talk.send("Тверская")
    talk.assert_last("Точно?")
