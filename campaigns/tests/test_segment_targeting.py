"""Campaigns narrowed by a segment: engagement rules read the ledger, and the snapshot holds exactly
the people the audience counts."""

import datetime

import pytest
from django.utils import timezone

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
