"""Send again to those who did not open (campaigns.resends): who it goes to, exactly once, the admin."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import resends, services
from campaigns.models import Campaign, Delivery
from campaigns.services import CampaignError
from campaigns.tests.factories import make_user
from subscribers.models import Subscriber, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

HOUR_AGO = datetime.timedelta(hours=1)


@pytest.fixture
def original(issue_page, django_capture_on_commit_callbacks):
    """A campaign sent an hour ago to ann, bob, cat, dan, eve, fay, gus and hal; ann opened it."""
    weekly = MailingListFactory(slug="weekly")
    for name in ("ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"):
        SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email=f"{name}@example.com"))
    campaign = services.create_campaign(issue_page, [weekly], subject="Spring issue")
    with django_capture_on_commit_callbacks(execute=False):
        services.start_campaign(campaign.pk, enqueue=False)
    sent_at = timezone.now() - HOUR_AGO
    Delivery.objects.filter(campaign=campaign).update(status=Delivery.Status.SENT, sent_at=sent_at)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, sent=8, finished_at=sent_at)
    Delivery.objects.filter(pk=row(campaign, "ann").pk).update(first_opened_at=sent_at)
    Campaign.objects.filter(pk=campaign.pk).update(unique_opens=1)
    campaign.refresh_from_db()
    return campaign


def row(campaign, name) -> Delivery:
    return Delivery.objects.get(campaign=campaign, email=f"{name}@example.com")


def recipients(campaign) -> list[str]:
    return sorted(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True))


def resend_now(original, django_capture_on_commit_callbacks, **kwargs):
    with django_capture_on_commit_callbacks(execute=False):
        return resends.create_resend(original.pk, subject=kwargs.pop("subject", "Did you miss it?"), **kwargs)


def test_the_resend_goes_to_every_reader_who_did_not_open_with_its_own_subject(
    original, django_capture_on_commit_callbacks
):
    resend, created = resend_now(original, django_capture_on_commit_callbacks)

    assert created
    assert (resend.resend_of_id, resend.page_id, resend.status) == (original.pk, original.page_id, "sending")
    assert resend.subject == "Did you miss it?"
    assert list(resend.lists.all()) == list(original.lists.all())
    assert recipients(resend) == [f"{name}@example.com" for name in ("bob", "cat", "dan", "eve", "fay", "gus", "hal")]


def test_each_exclusion(original, django_capture_on_commit_callbacks):
    now = timezone.now()
    Delivery.objects.filter(pk=row(original, "bob").pk).update(bounced_at=now, bounce_type="hard")
    Delivery.objects.filter(pk=row(original, "cat").pk).update(complained_at=now)
    Delivery.objects.filter(pk=row(original, "dan").pk).update(unsubscribed_at=now)
    Delivery.objects.filter(pk=row(original, "eve").pk).update(status=Delivery.Status.FAILED)
    # Unsubscribed from the list since (through another campaign's link, or the preference centre).
    Subscription.objects.filter(subscriber__email="fay@example.com").update(status=Subscription.Status.UNSUBSCRIBED)
    # Suppressed since (bounced on another campaign).
    Subscriber.objects.filter(email="gus@example.com").update(state=Subscriber.State.BOUNCED)
    # A new reader who joined after the first send did not get it, so is not sent it "again".
    SubscriptionFactory(list=original.lists.get(), subscriber=SubscriberFactory(email="ivy@example.com"))
    # A machine's open is no reader's: hal is sent it again.
    Delivery.objects.filter(pk=row(original, "hal").pk).update(machine_opens=1)

    assert resends.non_openers(original) == 1  # what the report's form says

    resend, _ = resend_now(original, django_capture_on_commit_callbacks)

    assert recipients(resend) == ["hal@example.com"]


def test_a_double_click_creates_one_resend(original, django_capture_on_commit_callbacks):
    first, created = resend_now(original, django_capture_on_commit_callbacks)
    again, created_again = resend_now(original, django_capture_on_commit_callbacks, subject="Another subject")

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert Campaign.objects.filter(resend_of=original).count() == 1


def test_a_cancelled_resend_makes_room_for_another_that_skips_whom_it_reached(
    original, django_capture_on_commit_callbacks
):
    first, _ = resend_now(original, django_capture_on_commit_callbacks)
    Delivery.objects.filter(campaign=first, email="bob@example.com").update(status=Delivery.Status.SENT)
    first.cancel()

    second, created = resend_now(original, django_capture_on_commit_callbacks)

    assert created and second.pk != first.pk
    assert "bob@example.com" not in recipients(second)
    assert "cat@example.com" in recipients(second)


def test_a_reader_erased_after_a_cancelled_resend_reached_them_leaves_the_others_in_the_next(
    original, django_capture_on_commit_callbacks
):
    first, _ = resend_now(original, django_capture_on_commit_callbacks)
    Delivery.objects.filter(campaign=first, email="bob@example.com").update(status=Delivery.Status.SENT)
    first.cancel()
    Subscriber.objects.filter(email="bob@example.com").delete()  # erased: his deliveries stay, without him

    second, created = resend_now(original, django_capture_on_commit_callbacks)

    assert created
    assert recipients(second) == [f"{name}@example.com" for name in ("cat", "dan", "eve", "fay", "gus", "hal")]


def test_after_a_delay_it_is_scheduled_and_leaves_out_who_opened_meanwhile(
    original, django_capture_on_commit_callbacks
):
    before = timezone.now()
    resend, _ = resend_now(original, django_capture_on_commit_callbacks, delay=datetime.timedelta(hours=24))

    assert resend.status == Campaign.Status.SCHEDULED
    assert before + datetime.timedelta(hours=24) <= resend.scheduled_at <= timezone.now() + datetime.timedelta(hours=24)
    assert not Delivery.objects.filter(campaign=resend).exists()

    Delivery.objects.filter(pk=row(original, "bob").pk).update(first_opened_at=timezone.now())
    Campaign.objects.filter(pk=resend.pk).update(scheduled_at=timezone.now() - datetime.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=False):
        assert services.start_scheduled_campaign(resend.pk) == "started"

    assert "bob@example.com" not in recipients(resend)
    assert len(recipients(resend)) == 6


@pytest.mark.parametrize(
    "change, message",
    [
        ({"status": Campaign.Status.SENDING}, "finished sending"),
        ({"unique_opens": 0}, "Opens were not tracked"),
    ],
)
def test_refused_unless_sent_and_opens_tracked(original, django_capture_on_commit_callbacks, change, message):
    Campaign.objects.filter(pk=original.pk).update(**change)

    with pytest.raises(CampaignError, match=message):
        resend_now(original, django_capture_on_commit_callbacks)
    assert not Campaign.objects.filter(resend_of=original).exists()


def test_a_resend_is_not_resent(original, django_capture_on_commit_callbacks):
    resend, _ = resend_now(original, django_capture_on_commit_callbacks)
    Campaign.objects.filter(pk=resend.pk).update(status=Campaign.Status.SENT, unique_opens=1)

    with pytest.raises(CampaignError, match="itself a resend"):
        resend_now(resend, django_capture_on_commit_callbacks)


def test_nobody_left_refuses_and_creates_nothing(original, django_capture_on_commit_callbacks):
    Delivery.objects.filter(campaign=original).update(first_opened_at=timezone.now())

    with pytest.raises(CampaignError):
        resend_now(original, django_capture_on_commit_callbacks)
    assert not Campaign.objects.filter(resend_of=original).exists()


# --- The admin --------------------------------------------------------------------------------


def test_the_report_offers_it_and_the_reports_link_both_ways(
    admin_client, original, django_capture_on_commit_callbacks
):
    page = admin_client.get(reverse("campaigns_admin:report", args=[original.pk])).content.decode()
    assert "Send again to those who did not open" in page
    assert "7 readers received it and did not open it" in page
    assert 'value="Spring issue"' in page

    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(
            reverse("campaigns_admin:resend", args=[original.pk]), {"subject": "Missed it?", "delay_hours": "0"}
        )
        admin_client.post(
            reverse("campaigns_admin:resend", args=[original.pk]), {"subject": "Missed it?", "delay_hours": "0"}
        )

    resend = Campaign.objects.get(resend_of=original)
    assert response.status_code == 302 and response["Location"] == reverse("campaigns_admin:detail", args=[resend.pk])
    original_report = admin_client.get(reverse("campaigns_admin:report", args=[original.pk])).content.decode()
    assert f'data-resend="{resend.pk}"' in original_report
    assert reverse("campaigns_admin:report", args=[resend.pk]) in original_report
    resend_report = admin_client.get(reverse("campaigns_admin:report", args=[resend.pk])).content.decode()
    assert reverse("campaigns_admin:report", args=[original.pk]) in resend_report


def test_a_header_breaking_subject_is_refused(admin_client, original):
    response = admin_client.post(
        reverse("campaigns_admin:resend", args=[original.pk]), {"subject": "Hi\r\nBcc: x@example.com", "delay_hours": 0}
    )

    assert response.status_code == 302
    assert not Campaign.objects.filter(resend_of=original).exists()


def test_sending_again_needs_the_send_permission(client, django_user_model, original):
    client.force_login(make_user(django_user_model, "writer"))

    response = client.post(reverse("campaigns_admin:resend", args=[original.pk]), {"subject": "x", "delay_hours": 0})

    assert response.status_code == 403
    assert not Campaign.objects.filter(resend_of=original).exists()
