"""sender_for(): every From in the project, one rule (list override, else site, else DEFAULT_FROM_EMAIL)."""

import email
import email.policy

import pytest
from wagtail.models import Site

from mail.senders import newsletter_settings, sender_for
from subscribers import services
from subscribers.tests.factories import MailingListFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


def test_the_site_sends_when_no_list_overrides(newsletter_settings):
    assert sender_for(None) == sender_for(MailingListFactory()) == sender_for(None, Site.objects.get())
    sender = sender_for(None)
    assert sender.from_email == "The Broadsheet <news@example.com>"
    assert sender.reply_to == "editor@example.com"


def test_a_list_with_its_own_address_sends_as_itself_named_by_list_or_site(newsletter_settings):
    named = MailingListFactory(from_name="Sport Desk", from_email="sport@example.com", reply_to="desk@example.com")
    unnamed = MailingListFactory(from_email="sport@example.com")

    assert sender_for(named).from_email == "Sport Desk <sport@example.com>"
    assert sender_for(named).reply_to == "desk@example.com"
    assert sender_for(unnamed).from_email == "The Broadsheet <sport@example.com>"
    assert sender_for(unnamed).reply_to == "editor@example.com"


def test_without_any_site_the_default_from_email(db, settings):
    Site.objects.all().delete()
    settings.DEFAULT_FROM_EMAIL = '"Ops, Team" <ops@example.com>'
    assert newsletter_settings() is None
    assert sender_for(None).from_email == '"Ops, Team" <ops@example.com>'


def test_the_confirmation_email_from_a_list_with_a_hostile_name_has_one_sender(
    newsletter_settings, mailoutbox, django_capture_on_commit_callbacks
):
    """The f-string From in subscribers/services.py let a list's from_name add addresses."""
    hostile = MailingListFactory(
        slug="hostile", from_name='Desk", thief@evil.example, "x', from_email="desk@example.com", double_opt_in=True
    )
    subscriber = SubscriberFactory(email="ann@example.com")
    subscriber.subscriptions.create(list=hostile)

    assert services.send_confirmation_email(subscriber.pk, [hostile.pk])

    (sent,) = mailoutbox
    message = email.message_from_bytes(sent.message().as_bytes(), policy=email.policy.default)
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ('Desk", thief@evil.example, "x', "desk@example.com")
