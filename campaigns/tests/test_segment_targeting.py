"""Campaigns narrowed by a segment: engagement rules read the ledger, and the snapshot holds exactly
the people the audience counts."""

import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry

from campaigns import services
from campaigns.models import Campaign, Delivery
from subscribers.audience import Audience
from subscribers.models import Segment
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def rules(*items, match="all"):
    return {"match": match, "rules": list(items)}


@pytest.fixture
def weekly():
    return MailingListFactory(slug="weekly")


@pytest.fixture
def readers(weekly):
    """ann, bob, cat, dan: confirmed on weekly."""
    found = {}
    for local in ("ann", "bob", "cat", "dan"):
        found[local] = SubscriberFactory(email=f"{local}@example.com")
        SubscriptionFactory(subscriber=found[local], list=weekly)
    return found


def sent_campaign(issue_page, days_ago: int, *, status=Campaign.Status.SENT) -> Campaign:
    started = timezone.now() - datetime.timedelta(days=days_ago)
    return Campaign.objects.create(page=issue_page, status=status, started_at=started)


def deliver(campaign, subscriber, *, opened=False, clicked=False, status=Delivery.Status.SENT):
    now = timezone.now()
    return Delivery.objects.create(
        campaign=campaign,
        subscriber=subscriber,
        email=subscriber.email,
        subscriber_uid=subscriber.uid,
        status=status,
        first_opened_at=now if opened or clicked else None,
        first_clicked_at=now if clicked else None,
    )


def matching(weekly, segment_rules) -> list[str]:
    audience = Audience([weekly], segment_rules)
    found = sorted(s.email.split("@")[0] for s in audience.subscribers())
    assert audience.count() == len(found)
    return found


@pytest.mark.services  # and again on PostgreSQL by make test-services (issue 11: each rule type on both)
def test_engagement_rules_read_the_ledger(issue_page, weekly, readers):
    old, middle, recent = (sent_campaign(issue_page, days) for days in (30, 20, 10))
    draft = Campaign.objects.create(page=issue_page)  # never started: not among the last campaigns
    deliver(old, readers["ann"], opened=True)
    deliver(middle, readers["ann"])
    deliver(recent, readers["ann"])
    deliver(recent, readers["bob"], clicked=True)
    deliver(middle, readers["cat"])
    deliver(recent, readers["cat"], status=Delivery.Status.FAILED)
    Delivery.objects.create(
        campaign=draft, subscriber=readers["dan"], email="dan@example.com", subscriber_uid=readers["dan"].uid
    )

    def rule(field, op, value=None):
        item = {"field": field, "op": op}
        if value is not None:
            item["value"] = value
        return matching(weekly, rules(item))

    assert rule("opened", "any_of_last", 2) == ["bob"]
    assert rule("opened", "any_of_last", 3) == ["ann", "bob"]
    assert rule("opened", "none_of_last", 2) == ["ann", "cat", "dan"]
    assert rule("opened", "ever") == ["ann", "bob"]
    assert rule("opened", "never") == ["cat", "dan"]
    assert rule("clicked", "any_of_last", 1) == ["bob"]
    assert rule("clicked", "never") == ["ann", "cat", "dan"]
    # Sent deliveries only: cat's failed one and dan's queued one do not count.
    assert rule("received", "at_least", 3) == ["ann"]
    assert rule("received", "at_least", 1) == ["ann", "bob", "cat"]
    assert rule("received", "fewer_than", 1) == ["dan"]
    # Combined: received something but opened none of the last three (a re-engagement segment).
    assert matching(
        weekly,
        rules(
            {"field": "received", "op": "at_least", "value": 1},
            {"field": "opened", "op": "none_of_last", "value": 3},
        ),
    ) == ["cat"]


def test_snapshot_holds_exactly_the_segment_counted(issue_page, weekly, readers, django_capture_on_commit_callbacks):
    readers["ann"].attributes = {"city": "Leeds"}
    readers["ann"].save()
    readers["bob"].attributes = {"city": "Leeds"}
    readers["bob"].save()
    segment = Segment.objects.create(
        name="Leeds",
        slug="leeds",
        rules=rules({"field": "attribute", "name": "city", "op": "equals", "value": "Leeds"}),
    )
    campaign = services.create_campaign(issue_page, [weekly], segment=segment)
    counted = Audience.of(campaign).count()
    with django_capture_on_commit_callbacks(execute=False):
        campaign = services.start_campaign(campaign.pk)
    assert counted == campaign.recipients == 2
    assert sorted(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True)) == [
        "ann@example.com",
        "bob@example.com",
    ]


def test_a_segment_that_matches_nobody_refuses_the_start(issue_page, weekly, readers):
    segment = Segment.objects.create(
        name="Paris",
        slug="paris",
        rules=rules({"field": "attribute", "name": "city", "op": "equals", "value": "Paris"}),
    )
    campaign = services.create_campaign(issue_page, [weekly], segment=segment)
    with pytest.raises(services.CampaignError, match="matches the segment “Paris”"):
        services.start_campaign(campaign.pk)
    assert not Delivery.objects.filter(campaign=campaign).exists()


# --- One count everywhere: send form, confirmation, command, snapshot -------------------------------


@pytest.fixture
def leeds(weekly, readers):
    """A segment matching ann and cat (Leeds); bob is in York, dan has no city."""
    for local, city in (("ann", "Leeds"), ("bob", "York"), ("cat", "Leeds")):
        readers[local].attributes = {"city": city}
        readers[local].save()
    other = MailingListFactory(slug="other")
    SubscriptionFactory(subscriber=SubscriberFactory(email="eve@example.com", attributes={"city": "Leeds"}), list=other)
    return Segment.objects.create(
        name="Leeds readers",
        slug="leeds",
        rules=rules({"field": "attribute", "name": "city", "op": "equals", "value": "Leeds"}),
    )


def send_form(weekly, segment, action):
    return {
        "lists": [weekly.pk],
        "segment": segment.pk,
        "subject": "Spring issue",
        "from_email": "The Broadsheet <news@example.com>",
        "reply_to": "",
        "when": "now",
        "send_at": "",
        "test_addresses": "",
        "action": action,
    }


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_confirmation_and_the_started_campaign_count_the_same_segment(
    client, sender, issue_page, weekly, leeds, django_capture_on_commit_callbacks
):
    client.force_login(sender)
    url = reverse("campaigns_admin:send", args=[issue_page.pk])
    form = client.get(url)
    assert "Leeds readers" in form.text

    count_url = reverse("campaigns_admin:audience_count")
    assert "data-audience-count" in form.text and count_url in form.text
    live = client.get(count_url, {"lists": [weekly.pk], "segment": leeds.pk}).json()
    assert live == {"count": 2, "errors": []}
    assert client.get(count_url, {"lists": [weekly.pk], "segment": ""}).json()["count"] == 4

    review = client.post(url, send_form(weekly, leeds, "review"))
    assert review.context["recipients"] == 2
    assert "2 recipients" in review.text and "Leeds readers" in review.text
    assert "Attribute city equals “Leeds”" in review.text  # the rules in words

    with django_capture_on_commit_callbacks(execute=False):
        client.post(url, send_form(weekly, leeds, "confirm"))
    campaign = Campaign.objects.get()
    assert (campaign.segment, campaign.recipients) == (leeds, 2)
    assert Delivery.objects.filter(campaign=campaign).count() == 2
    entry = ModelLogEntry.objects.get(object_id=str(campaign.pk), content_type__model="campaign")
    assert entry.data["lists"].endswith("(segment: Leeds readers)")
    assert entry.data["segment_rules"] == "Attribute city equals “Leeds”"  # as sent, whatever is edited later
    # The campaign's page and its report name the segment it went to.
    for name in ("campaigns_admin:detail", "campaigns_admin:report"):
        assert "Leeds readers" in client.get(reverse(name, args=[campaign.pk])).text


def test_send_campaign_segment_counts_and_sends_the_same(issue_page, weekly, leeds):
    dry = run("send_campaign", issue_page.slug, "--lists", "weekly", "--segment", "leeds", "--dry-run")
    assert "Segment: leeds" in dry
    assert "Would send to 2 recipient(s)" in dry
    assert Audience([weekly], leeds).count() == 2

    output = run("send_campaign", issue_page.slug, "--lists", "weekly", "--segment", "leeds")
    campaign = Campaign.objects.get()
    assert campaign.segment == leeds
    assert "2 recipient(s)" in output
    assert sorted(Delivery.objects.filter(campaign=campaign).values_list("email", flat=True)) == [
        "ann@example.com",
        "cat@example.com",
    ]
    # The campaign's own dry run counts the same audience.
    assert "Would send to 2 recipient(s)" in run("send_campaign", str(campaign.pk), "--dry-run")


def test_send_campaign_refuses_an_unknown_segment_and_a_segment_for_a_campaign(issue_page, weekly, leeds):
    with pytest.raises(CommandError, match="Unknown segment: nope"):
        run("send_campaign", issue_page.slug, "--lists", "weekly", "--segment", "nope")
    campaign = services.create_campaign(issue_page, [weekly])
    with pytest.raises(CommandError, match="--segment only applies to a page slug"):
        run("send_campaign", str(campaign.pk), "--segment", "leeds")
    assert not Delivery.objects.exists()


def test_a_segment_a_campaign_used_cannot_be_deleted(issue_page, weekly, leeds):
    services.create_campaign(issue_page, [weekly], segment=leeds)
    with pytest.raises(ProtectedError):
        leeds.delete()


@pytest.mark.parametrize(
    "query",
    [{}, {"lists": "abc"}, {"lists": "99999999999999999999"}, {"lists": "1", "segment": "999"}, {"segment": "x"}],
)
def test_the_live_count_refuses_bad_choices_with_a_message(client, sender, weekly, leeds, query):
    client.force_login(sender)
    answer = client.get(reverse("campaigns_admin:audience_count"), query)
    assert answer.status_code == 200
    assert answer.json()["count"] is None and answer.json()["errors"]


def test_the_live_count_needs_the_send_permission(client, editor, weekly, leeds):
    client.force_login(editor)
    assert client.get(reverse("campaigns_admin:audience_count"), {"lists": [weekly.pk]}).status_code == 403
