"""A/B subject tests (campaigns.abtests): the split, the subjects sent, the winner, the rest."""

import datetime
from collections import Counter

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from campaigns import abtests, services
from campaigns.models import Campaign, Delivery
from campaigns.sending import new_worker_id, send_batch
from campaigns.services import CampaignError
from campaigns.tests.factories import make_user
from subscribers.models import Segment, Subscriber
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

SUBJECTS = ["Spring issue", "What's new this spring", "Ten things for spring"]


def readers(count, slug="weekly"):
    weekly = MailingListFactory(slug=slug)
    for index in range(count):
        SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email=f"{slug}{index}@example.com"))
    return weekly


def ab_campaign(issue_page, weekly, *, subjects=SUBJECTS, percent=30, hours=4, metric="opens"):
    campaign = services.create_campaign(issue_page, [weekly], subject=subjects[0])
    return abtests.configure(campaign, subjects, percent=percent, window=datetime.timedelta(hours=hours), metric=metric)


def start(campaign, capture):
    with capture(execute=False):
        campaign = services.start_campaign(campaign.pk, enqueue=False)
        abtests.schedule_decision(campaign)
    return campaign


def variants(campaign):
    return Counter(Delivery.objects.filter(campaign=campaign).values_list("variant", flat=True))


@pytest.mark.parametrize(
    "count, percent, sizes",
    [(100, 30, {0: 10, 1: 10, 2: 10}), (50, 20, {0: 4, 1: 3, 2: 3}), (202, 50, {0: 34, 1: 34, 2: 33})],
)
def test_the_test_share_is_split_evenly(issue_page, django_capture_on_commit_callbacks, count, percent, sizes):
    campaign = start(ab_campaign(issue_page, readers(count), percent=percent), django_capture_on_commit_callbacks)

    assert variants(campaign) == sizes
    assert campaign.recipients == sum(sizes.values())


def test_the_test_share_is_drawn_across_the_list_not_from_its_first_readers(
    issue_page, django_capture_on_commit_callbacks
):
    weekly = readers(100)
    campaign = start(ab_campaign(issue_page, weekly, percent=30), django_capture_on_commit_callbacks)

    tested = set(Delivery.objects.filter(campaign=campaign).values_list("subscriber_id", flat=True))
    first_thirty = set(weekly.subscriptions.order_by("subscriber_id").values_list("subscriber_id", flat=True)[:30])
    assert len(tested) == 30 and tested != first_thirty


def test_the_test_share_of_a_segment_is_drawn_from_the_segment(issue_page, django_capture_on_commit_callbacks):
    weekly = MailingListFactory(slug="weekly")
    for index in range(60):
        city = "Leeds" if index % 20 == 0 else "York"  # 3 of the 60 readers
        subscriber = SubscriberFactory(email=f"reader{index}@example.com", attributes={"city": city})
        SubscriptionFactory(list=weekly, subscriber=subscriber)
    leeds = Segment.objects.create(
        name="Leeds readers",
        slug="leeds",
        rules={"match": "all", "rules": [{"field": "attribute", "name": "city", "op": "equals", "value": "Leeds"}]},
    )
    campaign = services.create_campaign(issue_page, [weekly], subject=SUBJECTS[0], segment=leeds)
    campaign = abtests.configure(campaign, SUBJECTS, percent=10, window=datetime.timedelta(hours=4), metric="opens")
    campaign = start(campaign, django_capture_on_commit_callbacks)

    # 10 % of the segment's 3 readers is less than one per variant: all three are tested.
    assert variants(campaign) == {0: 1, 1: 1, 2: 1}
    cities = Delivery.objects.filter(campaign=campaign).values_list("subscriber__attributes__city", flat=True)
    assert list(cities) == ["Leeds"] * 3


def test_a_tiny_audience_still_gets_one_reader_per_variant(issue_page, django_capture_on_commit_callbacks):
    campaign = start(ab_campaign(issue_page, readers(5), percent=10), django_capture_on_commit_callbacks)

    assert variants(campaign) == {0: 1, 1: 1, 2: 1}


def test_each_reader_gets_their_variants_subject(issue_page, mailoutbox, django_capture_on_commit_callbacks):
    campaign = start(ab_campaign(issue_page, readers(20), percent=50), django_capture_on_commit_callbacks)

    send_batch(campaign.pk, worker_id=new_worker_id())

    variant_of = dict(Delivery.objects.filter(campaign=campaign).values_list("email", "variant"))
    assert len(mailoutbox) == 10
    for message in mailoutbox:
        assert message.subject == SUBJECTS[variant_of[message.to[0].split("<")[-1].rstrip(">")]]


def sent_test(issue_page, capture, **kwargs):
    """An A/B test of 60 readers, 50 % (10 per variant), sent an hour ago with a 4-hour window."""
    campaign = start(ab_campaign(issue_page, readers(60), percent=50, **kwargs), capture)
    started = timezone.now() - datetime.timedelta(hours=1)
    Delivery.objects.filter(campaign=campaign).update(status=Delivery.Status.SENT, sent_at=started)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENT, started_at=started, sent=30)
    campaign.refresh_from_db()
    return campaign


def open_some(campaign, variant, count, field="first_opened_at"):
    ids = Delivery.objects.filter(campaign=campaign, variant=variant).values_list("pk", flat=True)[:count]
    Delivery.objects.filter(pk__in=list(ids)).update(**{field: timezone.now()})


def test_the_task_waits_for_the_window_then_sends_the_winner_to_the_rest(
    issue_page, django_capture_on_commit_callbacks
):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks)
    open_some(campaign, 0, 2)
    open_some(campaign, 1, 5)
    open_some(campaign, 2, 3)
    # Machines' opens never decide: variant C "opened" by Apple's proxy everywhere.
    Delivery.objects.filter(campaign=campaign, variant=2).update(machine_opens=1)

    with django_capture_on_commit_callbacks(execute=False):
        assert abtests.decide(campaign.pk, now=timezone.now()) == "not due"
    campaign.refresh_from_db()
    assert campaign.ab_winner is None and not campaign.winner_sends.exists()

    later = campaign.started_at + datetime.timedelta(hours=4, seconds=1)
    with django_capture_on_commit_callbacks(execute=False):
        outcome = abtests.decide(campaign.pk, now=later)
        again = abtests.decide(campaign.pk, now=later)  # the task run twice

    campaign.refresh_from_db()
    rest = campaign.winner_sends.get()
    assert outcome.startswith("variant B won") and again == "decided"
    assert (campaign.ab_winner, campaign.ab_decided_at, campaign.ab_decided_by) == (1, later, None)
    assert (rest.subject, rest.status, rest.recipients) == (SUBJECTS[1], Campaign.Status.SENDING, 30)
    tested = set(Delivery.objects.filter(campaign=campaign).values_list("subscriber_id", flat=True))
    rest_readers = set(Delivery.objects.filter(campaign=rest).values_list("subscriber_id", flat=True))
    assert not tested & rest_readers, "nobody gets two subjects"
    assert len(tested | rest_readers) == 60


def test_clicks_decide_when_chosen_and_a_tie_goes_to_the_first_variant(issue_page, django_capture_on_commit_callbacks):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks, metric="clicks")
    open_some(campaign, 0, 9)  # opens do not count here
    open_some(campaign, 1, 3, "first_clicked_at")
    open_some(campaign, 2, 3, "first_clicked_at")

    with django_capture_on_commit_callbacks(execute=False):
        abtests.decide(campaign.pk, now=campaign.started_at + datetime.timedelta(hours=5))

    campaign.refresh_from_db()
    assert campaign.ab_winner == 1


def test_a_starting_worker_decides_a_test_whose_task_was_lost(issue_page, django_capture_on_commit_callbacks):
    due = sent_test(issue_page, django_capture_on_commit_callbacks)
    open_some(due, 2, 4)
    Campaign.objects.filter(pk=due.pk).update(started_at=timezone.now() - datetime.timedelta(hours=5))
    running = start(ab_campaign(issue_page, readers(10, slug="daily"), percent=50), django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=False):
        assert abtests.restart_decisions() == 1  # the running test waits; the due one is decided

    due.refresh_from_db()
    running.refresh_from_db()
    assert (due.ab_winner, running.ab_winner) == (2, None)
    assert due.winner_sends.exists()


def test_the_task_waits_while_the_test_still_sends(issue_page, django_capture_on_commit_callbacks):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)

    with django_capture_on_commit_callbacks(execute=False):
        outcome = abtests.decide(campaign.pk, now=campaign.started_at + datetime.timedelta(hours=5))

    assert outcome == "still sending"
    assert Campaign.objects.get(pk=campaign.pk).ab_winner is None


def test_an_editor_picks_the_winner_before_the_task(issue_page, django_user_model, django_capture_on_commit_callbacks):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks)
    open_some(campaign, 0, 8)
    editor = make_user(django_user_model, "editor", send=True)

    with django_capture_on_commit_callbacks(execute=False):
        abtests.decide(campaign.pk, variant=2, user=editor)
        later = abtests.decide(campaign.pk, now=campaign.started_at + datetime.timedelta(hours=5))

    campaign.refresh_from_db()
    assert (campaign.ab_winner, campaign.ab_decided_by, later) == (2, editor, "decided")
    assert campaign.winner_sends.get().subject == SUBJECTS[2]


def test_picking_needs_the_send_permission(issue_page, django_user_model, django_capture_on_commit_callbacks):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks)

    with pytest.raises(PermissionDenied):
        abtests.decide(campaign.pk, variant=1, user=make_user(django_user_model, "writer"))


@pytest.mark.parametrize(
    "subjects, percent, hours, message",
    [
        (["Only one"], 20, 4, "two to four"),
        (["A", "B", "C", "D", "E"], 20, 4, "two to four"),
        (["Same", "Same"], 20, 4, "two to four"),
        (["Fine", "Bad\r\nBcc: x@example.com"], 20, 4, "line break"),
        (["A", "B"], 95, 4, "1 to 90"),
        (["A", "B"], 20, 0, "one hour"),
    ],
)
def test_configuration_is_checked(issue_page, subjects, percent, hours, message):
    campaign = services.create_campaign(issue_page, [readers(3)])

    with pytest.raises(CampaignError, match=message):
        abtests.configure(campaign, subjects, percent=percent, window=datetime.timedelta(hours=hours), metric="opens")


def test_the_report_shows_each_variant_and_lets_an_editor_pick(
    admin_client, issue_page, django_capture_on_commit_callbacks
):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks)
    open_some(campaign, 1, 4)

    page = admin_client.get(reverse("campaigns_admin:report", args=[campaign.pk])).content.decode()
    assert all(subject.replace("'", "&#x27;") in page for subject in SUBJECTS)
    assert 'data-variant="1"' in page and "40.0 %" in page

    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(reverse("campaigns_admin:ab_pick", args=[campaign.pk]), {"variant": "0"})

    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.ab_winner == 0
    rest = campaign.winner_sends.get()
    page = admin_client.get(reverse("campaigns_admin:report", args=[campaign.pk])).content.decode()
    assert reverse("campaigns_admin:report", args=[rest.pk]) in page
    # Which won and why: picked by this editor, not by the rule.
    assert f"Picked by hand by {campaign.ab_decided_by.get_username()} at" in page
    assert "Chosen automatically" not in page
    rest_page = admin_client.get(reverse("campaigns_admin:report", args=[rest.pk])).content.decode()
    assert reverse("campaigns_admin:report", args=[campaign.pk]) in rest_page


# --- The send form ------------------------------------------------------------------------------


def send_form(weekly, **extra):
    data = {
        "lists": [weekly.pk],
        "subject": SUBJECTS[0],
        "from_email": "The Broadsheet <news@example.com>",
        "when": "now",
        "action": "confirm",
        "ab_test": "on",
        "subject_b": SUBJECTS[1],
        "subject_c": "",
        "subject_d": "",
        "ab_percent": "20",
        "ab_window_hours": "6",
        "ab_metric": "clicks",
    }
    data.update(extra)
    return data


def test_the_send_form_starts_an_ab_test(admin_client, issue_page, django_capture_on_commit_callbacks):
    weekly = readers(40)

    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(reverse("campaigns_admin:send", args=[issue_page.pk]), send_form(weekly))

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert campaign.subject_variants == SUBJECTS[:2]
    assert (campaign.ab_percent, campaign.ab_window, campaign.ab_metric) == (20, datetime.timedelta(hours=6), "clicks")
    assert variants(campaign) == {0: 4, 1: 4}


def test_the_confirm_step_says_the_test_comes_first(admin_client, issue_page):
    weekly = readers(10)

    response = admin_client.post(
        reverse("campaigns_admin:send", args=[issue_page.pk]), send_form(weekly, action="review")
    )

    page = response.content.decode()
    assert "A/B test first: 20 % of them" in page and "most unique clicks by people" in page
    assert "What&#x27;s new this spring" in page or "What's new this spring" in page
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("extra", [{"subject_b": ""}, {"subject_b": SUBJECTS[0]}, {"subject_c": "Hi\nBcc: x@x.org"}])
def test_the_send_form_refuses_a_test_without_two_good_subjects(admin_client, issue_page, extra):
    weekly = readers(10)

    response = admin_client.post(reverse("campaigns_admin:send", args=[issue_page.pk]), send_form(weekly, **extra))

    assert response.status_code == 200
    assert not Campaign.objects.exists()


def test_without_the_box_ticked_the_other_subjects_are_ignored(
    admin_client, issue_page, django_capture_on_commit_callbacks
):
    weekly = readers(10)

    with django_capture_on_commit_callbacks(execute=False):
        admin_client.post(reverse("campaigns_admin:send", args=[issue_page.pk]), send_form(weekly, ab_test=""))

    campaign = Campaign.objects.get()
    assert (campaign.subject_variants, campaign.recipients) == ([], 10)
    assert set(variants(campaign)) == {None}


def test_the_report_says_the_rule_chose_the_winner(admin_client, issue_page, django_capture_on_commit_callbacks):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks)
    open_some(campaign, 1, 4)
    with django_capture_on_commit_callbacks(execute=False):
        abtests.decide(campaign.pk, now=campaign.started_at + datetime.timedelta(hours=4, seconds=1))

    page = admin_client.get(reverse("campaigns_admin:report", args=[campaign.pk])).content.decode()

    assert "Chosen automatically at" in page and "Picked by hand" not in page
    assert 'data-variant="1"' in page and "Winner" in page


def test_the_rest_leaves_out_only_this_tests_readers(issue_page, django_capture_on_commit_callbacks):
    campaign = sent_test(issue_page, django_capture_on_commit_callbacks)
    tested = Delivery.objects.filter(campaign=campaign)
    untested = Subscriber.objects.exclude(pk__in=tested.values("subscriber_id")).first()
    # Another campaign reached a reader outside the test; a tested reader was erased since.
    other = Campaign.objects.create(page=issue_page, from_email="news@example.com", status=Campaign.Status.SENT)
    Delivery.objects.create(
        campaign=other, subscriber=untested, email=untested.email, subscriber_uid=untested.uid, status="sent"
    )
    Subscriber.objects.filter(pk=tested.first().subscriber_id).delete()

    with django_capture_on_commit_callbacks(execute=False):
        abtests.decide(campaign.pk, now=campaign.started_at + datetime.timedelta(hours=5))

    rest = Campaign.objects.get(pk=campaign.pk).winner_sends.get()
    assert rest.recipients == 30
    assert Delivery.objects.filter(campaign=rest, subscriber=untested).exists()
