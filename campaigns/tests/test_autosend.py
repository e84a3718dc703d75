"""Issues that send themselves (issue 12): on publish with a review delay, and weekly digests."""

import datetime
import threading

import pytest
from bs4 import BeautifulSoup
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from wagtail.images.models import Image
from wagtail.images.tests.utils import get_test_image_file
from wagtail.models import ModelLogEntry

from campaigns import autosend, services
from campaigns.models import AutoSendRule, Campaign, Digest, DigestPage, IssueSend, NewsletterIssuePage
from campaigns.tests.factories import make_issue, make_user
from campaigns.tests.test_admin_editor_day import issue_form
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def weekly(newsletter_settings):
    """A list with three confirmed readers."""
    mailing_list = MailingListFactory(slug="weekly", name="Weekly")
    for index in range(3):
        SubscriptionFactory(list=mailing_list, subscriber=SubscriberFactory(email=f"reader{index}@example.com"))
    return mailing_list


@pytest.fixture
def on_publish(weekly):
    return AutoSendRule.objects.create(
        mailing_list=weekly, mode=AutoSendRule.Mode.ON_PUBLISH, review_delay=30, active_since=timezone.now()
    )


@pytest.fixture
def publish(archive_page, django_capture_on_commit_callbacks):
    """``publish(slug, **fields)``: a new issue published as an editor would (the publish signal's
    task runs once the publish commits); ``publish(page)`` publishes an existing one again."""

    def publish_issue(page_or_slug, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            if isinstance(page_or_slug, str):
                fields.setdefault("title", page_or_slug.replace("-", " ").title())
                return make_issue(archive_page, slug=page_or_slug, **fields)
            page_or_slug.save_revision().publish()
        page_or_slug.refresh_from_db()
        return page_or_slug

    return publish_issue


def automatic_campaigns(mailing_list):
    return Campaign.objects.filter(lists=mailing_list, autosends__isnull=False).distinct()


# --- On publish -----------------------------------------------------------------------------------


def test_publishing_schedules_exactly_one_campaign_after_the_review_delay(on_publish, weekly, publish):
    issue = publish("issue-7")

    campaign = automatic_campaigns(weekly).get()
    assert campaign.page_id == issue.pk
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at == issue.last_published_at + datetime.timedelta(minutes=30)
    assert list(campaign.lists.all()) == [weekly]
    # Not before its time: the start task refuses, and nothing is queued yet.
    assert services.start_scheduled_campaign(campaign.pk) == "not due"
    assert not campaign.deliveries.exists()


def test_the_scheduled_campaign_sends_like_any_other_when_due(
    on_publish, weekly, publish, mailoutbox, django_capture_on_commit_callbacks
):
    publish("issue-7")
    campaign = automatic_campaigns(weekly).get()
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - datetime.timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert services.start_scheduled_campaign(campaign.pk) == "started"

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
    assert campaign.sent == 3
    assert sorted(message.to[0].split("<")[-1].rstrip(">") for message in mailoutbox) == [
        f"reader{i}@example.com" for i in range(3)
    ]


def test_cancelling_during_the_review_delay_sends_nothing(on_publish, weekly, publish, mailoutbox):
    publish("issue-7")
    campaign = automatic_campaigns(weekly).get()

    services.cancel_campaign(campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - datetime.timedelta(seconds=1))

    assert services.start_scheduled_campaign(campaign.pk) == "not scheduled"
    assert mailoutbox == []
    # ... and publishing the issue again does not bring it back.
    publish(NewsletterIssuePage.objects.get(pk=campaign.page_id))
    assert automatic_campaigns(weekly).count() == 1


def test_republishing_an_edited_issue_does_not_make_a_second_campaign(on_publish, weekly, publish):
    issue = publish("issue-7")
    issue.subject = "Corrected subject"
    publish(issue)

    assert automatic_campaigns(weekly).count() == 1
    assert IssueSend.objects.filter(mailing_list=weekly).count() == 1
    # A task run twice does nothing the second time either.
    assert autosend.issue_published(issue.pk) == {"weekly": "already sent"}


def test_a_translation_is_the_same_issue(
    on_publish, weekly, publish, translate_page, django_capture_on_commit_callbacks
):
    issue = publish("issue-7")
    with django_capture_on_commit_callbacks(execute=True):
        translate_page(issue, "zh-hans", subject="春季号")

    assert automatic_campaigns(weekly).count() == 1


def test_an_issue_sent_by_hand_is_not_sent_again_automatically(on_publish, weekly, archive_page, publish):
    on_publish.paused = True
    on_publish.save()
    issue = publish("issue-7")  # while paused: nothing automatic
    manual = services.create_campaign(issue, [weekly])
    services.start_campaign(manual.pk, at=timezone.now() + datetime.timedelta(hours=2))
    autosend.resume_rule(on_publish.pk)

    publish(issue)

    assert autosend.issue_published(issue.pk) == {"weekly": "sent by hand"}
    assert list(Campaign.objects.filter(page=issue)) == [manual]


def test_a_paused_rule_creates_nothing_and_other_lists_are_not_touched(on_publish, weekly, publish):
    other = MailingListFactory(slug="monthly")
    AutoSendRule.objects.create(mailing_list=other, mode=AutoSendRule.Mode.DIGEST)
    autosend.pause_rule(on_publish.pk)

    publish("issue-7")

    assert not Campaign.objects.exists()


def test_an_issue_published_before_the_rule_existed_is_not_sent(weekly, publish):
    issue = publish("issue-7")
    AutoSendRule.objects.create(mailing_list=weekly, mode=AutoSendRule.Mode.ON_PUBLISH)

    publish(issue)

    assert not Campaign.objects.exists()


def test_a_campaign_that_cannot_start_leaves_nothing_and_says_why(newsletter_settings, publish):
    empty = MailingListFactory(slug="empty")
    rule = AutoSendRule.objects.create(mailing_list=empty, mode=AutoSendRule.Mode.ON_PUBLISH)

    issue = publish("issue-7")  # the publish itself succeeds

    assert issue.live
    assert not Campaign.objects.exists()
    assert not IssueSend.objects.exists()
    rule.refresh_from_db()
    assert "Nobody on these lists can receive it" in rule.last_error


# --- Digests --------------------------------------------------------------------------------------


@pytest.fixture
def digest_rule(weekly):
    return AutoSendRule.objects.create(
        mailing_list=weekly,
        mode=AutoSendRule.Mode.DIGEST,
        digest_weekday=0,
        digest_time=datetime.time(8, 0),
        active_since=timezone.now() - datetime.timedelta(days=1),
    )


@pytest.fixture
def press_image(db):
    return Image.objects.create(title="Press", file=get_test_image_file(filename="press.png"))


def run_slot(rule, django_capture_on_commit_callbacks, *, ago=datetime.timedelta(minutes=1)):
    """Make ``rule``'s digest for a slot that has just passed (as its task would); returns what it said."""
    due_at = timezone.now() - ago
    AutoSendRule.objects.filter(pk=rule.pk).update(next_digest_at=due_at)
    with django_capture_on_commit_callbacks(execute=True):
        return autosend.run_digest(rule.pk, due_at), due_at


def test_a_digest_holds_each_new_issue_title_teaser_image_and_link(
    digest_rule, weekly, archive_page, press_image, mailoutbox, django_capture_on_commit_callbacks
):
    first = make_issue(
        archive_page,
        title="Spring",
        slug="spring",
        preheader="Three stories",
        hero_image=press_image,
        hero_alt_text="A printing press",
    )
    second = make_issue(archive_page, title="Summer", slug="summer", preheader="", search_description="Heat and ink")

    result, _due = run_slot(digest_rule, django_capture_on_commit_callbacks)

    assert result == "sent"
    digest = Digest.objects.get()
    assert digest.issues == 2
    campaign = digest.campaign
    assert campaign.status == Campaign.Status.SENT and campaign.sent == 3
    assert list(campaign.lists.all()) == [weekly]
    assert isinstance(campaign.page.specific, DigestPage)
    html, text = campaign.html, campaign.text
    for issue, teaser in ((first, "Three stories"), (second, "Heat and ink")):
        assert issue.title in html and teaser in html
        assert f'href="{issue.full_url}"' in html
        assert issue.title in text and issue.full_url in text
    assert html.index("Spring") < html.index("Summer")  # oldest first
    assert 'alt="A printing press"' in html and "/images/" in html
    # The same layout and footer as any campaign (unsubscribe link, postal address).
    assert "1 Fleet Street" in html and "unsubscribe" in html.lower()
    assert len(mailoutbox) == 3 and mailoutbox[0].subject == campaign.subject
    # Both issues are now recorded for the list: neither goes on publish or in a later digest.
    assert set(IssueSend.objects.filter(mailing_list=weekly).values_list("issue_id", flat=True)) == {
        first.pk,
        second.pk,
    }


def test_the_archive_and_feed_do_not_list_a_digest(
    digest_rule, archive_page, client, django_capture_on_commit_callbacks
):
    make_issue(archive_page, title="Spring", slug="spring")
    run_slot(digest_rule, django_capture_on_commit_callbacks)
    digest_page = DigestPage.objects.get()

    assert list(archive_page.issues()) == [NewsletterIssuePage.objects.get(slug="spring")]
    archive = client.get(archive_page.url)
    assert digest_page.title not in archive.content.decode()
    assert client.get(digest_page.url).status_code == 200  # "view in browser" works


def test_a_digest_with_nothing_new_sends_nothing_and_is_recorded(
    digest_rule, mailoutbox, django_capture_on_commit_callbacks
):
    result, due_at = run_slot(digest_rule, django_capture_on_commit_callbacks)

    assert result == "nothing new"
    digest = Digest.objects.get()
    assert (digest.due_at, digest.issues, digest.campaign) == (due_at, 0, None)
    assert not Campaign.objects.exists() and mailoutbox == []
    digest_rule.refresh_from_db()
    assert digest_rule.next_digest_at > timezone.now()


def test_a_digest_task_run_twice_makes_one_digest(
    digest_rule, archive_page, mailoutbox, django_capture_on_commit_callbacks
):
    make_issue(archive_page, title="Spring", slug="spring")
    result, due_at = run_slot(digest_rule, django_capture_on_commit_callbacks)
    assert result == "sent"

    with django_capture_on_commit_callbacks(execute=True):
        assert autosend.run_digest(digest_rule.pk, due_at) == "stale"

    assert Digest.objects.count() == 1 and Campaign.objects.count() == 1 and len(mailoutbox) == 3


def test_an_issue_is_in_one_digest_only_and_not_if_sent_otherwise(
    digest_rule, weekly, archive_page, django_capture_on_commit_callbacks
):
    make_issue(archive_page, title="Spring", slug="spring")
    run_slot(digest_rule, django_capture_on_commit_callbacks, ago=datetime.timedelta(hours=1))
    by_hand = make_issue(archive_page, title="Summer", slug="summer")
    manual = services.create_campaign(by_hand, [weekly])
    services.start_campaign(manual.pk, at=timezone.now() + datetime.timedelta(hours=1))
    make_issue(archive_page, title="Autumn", slug="autumn")

    result, _due = run_slot(digest_rule, django_capture_on_commit_callbacks)

    assert result == "sent"
    latest = Digest.objects.first()
    assert latest.issues == 1
    assert [block.value["title"] for block in latest.page.body] == ["Autumn"]


def test_a_digest_that_cannot_start_keeps_its_issues_for_the_next(
    archive_page, newsletter_settings, django_capture_on_commit_callbacks
):
    rule = AutoSendRule.objects.create(
        mailing_list=MailingListFactory(slug="empty"),
        mode=AutoSendRule.Mode.DIGEST,
        active_since=timezone.now() - datetime.timedelta(days=1),
    )
    make_issue(archive_page, title="Spring", slug="spring")

    result, _due = run_slot(rule, django_capture_on_commit_callbacks)

    assert result.startswith("failed: Nobody on these lists")
    assert not DigestPage.objects.exists() and not IssueSend.objects.exists()
    assert [issue.slug for issue in autosend.digest_issues(rule)] == ["spring"]


def test_paused_stale_and_early_slots_do_nothing(digest_rule, archive_page, django_capture_on_commit_callbacks):
    make_issue(archive_page, title="Spring", slug="spring")
    soon = timezone.now() + datetime.timedelta(hours=1)
    AutoSendRule.objects.filter(pk=digest_rule.pk).update(next_digest_at=soon)
    assert autosend.run_digest(digest_rule.pk, soon) == "not due"
    assert autosend.run_digest(digest_rule.pk, soon - datetime.timedelta(days=7)) == "stale"
    autosend.pause_rule(digest_rule.pk)
    assert autosend.run_digest(digest_rule.pk, soon) == "not a digest rule now"
    assert not Digest.objects.exists()


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # Monday 08:00 in the site's zone; 30 Nov 2026 is a Monday.
        ("UTC", datetime.datetime(2026, 11, 30, 7, 59, tzinfo=datetime.UTC), "2026-11-30 08:00+00:00"),
        ("UTC", datetime.datetime(2026, 11, 30, 8, 0, tzinfo=datetime.UTC), "2026-12-07 08:00+00:00"),
        # 08:00 in Shanghai is 00:00 UTC: Sunday 23:30 UTC is already Monday 07:30 there.
        ("Asia/Shanghai", datetime.datetime(2026, 11, 29, 23, 30, tzinfo=datetime.UTC), "2026-11-30 08:00+08:00"),
        # Across the clock change (Europe/London leaves summer time on 25 Oct 2026): still 08:00 local.
        ("Europe/London", datetime.datetime(2026, 10, 20, 12, 0, tzinfo=datetime.UTC), "2026-10-26 08:00+00:00"),
    ],
)
def test_the_next_digest_is_the_weekday_and_time_in_the_sites_time_zone(settings, zone, after, expected):
    settings.TIME_ZONE = zone
    rule = AutoSendRule(digest_weekday=0, digest_time=datetime.time(8, 0))

    slot = autosend.next_digest_at(rule, after)

    assert slot.isoformat(" ", "minutes") == expected


def test_saving_a_digest_rule_enqueues_its_next_slot(weekly, django_capture_on_commit_callbacks, settings):
    rule = AutoSendRule.objects.create(mailing_list=weekly, mode=AutoSendRule.Mode.DIGEST, digest_weekday=4)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        autosend.rule_saved(rule)

    rule.refresh_from_db()
    assert timezone.localtime(rule.next_digest_at).weekday() == 4
    assert len(callbacks) == 1  # the digest task (it ran at once on the test backend: "not due")
    assert not Digest.objects.exists()


# --- Races (PostgreSQL: each thread has its own connection and transaction) ------------------------


def at_once(function, *args):
    """Call ``function(*args)`` in two threads released together; their results."""
    ready = threading.Barrier(2)
    results, errors = [], []

    def work():
        try:
            ready.wait()
            results.append(function(*args))
        except Exception as error:  # reported below: a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return results


DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "campaigns"]}}


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_publishes_at_once_schedule_one_campaign_on_postgresql(
    postgresql, on_publish, weekly, archive_page, settings
):
    settings.TASKS = DB_TASKS  # the tasks wait in the table; the threads below are the two runs
    issue = make_issue(archive_page, slug="issue-7")

    results = at_once(autosend.issue_published, issue.pk)

    assert sorted(result["weekly"] for result in results) == ["already sent", "scheduled"]
    assert automatic_campaigns(weekly).count() == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_digest_runs_at_once_make_one_digest_on_postgresql(postgresql, digest_rule, archive_page, settings):
    settings.TASKS = DB_TASKS
    make_issue(archive_page, title="Spring", slug="spring")
    due_at = timezone.now() - datetime.timedelta(minutes=1)
    AutoSendRule.objects.filter(pk=digest_rule.pk).update(next_digest_at=due_at)

    results = at_once(autosend.run_digest, digest_rule.pk, due_at)

    assert sorted(results) == ["sent", "stale"]
    assert Digest.objects.count() == 1 and Campaign.objects.count() == 1


# --- Admin ----------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def test_the_listing_shows_each_rule_with_its_state_and_figures(
    on_publish, weekly, publish, admin_client, django_capture_on_commit_callbacks
):
    publish("issue-7")
    campaign = automatic_campaigns(weekly).get()
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.SENT, finished_at=datetime.datetime(2026, 11, 2, 9, 30, tzinfo=datetime.UTC)
    )
    monthly = MailingListFactory(slug="monthly", name="Monthly")
    AutoSendRule.objects.create(
        mailing_list=monthly,
        mode=AutoSendRule.Mode.DIGEST,
        digest_weekday=4,
        digest_time=datetime.time(7, 15),
        paused=True,
        next_digest_at=None,
    )

    response = admin_client.get(reverse("campaigns_autosend:index"))

    assert response.status_code == 200
    rows = {row.select_one("td a").get_text(strip=True): row for row in rows_of(response)}
    weekly_row = [cell.get_text(" ", strip=True) for cell in rows["Weekly"].select("td")]
    assert weekly_row[1:6] == ["Each issue, 30 min after publishing", "Active", "1", "2026-11-02 09:30", ""]
    assert rows["Weekly"].select("td")[-1].select_one("button").get_text(strip=True) == "Pause"
    monthly_row = [cell.get_text(" ", strip=True) for cell in rows["Monthly"].select("td")]
    assert monthly_row[1:4] == ["Digest: Friday, 07:15", "Paused", "0"]
    assert rows["Monthly"].select("td")[-1].select_one("button").get_text(strip=True) == "Resume"


def rows_of(response):
    return BeautifulSoup(response.content, "html.parser").select("table.listing tbody tr")


def test_pausing_is_one_post_and_is_logged(on_publish, admin_client, publish):
    url = reverse("campaigns_autosend:action", args=[on_publish.pk, "pause"])

    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)

    assert response.status_code == 302
    on_publish.refresh_from_db()
    assert on_publish.paused
    notice = [str(message) for message in get_messages(response.wsgi_request)]
    assert notice == ["Automatic sends to “Weekly” paused."]
    assert ModelLogEntry.objects.filter(action="campaigns.autosend_pause", object_id=str(on_publish.pk)).count() == 1
    publish("issue-7")
    assert not Campaign.objects.exists()

    admin_client.post(reverse("campaigns_autosend:action", args=[on_publish.pk, "resume"]))
    on_publish.refresh_from_db()
    assert not on_publish.paused
    assert ModelLogEntry.objects.filter(action="campaigns.autosend_resume").count() == 1


def test_pausing_needs_the_permission_to_change_rules(on_publish, client, django_user_model):
    client.force_login(make_user(django_user_model, "editor", send=True))

    response = client.post(reverse("campaigns_autosend:action", args=[on_publish.pk, "pause"]))

    # Refused (Wagtail answers a refused admin action with its "no permission" redirect).
    assert response.status_code in (302, 403)
    on_publish.refresh_from_db()
    assert not on_publish.paused
    assert not ModelLogEntry.objects.filter(action="campaigns.autosend_pause").exists()
    assert client.get(reverse("campaigns_autosend:index")).status_code in (302, 403)


def test_an_unknown_action_or_rule_is_404(on_publish, admin_client):
    assert admin_client.post(reverse("campaigns_autosend:action", args=[on_publish.pk, "delete"])).status_code == 404
    assert admin_client.post(reverse("campaigns_autosend:action", args=[999, "pause"])).status_code == 404


def test_adding_a_digest_rule_in_the_admin_schedules_its_first_digest(
    weekly, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("campaigns_autosend:add"),
            {
                "mailing_list": weekly.pk,
                "mode": "digest",
                "review_delay": 60,
                "digest_weekday": 2,
                "digest_time": "09:00",
            },
        )

    assert response.status_code == 302
    rule = AutoSendRule.objects.get(mailing_list=weekly)
    assert timezone.localtime(rule.next_digest_at).weekday() == 2
    assert timezone.localtime(rule.next_digest_at).time() == datetime.time(9, 0)


def test_a_starting_worker_makes_a_missed_digest_and_schedules_the_next(
    digest_rule, weekly, archive_page, django_capture_on_commit_callbacks
):
    make_issue(archive_page, title="Spring", slug="spring")
    missed = timezone.now() - datetime.timedelta(days=2)  # no worker ran at the time
    later_rule = AutoSendRule.objects.create(
        mailing_list=MailingListFactory(slug="monthly"), mode=AutoSendRule.Mode.DIGEST, next_digest_at=None
    )
    AutoSendRule.objects.filter(pk=digest_rule.pk).update(next_digest_at=missed)

    with django_capture_on_commit_callbacks(execute=True):
        assert autosend.restart_digests() == 2

    digest = Digest.objects.get(rule=digest_rule)
    assert digest.due_at == missed and digest.campaign.status == Campaign.Status.SENT
    for rule in (digest_rule, later_rule):
        rule.refresh_from_db()
        assert rule.next_digest_at > timezone.now()


def test_pausing_says_which_scheduled_campaigns_will_still_go(on_publish, weekly, admin_client, publish):
    publish("issue-7")

    response = admin_client.post(reverse("campaigns_autosend:action", args=[on_publish.pk, "pause"]), follow=True)

    assert "1 campaign it scheduled will still go: cancel it in Campaigns" in response.text
    assert automatic_campaigns(weekly).get().status == Campaign.Status.SCHEDULED


def test_a_digest_campaign_has_the_usual_campaign_page_and_report(
    digest_rule, archive_page, admin_client, django_capture_on_commit_callbacks
):
    make_issue(archive_page, title="Spring", slug="spring")
    run_slot(digest_rule, django_capture_on_commit_callbacks)
    campaign = Digest.objects.get().campaign

    for name in ("campaigns_admin:detail", "campaigns_admin:report"):
        response = admin_client.get(reverse(name, args=[campaign.pk]))
        assert response.status_code == 200, name
        assert campaign.page.title in response.text
    assert campaign.page.title in admin_client.get(reverse("campaigns_admin:index")).text


def test_switching_a_digest_rule_to_on_publish_drops_its_pending_digest(
    digest_rule, archive_page, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        autosend.rule_saved(digest_rule)
    digest_rule.refresh_from_db()
    pending = digest_rule.next_digest_at
    make_issue(archive_page, title="Spring", slug="spring")

    response = admin_client.post(
        reverse("campaigns_autosend:edit", args=[digest_rule.pk]),
        {
            "mailing_list": digest_rule.mailing_list_id,
            "mode": "publish",
            "review_delay": 15,
            "digest_weekday": 0,
            "digest_time": "08:00",
        },
    )

    assert response.status_code == 302
    digest_rule.refresh_from_db()
    assert digest_rule.next_digest_at is None
    assert autosend.run_digest(digest_rule.pk, pending) == "not a digest rule now"
    assert not Digest.objects.exists()


def test_the_editor_who_publishes_is_told_which_lists_get_it_and_until_when_to_cancel(
    on_publish, weekly, admin_client, archive_page, django_capture_on_commit_callbacks
):
    add = reverse("wagtailadmin_pages:add", args=["campaigns", "newsletterissuepage", archive_page.pk])

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(add, issue_form(**{"action-publish": "action-publish"}), follow=True)

    campaign = automatic_campaigns(weekly).get()
    when = timezone.localtime(campaign.scheduled_at).strftime("%Y-%m-%d %H:%M")
    notices = [str(message) for message in response.context["messages"]]
    assert any(
        f"Sent automatically to Weekly ({when}): until then you can cancel it in Campaigns." in notice
        for notice in notices
    ), notices


def test_no_automatic_send_notice_without_a_rule(weekly, admin_client, archive_page):
    add = reverse("wagtailadmin_pages:add", args=["campaigns", "newsletterissuepage", archive_page.pk])

    response = admin_client.post(add, issue_form(**{"action-publish": "action-publish"}), follow=True)

    assert not any("automatically" in str(message) for message in response.context["messages"])


def test_on_publish_manual_and_digest_together_send_each_issue_once(
    on_publish, weekly, archive_page, publish, django_capture_on_commit_callbacks
):
    sent_on_publish = publish("spring")
    autosend.pause_rule(on_publish.pk)
    by_hand = publish("summer")
    services.start_campaign(services.create_campaign(by_hand, [weekly]).pk)
    AutoSendRule.objects.filter(pk=on_publish.pk).update(mode=AutoSendRule.Mode.DIGEST, paused=False)
    new = make_issue(archive_page, title="Autumn", slug="autumn")

    run_slot(on_publish, django_capture_on_commit_callbacks)

    digest = Digest.objects.get()
    assert [block.value["page"].pk for block in digest.page.body] == [new.pk]
    for issue in (sent_on_publish, by_hand, new):
        campaigns = Campaign.objects.filter(lists=weekly).exclude(status=Campaign.Status.CANCELLED)
        holding = [c for c in campaigns if c.page_id == issue.pk or issue.pk in digest_issue_ids(c)]
        assert len(holding) == 1, issue.slug


def digest_issue_ids(campaign):
    page = campaign.page.specific
    return [block.value["page"].pk for block in page.body] if isinstance(page, DigestPage) else []
