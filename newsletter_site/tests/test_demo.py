import pytest
from wagtail.models import Site

from campaigns.models import NewsletterIssuePage
from mail.models import NewsletterSettings
from newsletter_site.demo import load_demo_content
from subscribers.models import MailingList, Subscriber, Subscription


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path


@pytest.mark.django_db
def test_demo_content_gives_a_site_ready_to_send_from():
    result = load_demo_content()

    site = Site.objects.get(is_default_site=True)
    assert (site.hostname, site.port) == ("news.example.com", 443), "page URLs follow BASE_URL"
    issues = NewsletterIssuePage.objects.live()
    assert issues.count() == 3
    assert all(issue.hero_image and issue.body for issue in issues)
    assert NewsletterSettings.for_site(site).can_send
    assert MailingList.objects.count() == 2
    assert 200 <= Subscriber.objects.count() <= 500
    statuses = set(Subscription.objects.values_list("status", flat=True))
    assert statuses == {"subscribed", "pending", "unsubscribed"}
    assert Subscriber.objects.exclude(state="active").exists(), "some suppressed addresses, as in real life"
    assert result["username"] == "admin" and len(result["password"]) >= 12


@pytest.mark.django_db
def test_running_it_twice_changes_nothing_and_keeps_the_password():
    first = load_demo_content()
    counts = (Subscriber.objects.count(), Subscription.objects.count(), NewsletterIssuePage.objects.count())

    second = load_demo_content()

    assert (Subscriber.objects.count(), Subscription.objects.count(), NewsletterIssuePage.objects.count()) == counts
    assert second["password"] == first["password"]
    assert second["subscribers_created"] == 0


@pytest.mark.django_db
def test_the_demo_home_page_carries_a_subscribe_form_posting_to_the_subscribe_page(client):
    load_demo_content()

    html = client.get("/", HTTP_HOST="news.example.com").content.decode()

    assert 'action="/subscribe/"' in html
    assert 'type="email"' in html and "The Broadsheet" in html
