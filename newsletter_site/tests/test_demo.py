import pytest
from django.core import mail
from django.utils import timezone
from wagtail.models import Site

from campaigns.models import AutoSendRule, NewsletterIssuePage
from mail.models import NewsletterSettings
from newsletter_site.demo import load_demo_content
from pages.models import HomePage
from subscribers.models import MailingList, Subscriber, Subscription
from subscribers.services import confirm_subscription, subscribe


@pytest.fixture(autouse=True)
def _var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path


@pytest.mark.django_db
def test_demo_content_gives_a_site_ready_to_send_from():
    result = load_demo_content()

    site = Site.objects.get(is_default_site=True)
    assert (site.hostname, site.port) == ("news.example.com", 443), "page URLs follow BASE_URL"
    issues = NewsletterIssuePage.objects.issues().live()
    assert issues.filter(locale__language_code="en").count() == 3
    assert issues.filter(locale__language_code="zh-hans").count() == 1
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


@pytest.mark.django_db
def test_a_browser_preferring_chinese_gets_the_demo_site_in_chinese(client):
    load_demo_content()
    chinese = {"HTTP_HOST": "news.example.com", "HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}

    home = client.get("/", follow=True, **chinese)

    assert home.redirect_chain == [("/zh-hans/", 302)]
    html = home.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "慢新闻" in html  # the content
    assert "跳到正文" in html and "往期通讯" in html  # the chrome: skip link, navigation
    assert 'href="/zh-hans/archive/"' in html and 'href="/zh-hans/subscribe/"' in html
    assert 'action="/zh-hans/subscribe/"' in html, "the form signs up from the Chinese page (language zh-hans)"
    assert "订阅下一期" in html and "Get the next issue" not in html  # the form's heading
    for path, words in (("/archive/", "印刷的回归，以及"), ("/subscribe/", "我同意通过电子邮件接收")):
        page = client.get(path, follow=True, **chinese)
        assert page.redirect_chain == [(f"/zh-hans{path}", 302)]
        assert words in page.content.decode()
    issue = client.get("/archive/issue-1-the-return-of-print/", follow=True, **chinese)
    assert issue.redirect_chain == [("/zh-hans/archive/issue-1-the-return-of-print/", 302)]
    assert "印刷的回归" in issue.content.decode()


@pytest.mark.django_db
def test_english_readers_keep_the_english_demo_site(client):
    load_demo_content()

    html = client.get("/", HTTP_HOST="news.example.com", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").content.decode()

    assert '<html lang="en">' in html
    assert 'href="/archive/"' in html and "往期通讯" not in html


@pytest.mark.django_db
def test_running_it_again_keeps_the_translations_editors_changed():
    load_demo_content()
    chinese_home = HomePage.objects.get(locale__language_code="zh-hans")
    chinese_home.intro = "<p>编辑改过的介绍</p>"
    chinese_home.save_revision().publish()

    result = load_demo_content()

    assert HomePage.objects.get(locale__language_code="zh-hans").intro == "<p>编辑改过的介绍</p>"
    assert result["issues"] == 3 and result["translated_issues"] == 1
    assert NewsletterIssuePage.objects.issues().count() == 4


@pytest.mark.django_db
def test_each_language_lists_every_issue_once_in_its_own_language_when_translated(client):
    load_demo_content()
    host = {"HTTP_HOST": "news.example.com"}

    english_home = client.get("/", HTTP_ACCEPT_LANGUAGE="en", **host).content.decode()
    english_archive = client.get("/archive/", HTTP_ACCEPT_LANGUAGE="en", **host).content.decode()
    chinese_archive = client.get("/zh-hans/archive/", **host).content.decode()
    chinese_home = client.get("/zh-hans/", **host).content.decode()

    assert "印刷的回归" not in english_home and "印刷的回归" not in english_archive
    assert english_archive.count('class="issue-list__item"') == 3
    # The Chinese archive: issue 1 in Chinese, issues 2 and 3 (not translated) in English.
    assert chinese_archive.count('class="issue-list__item"') == 3
    assert "印刷的回归" in chinese_archive and "The return of print" not in chinese_archive
    assert "Rivers and cities" in chinese_archive and "repair economy" in chinese_archive
    assert "印刷的回归" in chinese_home and 'href="/zh-hans/archive/issue-1-the-return-of-print/"' in chinese_home


@pytest.mark.django_db
def test_every_public_list_welcomes_a_reader_who_confirms(django_capture_on_commit_callbacks):
    load_demo_content()
    load_demo_content()  # again: no second welcome email
    lists = list(MailingList.objects.filter(is_public=True))
    with django_capture_on_commit_callbacks(execute=True):
        subscribe(email="newcomer@example.com", lists=lists, consent_text="Yes")
    newcomer = Subscriber.objects.get(email="newcomer@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        confirm_subscription(newcomer.uid, [mlist.pk for mlist in lists], ip=None, user_agent="")

    subjects = sorted(m.subject for m in mail.outbox if m.to == ["newcomer@example.com"])
    assert subjects == sorted(["Please confirm your subscription"] + [f"Welcome to {mlist.name}" for mlist in lists])
    # Nobody already on the lists was welcomed.
    assert len([m for m in mail.outbox if m.subject.startswith("Welcome")]) == len(lists)


@pytest.mark.django_db
def test_the_culture_desk_gets_a_weekly_digest_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        load_demo_content()
        load_demo_content()

    rule = AutoSendRule.objects.get()
    assert rule.mailing_list.slug == "culture-desk" and rule.mode == AutoSendRule.Mode.DIGEST
    assert timezone.localtime(rule.next_digest_at).weekday() == 4  # Friday
