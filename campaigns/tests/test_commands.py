"""send_campaign and campaign_status on the command line."""

import datetime
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns import services
from campaigns.management.commands import send_campaign as send_campaign_command
from campaigns.models import Campaign, Delivery
from subscribers.tests.factories import MailingListFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def weekly():
    weekly = MailingListFactory(slug="weekly")
    for _ in range(3):
        SubscriptionFactory(list=weekly)
    return weekly


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_send_campaign_by_page_slug_sends_to_the_lists(issue_page, weekly):
    output = run("send_campaign", issue_page.slug, "--lists", "weekly")

    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.sent) == (Campaign.Status.SENT, 3)
    assert len(mail.outbox) == 3
    assert "3 sent, 0 failed" in output


def test_send_campaign_by_id(issue_page, weekly):
    campaign = services.create_campaign(issue_page, [weekly])

    run("send_campaign", str(campaign.pk))

    assert Campaign.objects.get(pk=campaign.pk).sent == 3


def test_dry_run_counts_and_sends_nothing(issue_page, weekly):
    output = run("send_campaign", issue_page.slug, "--lists", "weekly", "--dry-run")

    assert "Would send to 3 recipient(s)" in output
    assert mail.outbox == [] and not Campaign.objects.exists()


def test_test_to_sends_a_marked_copy_only(issue_page, weekly):
    run("send_campaign", issue_page.slug, "--lists", "weekly", "--test-to", "me@example.com")

    assert [message.subject.startswith("[TEST] ") for message in mail.outbox] == [True]
    assert not Delivery.objects.exists()


def test_at_schedules_the_campaign(issue_page, weekly):
    at = (timezone.now() + datetime.timedelta(days=1)).replace(microsecond=0)

    output = run("send_campaign", issue_page.slug, "--lists", "weekly", "--at", at.isoformat())

    campaign = Campaign.objects.get()
    assert (campaign.status, campaign.scheduled_at) == (Campaign.Status.SCHEDULED, at)
    assert "scheduled" in output and mail.outbox == []


def test_sending_twice_is_refused(issue_page, weekly):
    campaign = services.create_campaign(issue_page, [weekly])
    run("send_campaign", str(campaign.pk))

    with pytest.raises(CommandError, match="cannot be sent again"):
        run("send_campaign", str(campaign.pk))


def test_unknown_list_is_an_error(issue_page, weekly):
    with pytest.raises(CommandError, match="Unknown list"):
        run("send_campaign", issue_page.slug, "--lists", "nope")


def test_campaign_status_shows_counters_and_failure_reasons(issue_page, weekly):
    campaign = services.create_campaign(issue_page, [weekly])
    run("send_campaign", str(campaign.pk))
    Delivery.objects.filter(pk=Delivery.objects.first().pk).update(status="failed", last_error="550 no such user")
    Campaign.objects.filter(pk=campaign.pk).update(sent=2, failed=1)

    output = run("campaign_status", str(campaign.pk))

    assert "Status:     Sent" in output
    assert "Sent:       2" in output and "Failed:     1" in output
    assert "1 x 550 no such user" in output


def test_mailer_chooses_the_campaigns_mailer_and_a_spent_day_is_waited_for_saying_so(
    issue_page, weekly, settings, monkeypatch
):
    locmem = {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    settings.MAILERS = {"default": locmem, "gmail": {**locmem, "LIMITS": {"per_hour": 2, "per_day": 2}}}
    naps = []

    def sleep(seconds):
        # The person watching gives up after the first nap: stop the campaign so the command ends.
        naps.append(seconds)
        services.cancel_campaign(Campaign.objects.get().pk)

    monkeypatch.setattr(send_campaign_command, "time", SimpleNamespace(sleep=sleep))
    out, err = StringIO(), StringIO()

    call_command("send_campaign", issue_page.slug, "--lists", "weekly", "--mailer", "gmail", stdout=out, stderr=err)

    campaign = Campaign.objects.get()
    assert campaign.mailer == "gmail"
    assert len(mail.outbox) == 2, "gmail's day allows 2 of the 3"
    # It waits for the allowance (one look every 5 minutes at most, not every second) and says why.
    assert naps == [300]
    assert "Nothing can be sent before" in err.getvalue() and "daily allowance" in err.getvalue()


def test_an_unknown_mailer_is_an_error_naming_the_configured_ones(issue_page, weekly):
    with pytest.raises(CommandError, match=r"No mailer named 'gmial'; configured: default"):
        run("send_campaign", issue_page.slug, "--lists", "weekly", "--mailer", "gmial")
    assert not Campaign.objects.exists()
