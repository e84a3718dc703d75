"""The translation catalogues are complete, compiled, and cover every marked string."""

import gettext
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
PO_FILES = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/*.po"))
# Left out of the copy makemessages reads (as `make messages` ignores them).
NOT_SOURCES = {".venv", ".git", "var", "bench", "docs", "locale", "node_modules"}
IGNORED = ("tests", "__pycache__", "migrations", "*.pyc")


def _entries(po: polib.POFile) -> dict:
    """{(context, msgid): msgstr, or {index: msgstr} for plurals} of the entries in use."""
    return {
        (entry.msgctxt, entry.msgid, entry.msgid_plural): entry.msgstr_plural or entry.msgstr
        for entry in po
        if not entry.obsolete
    }


def test_there_is_a_complete_chinese_catalogue():
    assert LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po" in PO_FILES


@pytest.mark.parametrize("path", PO_FILES, ids=lambda p: str(p.relative_to(LOCALE_DIR)))
def test_every_entry_is_translated_and_none_is_fuzzy(path):
    po = polib.pofile(str(path))

    assert not po.metadata_is_fuzzy
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []
    assert [e.msgid for e in po if e.msgid_plural and not all(e.msgstr_plural.values())] == []


@pytest.mark.parametrize("path", PO_FILES, ids=lambda p: str(p.relative_to(LOCALE_DIR)))
def test_the_committed_mo_file_is_compiled_from_the_po_file(path):
    """The .mo files are committed, so a fresh clone serves Chinese without gettext installed."""
    with open(path.with_suffix(".mo"), "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    catalog = compiled._catalog  # the stdlib keeps the parsed messages here

    for entry in polib.pofile(str(path)):
        if entry.obsolete:
            continue
        key = entry.msgid if not entry.msgctxt else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural:
            for index, text in entry.msgstr_plural.items():
                assert catalog.get((key, int(index))) == text, f"run `make messages`: {entry.msgid!r}"
        else:
            assert catalog.get(key) == entry.msgstr, f"run `make messages`: {entry.msgid!r}"


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="needs GNU gettext (apt-get install gettext)")
def test_the_catalogue_has_every_string_marked_in_the_code_and_templates(tmp_path):
    """makemessages over a copy of the project adds nothing the committed catalogue lacks."""
    for source in Path(settings.BASE_DIR).iterdir():
        if source.name in NOT_SOURCES:
            continue
        if source.is_dir():
            shutil.copytree(source, tmp_path / source.name, ignore=shutil.ignore_patterns(*IGNORED))
        else:
            shutil.copy(source, tmp_path / source.name)
    shutil.copytree(LOCALE_DIR, tmp_path / "locale")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "newsletter_site.settings.test", "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete", "--no-location"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    committed = _entries(polib.pofile(str(LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po")))
    extracted = _entries(polib.pofile(str(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")))

    missing = sorted(str(key[1]) for key in extracted.keys() - committed.keys())
    assert missing == [], "strings marked for translation but not in the catalogue: run `make messages`"
