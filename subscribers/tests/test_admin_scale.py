"""The subscribers admin at scale (issue 15): no query per row, the lists page's counts sortable and
exact, PostgreSQL's estimate instead of counting a million rows, the search answered by its
trigram indexes. The timings themselves are bench/admin_bench.py's (docs/performance.md)."""

import pytest
from django.db import connection
from django.urls import reverse

from subscribers import counting
from subscribers.admin_forms import search_subscribers
from subscribers.audience import Audience
from subscribers.models import Subscriber, Subscription
from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def _queries(client, url, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(100) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_subscriber_listing_costs_the_same_queries_for_5_or_60_rows(admin_client, django_assert_max_num_queries):
    news = MailingListFactory(slug="news")
    for n in range(5):
        SubscriptionFactory(list=news, subscriber__email=f"a{n}@example.com")
    url = reverse("subscribers_subscriber:index")
    few = _queries(admin_client, url, django_assert_max_num_queries)
    for n in range(55):
        SubscriptionFactory(list=news, subscriber__email=f"b{n}@example.com")

    assert _queries(admin_client, url, django_assert_max_num_queries) == few
    assert _queries(admin_client, f"{url}?list={news.pk}", django_assert_max_num_queries) <= few + 1


def test_the_lists_page_costs_the_same_queries_for_2_or_12_lists(admin_client, django_assert_max_num_queries):
    for n in range(2):
        SubscriptionFactory(list=MailingListFactory(slug=f"l{n}"))
    url = reverse("subscribers_list:index")
    few = _queries(admin_client, url, django_assert_max_num_queries)
    for n in range(2, 12):
        SubscriptionFactory(list=MailingListFactory(slug=f"l{n}"))

    assert _queries(admin_client, url, django_assert_max_num_queries) == few


def test_the_lists_page_counts_match_the_audience_and_sort(admin_client):
    big, small = MailingListFactory(slug="big"), MailingListFactory(slug="small")
    for n in range(4):
        SubscriptionFactory(list=big, subscriber__email=f"r{n}@example.com")
    bounced = SubscriptionFactory(list=big, subscriber__email="bounced@example.com").subscriber
    Subscriber.objects.filter(pk=bounced.pk).update(state=Subscriber.State.BOUNCED)
    SubscriptionFactory(list=big, subscriber__email="p@example.com", status=Subscription.Status.PENDING)
    SubscriptionFactory(list=small, subscriber=Subscriber.objects.get(email="r0@example.com"))
    SubscriptionFactory(list=small, subscriber__email="u@example.com", status=Subscription.Status.UNSUBSCRIBED)

    response = admin_client.get(reverse("subscribers_list:index") + "?ordering=-receiving_count")
    rows = list(response.context["object_list"])

    assert [row.slug for row in rows] == ["big", "small"]
    figures = {
        row.slug: (row.receiving_count, row.suppressed_count, row.pending_count, row.unsubscribed_count) for row in rows
    }
    assert figures == {"big": (4, 1, 1, 0), "small": (1, 0, 0, 1)}
    assert figures["big"][0] == Audience([big]).count() and figures["small"][0] == Audience([small]).count()


def test_a_small_listing_is_counted_exactly(admin_client):
    SubscriptionFactory.create_batch(3)

    response = admin_client.get(reverse("subscribers_subscriber:index"))

    assert response.context["paginator"].count == 3
    assert "about" not in response.context["paginator"].items_count_label


def test_searching_by_address_orders_by_address(admin_client):
    for address in ("cat@example.com", "ann@example.com", "bob@example.org"):
        SubscriberFactory(email=address)

    response = admin_client.get(reverse("subscribers_subscriber:index") + "?q=EXAMPLE.COM")

    assert [s.email for s in response.context["object_list"]] == ["ann@example.com", "cat@example.com"]


@pytest.fixture
def many_subscribers(postgresql):
    news = MailingListFactory(slug="news")
    for n in range(40):
        SubscriptionFactory(list=news, subscriber__email=f"reader{n}@example.com", subscriber__name=f"Reader {n}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE subscribers_subscriber")
    return news


def test_a_large_listing_shows_postgresqls_estimate(many_subscribers, admin_client, monkeypatch):
    monkeypatch.setattr(counting, "EXACT_BELOW", 10)

    response = admin_client.get(reverse("subscribers_subscriber:index"))

    paginator = response.context["paginator"]
    assert paginator.items_count_label.startswith("about ")
    assert 30 <= paginator.count <= 50  # the planner's figure, not a count
    assert len(response.context["object_list"]) == 40


def test_the_search_is_answered_by_the_trigram_indexes(many_subscribers):
    queryset = search_subscribers(Subscriber.objects.all(), "reader17@")
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # 40 rows: the planner would rather read them all
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")

    for column in ("email", "email_normalised", "name"):
        assert f"subscribers_subscriber_{column}_trgm" in plan
    assert [s.email for s in queryset] == ["reader17@example.com"]
