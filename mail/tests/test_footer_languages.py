"""The newsletter footer text per language: Wagtail settings are per site, so the other
languages' texts are FooterTranslation rows on the same settings page."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import translation

from mail.models import DEFAULT_FOOTER_TEXT, FooterTranslation
from mail.tests.forms import newsletter_settings_form

pytestmark = pytest.mark.django_db


def test_a_language_with_its_own_footer_gets_it(newsletter_settings):
    newsletter_settings.footer_text = "You signed up on our website."
    newsletter_settings.save()
    FooterTranslation.objects.create(
        newsletter_settings=newsletter_settings, language="zh-hans", text="您在我们的网站上订阅了本通讯。"
    )

    assert newsletter_settings.footer_for("zh-hans") == "您在我们的网站上订阅了本通讯。"
    assert newsletter_settings.footer_for("en") == "You signed up on our website."
    with translation.override("zh-hans"):
        assert newsletter_settings.footer_for() == "您在我们的网站上订阅了本通讯。"


def test_a_language_without_its_own_footer_gets_the_sites(newsletter_settings):
    newsletter_settings.footer_text = "You signed up on our website."
    newsletter_settings.save()

    assert newsletter_settings.footer_for("zh-hans") == "You signed up on our website."


def test_the_untouched_default_footer_speaks_every_language(newsletter_settings):
    assert newsletter_settings.footer_text == DEFAULT_FOOTER_TEXT

    assert newsletter_settings.footer_for("en") == DEFAULT_FOOTER_TEXT
    assert newsletter_settings.footer_for("zh-hans") == "您收到这封邮件，是因为您订阅了我们的通讯。"


def test_editors_add_a_footer_translation_on_the_settings_page(newsletter_settings):
    admin = get_user_model().objects.create_superuser("ed", "ed@example.com", "pw")
    client = Client()
    client.force_login(admin)
    url = reverse("wagtailsettings:edit", args=["mail", "newslettersettings", newsletter_settings.site_id])
    form = newsletter_settings_form()

    assert client.get(url).status_code == 200
    response = client.post(url, form)

    assert response.status_code == 302, response.context["form"].errors if response.context else response
    newsletter_settings.refresh_from_db()
    assert newsletter_settings.footer_for("zh-hans") == "您在我们的网站上订阅了本通讯。"
