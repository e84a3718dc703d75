"""The automations admin: listing with state and figures, one-click pause (POST, permission,
history), the per-step report, and the form refusing hostile input without a 500."""

import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from wagtail.models import ModelLogEntry

from automations.models import Automation, Enrollment
from automations.scheduler import tick
from automations.tests.factories import make_automation, make_email, make_welcome
from campaigns.models import Campaign
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)


@pytest.fixture
def weekly(newsletter_settings):
    return MailingListFactory(slug="weekly", name="The Weekly")


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(client, django_user_model):
    """An admin user who may see automations but not change them."""
    group = Group.objects.create(name="viewers")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    group.permissions.add(Permission.objects.get(codename="view_automation"))
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw")
    user.groups.add(group)
    client.force_login(user)
    return client


def with_two_readers(automation, capture):
    for index in range(2):
        subscriber = SubscriberFactory(email=f"r{index}@example.com")
        SubscriptionFactory(list=automation.list, subscriber=subscriber)
        Enrollment.objects.create(automation=automation, subscriber=subscriber, entered_at=T0)
    with capture(execute=True):
        tick(T0)


def test_listing_shows_state_and_figures(admin_client, weekly, django_capture_on_commit_callbacks):
    welcome = make_welcome(weekly, name="Welcome to the Weekly")
    with_two_readers(welcome, django_capture_on_commit_callbacks)
    html = admin_client.get(reverse("automations:index")).content.decode()
    assert "Welcome to the Weekly" in html
    assert "Active" in html
    assert ">2<" in html.replace(" ", "").replace("\n", "")  # entered and sent
    assert reverse("automations:action", args=[welcome.pk, "pause"]) in html
    welcome.refresh_from_db()
    assert welcome.status == Automation.Status.ACTIVE  # showing the listing changed nothing


def test_pause_is_one_post_logged_and_stops_sending(admin_client, weekly, django_capture_on_commit_callbacks):
    sequence = make_automation(weekly, make_email("One"), make_email("Two"), delays=[(0, 0, 0), (1, 0, 0)])
    with_two_readers(sequence, django_capture_on_commit_callbacks)
    url = reverse("automations:action", args=[sequence.pk, "pause"])
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url)
    assert response.status_code == 302
    sequence.refresh_from_db()
    assert sequence.status == Automation.Status.PAUSED
    assert ModelLogEntry.objects.filter(action="automations.pause", object_id=str(sequence.pk)).exists()
    with django_capture_on_commit_callbacks(execute=True):
        tick(T0 + datetime.timedelta(days=2))
    assert Campaign.objects.count() == 1  # the second email waits
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("automations:action", args=[sequence.pk, "resume"]))
        tick(T0 + datetime.timedelta(days=2))
    assert sorted(Campaign.objects.values_list("sent", flat=True)) == [2, 2]


def test_pause_without_permission_is_refused(viewer_client, weekly):
    welcome = make_welcome(weekly)
    response = viewer_client.post(reverse("automations:action", args=[welcome.pk, "pause"]), follow=True)
    assert "permission" in response.content.decode()  # Wagtail's admin: back home with the refusal
    welcome.refresh_from_db()
    assert welcome.status == Automation.Status.ACTIVE


@pytest.mark.parametrize("action", ["explode", "pause%00", "1"])
def test_unknown_actions_and_automations_are_404(admin_client, weekly, action):
    welcome = make_welcome(weekly)
    assert admin_client.post(f"/admin/automations/{welcome.pk}/{action}/").status_code == 404
    assert admin_client.post("/admin/automations/999999/pause/").status_code == 404


def test_report_per_step(admin_client, weekly, django_capture_on_commit_callbacks):
    sequence = make_automation(weekly, make_email("One"), make_email("Two"), delays=[(0, 0, 0), (1, 0, 0)])
    with_two_readers(sequence, django_capture_on_commit_callbacks)
    html = admin_client.get(reverse("automations:report", args=[sequence.pk])).content.decode()
    first = html.split('data-step="1"')[1].split("</tr>")[0]
    second = html.split('data-step="2"')[1].split("</tr>")[0]
    assert 'data-figure="entered">2<' in first and 'data-figure="sent">2<' in first
    assert 'data-figure="waiting">0<' in first
    assert 'data-figure="entered">0<' in second and 'data-figure="waiting">2<' in second


def form_data(weekly, email, **overrides):
    data = {
        "name": "Onboarding",
        "kind": "sequence",
        "list": str(weekly.pk),
        "segment": "",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-page": str(email.pk),
        "steps-0-delay_days": "0",
        "steps-0-delay_hours": "0",
        "steps-0-delay_minutes": "0",
        "steps-0-ORDER": "1",
        "steps-0-id": "",
    }
    data.update(overrides)
    return data


def test_the_form_creates_an_automation(admin_client, weekly):
    email = make_email()
    response = admin_client.post(reverse("automations:add"), form_data(weekly, email))
    assert response.status_code == 302, response.content.decode()[:3000]
    automation = Automation.objects.get()
    assert [step.page_id for step in automation.steps.all()] == [email.pk]


@pytest.mark.parametrize(
    "overrides",
    [
        {"steps-0-delay_days": "99999999999999999999"},
        {"steps-0-delay_hours": "-1"},
        {"steps-0-delay_minutes": "ten"},
        {"steps-0-delay_minutes": "60"},
        {"name": "x" * 10_000},
        {"name": "Bad\x00name"},
        {"list": "999999"},
        {"list": "'; DROP TABLE automations_automation; --"},
        {"kind": "spam"},
        {"steps-0-page": "999999"},
        {"steps-TOTAL_FORMS": "a lot"},
        {"kind": "welcome", "steps-TOTAL_FORMS": "2", "steps-1-delay_days": "1", "steps-1-ORDER": "2"},
    ],
)
def test_hostile_form_input_is_a_form_error_never_a_500(admin_client, weekly, overrides):
    email = make_email()
    data = form_data(weekly, email, **overrides)
    if "steps-1-ORDER" in overrides:
        data.update({"steps-1-page": str(email.pk), "steps-1-delay_hours": "0", "steps-1-delay_minutes": "0"})
    response = admin_client.post(reverse("automations:add"), data)
    assert response.status_code in (200, 400)
    assert not Automation.objects.exists()


def test_a_second_welcome_for_a_list_is_refused(admin_client, weekly):
    make_welcome(weekly)
    email = make_email("Another", subject="Another")
    response = admin_client.post(reverse("automations:add"), form_data(weekly, email, kind="welcome"))
    assert response.status_code == 200
    assert "already has a welcome email" in response.content.decode()
    assert Automation.objects.count() == 1
