"""Wagtail idioms in the admin: permission policies, one table entry per campaign action, audit in the transaction."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from wagtail.models import ModelLogEntry
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permissions import policy_registry

from campaigns import admin_views, audit
from campaigns.models import Campaign
from campaigns.tests.test_admin_send import make_user
from subscribers.models import Subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender(django_user_model):
    return make_user(django_user_model, "sender", send=True)


@pytest.fixture
def campaign(issue_page):
    return Campaign.objects.create(
        page=issue_page, status=Campaign.Status.SENDING, started_at=timezone.now() - datetime.timedelta(minutes=1)
    )


def admin_user(username, *codenames):
    user = get_user_model().objects.create_user(username, password="x")
    user.user_permissions.add(Permission.objects.get(codename="access_admin"))
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_campaign_has_a_registered_model_permission_policy_whose_send_action_is_the_permission(sender):
    policy = policy_registry.get_by_type(Campaign)

    assert isinstance(policy, ModelPermissionPolicy)
    assert policy is not policy_registry.get_fallback_policy(Campaign)
    assert policy.user_has_permission(sender, "send")
    assert not policy.user_has_permission(admin_user("nobody"), "send")


def test_a_user_without_send_permission_gets_a_403_page_naming_the_permission(client):
    client.force_login(admin_user("nobody"))

    response = client.get(reverse("campaigns_admin:index"))

    assert response.status_code == 403
    assert "Can send campaigns" in response.text


def test_subscriber_tools_answer_403_and_their_menu_follows_the_same_policy(client):
    importer, viewer = admin_user("importer", "add_subscriber"), admin_user("viewer", "view_subscriber")
    import_url = reverse("subscribers_import:index")

    client.force_login(viewer)
    refused, viewer_home = client.get(import_url), client.get(reverse("wagtailadmin_home")).text
    client.force_login(importer)
    allowed, importer_home = client.get(import_url), client.get(reverse("wagtailadmin_home")).text

    assert refused.status_code == 403 and "subscriber permissions" in refused.text
    assert allowed.status_code == 200
    assert import_url in importer_home and import_url not in viewer_home
    assert policy_registry.get_by_type(Subscriber).user_has_permission(importer, "add")


def test_every_campaign_action_is_one_table_entry_with_its_button_and_audit_action():
    assert list(admin_views.CAMPAIGN_ACTIONS) == ["pause", "resume", "retry", "cancel"]
    assert {a.log_action for a in admin_views.CAMPAIGN_ACTIONS.values()} == {
        audit.PAUSE,
        audit.RESUME,
        audit.RETRY_FAILED,
        audit.CANCEL,
    }


def test_an_unknown_action_is_404_and_changes_nothing(client, sender, campaign):
    client.force_login(sender)

    response = client.post(reverse("campaigns_admin:action", args=[campaign.pk, "explode"]))

    assert response.status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_an_action_whose_audit_entry_cannot_be_written_is_rolled_back(client, sender, campaign, monkeypatch):
    def broken_log(*args, **kwargs):
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(audit, "log_action", broken_log)
    client.raise_request_exception = False
    client.force_login(sender)

    response = client.post(reverse("campaigns_admin:action", args=[campaign.pk, "pause"]))

    assert response.status_code == 500
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING  # no change without its audit entry
    assert not ModelLogEntry.objects.filter(object_id=str(campaign.pk)).exists()
