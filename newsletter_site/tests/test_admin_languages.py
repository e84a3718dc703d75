"""The admin of both apps, their messages and the management commands speak the staff's language.

Staff pick the admin's language in their Wagtail account (or their browser's Accept-Language
decides); a Chinese-speaking editor gets the campaign and subscriber screens in Chinese.
"""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from campaigns import services
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chinese_editor(django_user_model):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    client.force_login(django_user_model.objects.create_superuser("li", "li@example.com", "pw"))
    return client


@pytest.fixture
def campaign(issue_page):
    weekly = MailingListFactory(slug="weekly", name="Weekly")
    SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email="ann@example.com"))
    return services.create_campaign(issue_page, [weekly])


def test_the_campaign_listing_speaks_chinese(chinese_editor, campaign):
    html = chinese_editor.get(reverse("campaigns_admin:index")).content.decode()

    assert "邮件活动" in html  # the title and the menu
    for heading in ("期刊", "收件人", "已发送", "打开", "点击"):
        assert heading in html
    assert "Recipients" not in html and "Campaigns" not in html


def test_the_campaign_page_its_buttons_and_messages_speak_chinese(chinese_editor, campaign):
    page = chinese_editor.get(reverse("campaigns_admin:detail", args=[campaign.pk])).content.decode()
    assert "投递" in page and "取消邮件活动" in page and "发送进度" in page

    response = chinese_editor.post(reverse("campaigns_admin:action", args=[campaign.pk, "cancel"]), follow=True)

    assert "邮件活动已取消：不会再发送任何邮件。" in response.content.decode()


def test_the_subscriber_screens_speak_chinese(chinese_editor, campaign):
    subscriber = SubscriberFactory(email="wang@example.com")

    listing = chinese_editor.get(reverse("subscribers_subscriber:index")).content.decode()
    history = chinese_editor.get(reverse("subscribers_subscriber:inspect", args=[subscriber.pk])).content.decode()
    upload = chinese_editor.get(reverse("subscribers_import:index")).content.decode()

    assert "<title>订阅者" in listing and "添加时间" in listing and "状况" in listing
    assert "历史记录" in history and "邮件列表与同意记录" in history
    assert "上传 CSV 文件" in upload and "自动检测" in upload


def test_english_staff_keep_the_english_admin(django_user_model, campaign):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(django_user_model.objects.create_superuser("ann", "ann@example.com", "pw"))

    html = client.get(reverse("campaigns_admin:index")).content.decode()

    assert "Recipients" in html and "收件人" not in html


def test_command_output_follows_the_active_language(campaign):
    out = StringIO()
    with translation.override("zh-hans"):
        call_command("campaign_status", str(campaign.pk), stdout=out)

    text = out.getvalue()
    assert f"邮件活动 {campaign.pk}：" in text
    assert "收件人：" in text and "剩余：" in text


def test_the_dashboard_growth_chart_writes_days_the_chinese_way(chinese_editor, campaign):
    html = chinese_editor.get(reverse("wagtailadmin_home")).content.decode()

    chart = html[html.index('class="campaign-chart"') : html.index("</svg>", html.index('class="campaign-chart"'))]
    assert "订阅数，最近 90 天" in chart
    assert re.search(r">\d{1,2}月\d{1,2}日</text>", chart), "day labels such as 11月30日"
    assert not re.search(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b", chart)
