#!/bin/sh
# Re-extract, update and compile the gettext catalogs of aiostep_dialogs' built-in texts and
# validator reasons (the strings marked N_("...") in aiostep_dialogs/*.py). Needs Babel, which is
# in the `dev` extra: pip install -e '.[dev]'. Run it from anywhere; then translate what is new in
# aiostep_dialogs/locales/<lang>/LC_MESSAGES/aiostep_dialogs.po (`msgstr ""` entries), run it
# again to compile, and commit the .pot, .po and .mo files. tests/aiostep_dialogs/test_catalogs.py
# fails while any of them is stale or a message is untranslated.
#
#   scripts/i18n.sh           extract + update + compile
#   scripts/i18n.sh compile   compile only
#   scripts/i18n.sh init xx   start a catalog for language xx, then translate it
set -eu
cd "$(dirname "$0")/.."
DIR=aiostep_dialogs/locales
POT=$DIR/aiostep_dialogs.pot
mkdir -p "$DIR"
LANGS="en ru es fa"

compile() {
    pybabel compile --domain aiostep_dialogs --directory "$DIR" --statistics
}

case "${1:-all}" in
compile)
    compile
    ;;
init)
    pybabel init --domain aiostep_dialogs --input-file "$POT" --output-dir "$DIR" --locale "$2" --width 100
    ;;
all)
    # no line numbers: a change elsewhere in a file must not touch every catalog
    pybabel extract --width 100 --no-default-keywords --keyword N_ --no-location --sort-output \
        --project aiostep --copyright-holder "aiostep developers" \
        --msgid-bugs-address "https://github.com/aiostep/aiostep/issues" \
        --output-file "$POT" aiostep_dialogs
    for lang in $LANGS; do
        if [ -f "$DIR/$lang/LC_MESSAGES/aiostep_dialogs.po" ]; then
            pybabel update --domain aiostep_dialogs --input-file "$POT" --output-dir "$DIR" \
                --locale "$lang" --no-fuzzy-matching --ignore-obsolete --width 100
        else
            pybabel init --domain aiostep_dialogs --input-file "$POT" --output-dir "$DIR" \
                --locale "$lang"
        fi
    done
    # English is the source language: each message is its own translation
    python - "$DIR/en/LC_MESSAGES/aiostep_dialogs.po" <<'PY'
import sys

from babel.messages.pofile import read_po, write_po

path = sys.argv[1]
with open(path, "rb") as f:
    catalog = read_po(f)
for message in catalog:
    if message.id and not message.string:
        message.string = message.id
with open(path, "wb") as f:
    write_po(f, catalog, width=100)
PY
    compile
    ;;
*)
    echo "usage: $0 [compile | init LANG]" >&2
    exit 2
    ;;
esac
