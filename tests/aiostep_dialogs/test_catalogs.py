"""The gettext catalogs of the built-in texts (aiostep_dialogs/locales): the template holds every
message marked ``N_`` in the code, each language translates every one of them with the same
placeholders, and the committed ``.mo`` files are what Babel compiles from the ``.po`` files
(scripts/i18n.sh re-extracts, updates and compiles them)."""

from __future__ import annotations

import io
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import aiostep_dialogs
from aiostep_dialogs.i18n import DOMAIN, LOCALES_DIR, catalog

LANGUAGES = ["en", "ru", "es", "fa"]
PACKAGE = Path(aiostep_dialogs.__file__).parent


def read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def po_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def template_ids() -> set[str]:
    return {str(m.id) for m in read(LOCALES_DIR / f"{DOMAIN}.pot") if m.id}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_the_template_holds_every_message_marked_in_the_code() -> None:
    extracted = {
        str(message)
        for _, _, message, *_ in extract_from_dir(
            PACKAGE, keywords={"N_": None}, comment_tags=(), strip_comment_tags=True
        )
    }
    assert extracted, "no N_(...) message found: is the extraction keyword right?"
    assert extracted == template_ids(), "stale catalog: run scripts/i18n.sh"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    translated = {str(m.id): str(m.string) for m in read(po_path(language)) if m.id}
    assert set(translated) == template_ids(), "stale catalog: run scripts/i18n.sh"
    for msgid, msgstr in translated.items():
        assert msgstr, f"{language}: {msgid!r} is not translated"
        assert placeholders(msgstr) == placeholders(msgid), (language, msgid, msgstr)
        if language != "en":
            assert msgstr != msgid, f"{language}: {msgid!r} is left in English"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_mo_file_is_the_compiled_po_file(language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, read(po_path(language)))
    committed = po_path(language).with_suffix(".mo").read_bytes()
    assert committed == compiled.getvalue(), "stale .mo file: run scripts/i18n.sh compile"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_standard_librarys_gettext_reads_each_catalog(language: str) -> None:
    translations = catalog(language)
    for msgid in template_ids():
        said = translations.gettext(msgid)
        assert said == msgid if language == "en" else said != msgid


def test_the_wheel_ships_the_compiled_catalogs() -> None:
    """hatch puts every file under the packages in the wheel (and git keeps the .mo files):
    nothing may exclude the catalogs."""
    import tomllib

    root = PACKAGE.parent
    with (root / "pyproject.toml").open("rb") as f:
        wheel = tomllib.load(f)["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "aiostep_dialogs" in wheel["packages"]
    assert not any("locales" in x or ".mo" in x for x in wheel.get("exclude", []))
    gitignore = root / ".gitignore"
    ignored = gitignore.read_text().split() if gitignore.exists() else []
    assert "*.mo" not in ignored and "locales/" not in ignored
