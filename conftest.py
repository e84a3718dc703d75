"""Fixtures shared by every app's tests: a Wagtail site with an archive and one issue."""

import contextlib
import os
import shutil

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import translation
from hypothesis import settings as hypothesis_settings
from wagtail.models import Page, Site

# Hypothesis: bounded examples for `make test` (the hostile suites); HYPOTHESIS_PROFILE=thorough
# for a long, random run. The default is derandomized (the same examples on every run: CI cannot
# flake) and keeps no example database (nothing is written to the work tree).
hypothesis_settings.register_profile("broadsheet", max_examples=40, deadline=None, database=None, derandomize=True)
hypothesis_settings.register_profile("thorough", max_examples=1000, deadline=None, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "broadsheet"))

# Real-browser fixtures (page, browser, browser_problems): see newsletter_site/tests/browser.py.
pytest_plugins = ["newsletter_site.tests.browser"]


def pytest_collection_modifyitems(config, items):
    """A transactional test must restore the migrated rows after itself (serialized rollback).

    Its flush empties every table; without serialized rollback the content types and Wagtail's
    root page are gone for the tests that run after it, which then fail far from the cause.
    Tests that need PostgreSQL are skipped here, before any database fixture is set up.
    """
    careless = [
        item.nodeid
        for item in items
        if (marker := item.get_closest_marker("django_db"))
        and marker.kwargs.get("transaction")
        and not marker.kwargs.get("serialized_rollback")
    ]
    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (make test-services)")
        for item in items:
            if "postgresql" in getattr(item, "fixturenames", ()):
                item.add_marker(skip)
    if careless:
        raise pytest.UsageError(
            "transactional tests need serialized_rollback=True (or the postgresql fixture): " + ", ".join(careless)
        )


@pytest.fixture(autouse=True)
def _clear_cache():
    """Ids repeat between tests, so anything cached by id (renditions, rate limits) must not leak."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _site_language():
    """Every test starts in the site's language, as a new process does: Django leaves the language
    a request activated (a Chinese page, say) active in the thread afterwards, so without this a
    command or email in a later test would speak the last visitor's language."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def postgresql(transactional_db, django_db_serialized_rollback):
    """The test runs on PostgreSQL with real commits (DATABASE_URL=postgres://...).

    Elsewhere it is skipped at collection (below), before the transactional database is set up:
    its flush afterwards would leave the tests that follow without the rows migrations created
    (content types, Wagtail's root page). Serialized rollback puts those rows back after a test
    that did run.
    """


@pytest.fixture
def home_page(db):
    from pages.models import HomePage

    root = Page.get_first_root_node()
    home = root.add_child(instance=HomePage(title="Broadsheet", slug="broadsheet-home"))
    Site.objects.filter(is_default_site=True).delete()
    Site.objects.create(hostname="news.example.com", port=443, root_page=home, is_default_site=True)
    return home


@pytest.fixture
def newsletter_settings(home_page):
    from mail.models import NewsletterSettings

    site = Site.objects.get(is_default_site=True)
    settings_obj = NewsletterSettings.for_site(site)
    settings_obj.sender_name = "The Broadsheet"
    settings_obj.sender_email = "news@example.com"
    settings_obj.reply_to = "editor@example.com"
    settings_obj.postal_address = "1 Fleet Street\nLondon EC4Y 1AA\nUnited Kingdom"
    settings_obj.save()
    return settings_obj


@pytest.fixture
def archive_page(home_page):
    from campaigns.models import NewsletterIndexPage

    return home_page.add_child(instance=NewsletterIndexPage(title="Archive", slug="archive"))


@pytest.fixture
def issue_page(archive_page, newsletter_settings):
    from campaigns.tests.factories import make_issue

    return make_issue(archive_page)


@pytest.fixture
def translate_page(db):
    """``translate_page(page, "zh-hans", **fields)``: a published translation of ``page`` (Wagtail's
    copy_for_translation; missing parents become aliases), with ``fields`` changed."""
    from wagtail.models import Locale

    def translate(page, language_code, **fields):
        locale, _created = Locale.objects.get_or_create(language_code=language_code)
        translated = page.specific.copy_for_translation(locale, copy_parents=True).specific
        for name, value in fields.items():
            setattr(translated, name, value)
        translated.save_revision().publish()
        translated.refresh_from_db()
        return translated

    return translate


@pytest.fixture
def migrate_to():
    """``migrate_to(targets)``: migrate the test database to ``targets`` (as ``migrate`` would) and
    return the app registry as the applied migrations leave it (what a RunPython sees).

    For the model-move tests; they run with ``transaction=True, serialized_rollback=True``."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    def migrate(targets=None):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(targets if targets is not None else executor.loader.graph.leaf_nodes())
        executor.loader.build_graph()
        return executor._create_project_state(with_applied_migrations=True).apps

    return migrate


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Mutation runs (docs/testing.md) start pytest once per mutant: building the test database
    by migrations costs ~20 s each time. With MUTATION_TEST_DB=<a migrated SQLite file> (and
    --reuse-db) every session runs on its own copy of that file instead, so parallel mutants never
    share one."""
    template = os.environ.get("MUTATION_TEST_DB")
    if not template:
        yield
        return
    from django.conf import settings

    copy = f"{template}.{os.getpid()}"
    shutil.copyfile(template, copy)
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = copy
    yield
    for path in (copy, f"{copy}-wal", f"{copy}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
