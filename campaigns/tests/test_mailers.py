"""Named mailers: chosen per campaign and per list, failover when the primary is down, health."""

import datetime
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Delivery
from campaigns.sending import mailers, send_batch
from campaigns.tests.factories import started_campaign
from campaigns.tests.fake_smtp import FakeSMTPServer
from campaigns.tests.test_admin_send import make_user
from subscribers.tests.factories import MailingListFactory

pytestmark = pytest.mark.django_db

LOCMEM = {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
# An SMTP mailer nobody listens on (a port of our test range kept free).
DOWN = {
    "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "OPTIONS": {"host": "127.0.0.1", "port": 25199, "timeout": 2, "use_tls": False, "use_ssl": False},
}


@pytest.fixture
def three_mailers(settings):
    settings.MAILERS = {"default": LOCMEM, "gmail": LOCMEM, "qq": LOCMEM}


def test_campaign_mailer_wins_over_the_lists(three_mailers, issue_page):
    weekly = MailingListFactory(slug="weekly", mailer="gmail")
    campaign = services.create_campaign(issue_page, [weekly], mailer="qq")

    assert mailers.mailer_for(campaign) == "qq"


def test_first_list_with_a_mailer_decides_otherwise(three_mailers, issue_page):
    plain = MailingListFactory(slug="a-plain")
    gmail = MailingListFactory(slug="b-gmail", mailer="gmail")

    assert mailers.mailer_for(services.create_campaign(issue_page, [plain, gmail])) == "gmail"
    assert mailers.mailer_for(services.create_campaign(issue_page, [plain])) == "default"


def test_a_mailer_no_longer_configured_falls_back_to_default(three_mailers, issue_page, settings):
    campaign = services.create_campaign(issue_page, [MailingListFactory(slug="weekly")], mailer="qq")
    settings.MAILERS = {"default": LOCMEM}

    assert mailers.mailer_for(campaign) == "default"


def test_a_list_refuses_an_unknown_mailer_name(three_mailers):
    mailing_list = MailingListFactory.build(slug="weekly", name="Weekly", mailer="hotmail")

    with pytest.raises(ValidationError, match="No mailer named 'hotmail'"):
        mailing_list.full_clean()


def smtp_mailer(server, **extra):
    return {**server.mailers_setting()["default"], **extra}


def test_the_campaign_goes_through_its_mailer(settings, issue_page, django_capture_on_commit_callbacks):
    campaign = started_campaign(issue_page, 3, django_capture_on_commit_callbacks)
    Campaign.objects.filter(pk=campaign.pk).update(mailer="relay")
    with FakeSMTPServer() as relay:
        settings.MAILERS = {"default": LOCMEM, "relay": smtp_mailer(relay)}
        send_batch(campaign.pk, worker_id="w1")

    assert len(relay.messages) == 3


def test_failover_mailer_takes_over_when_the_primary_is_down(settings, issue_page, django_capture_on_commit_callbacks):
    campaign = started_campaign(issue_page, 3, django_capture_on_commit_callbacks)
    with FakeSMTPServer() as backup:
        settings.MAILERS = {
            "default": {**DOWN, "FAILOVER": "backup"},
            "backup": smtp_mailer(backup),
        }
        result = send_batch(campaign.pk, worker_id="w1")

    assert result["sent"] == 3 and len(backup.messages) == 3
    assert mailers.health("default")["ok"] is False
    assert "25199" in mailers.health("default")["error"]
    assert mailers.health("backup")["ok"] is True


def test_without_failover_a_down_mailer_leaves_the_rows_queued(
    settings, issue_page, django_capture_on_commit_callbacks
):
    campaign = started_campaign(issue_page, 2, django_capture_on_commit_callbacks)
    settings.MAILERS = {"default": DOWN}

    result = send_batch(campaign.pk, worker_id="w1")

    assert result["sent"] == 0 and result["retry_at"] is not None
    assert Delivery.objects.filter(campaign=campaign, status="queued").count() == 2


def test_campaign_page_shows_the_mailer_and_the_expected_finish(client, django_user_model, issue_page, settings):
    settings.MAILERS = {"default": LOCMEM, "gmail": {**LOCMEM, "LIMITS": {"per_day": 500, "per_hour": 100}}}
    weekly = MailingListFactory(slug="weekly", mailer="gmail")
    campaign = Campaign.objects.create(
        page=issue_page, status=Campaign.Status.SENDING, started_at=timezone.now(), recipients=1200
    )
    campaign.lists.set([weekly])
    Delivery.objects.create(campaign=campaign, email="a@example.com", subscriber_uid=uuid.uuid4())
    client.force_login(make_user(django_user_model, "sender", send=True))

    response = client.get(reverse("campaigns_admin:detail", args=[campaign.pk]))

    content = response.content.decode()
    assert 'data-field="mailer">gmail<' in content
    assert 'data-field="expected-finish"' in content
    finish = response.context["expected_finish"]
    assert finish - timezone.now() > datetime.timedelta(days=2)
