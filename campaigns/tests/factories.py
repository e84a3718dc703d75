import datetime

from campaigns.models import NewsletterIssuePage


def make_issue(parent, *, title="Issue 1: Spring", slug="issue-1", body=None, publish=True, **fields):
    """A published issue under ``parent`` with a small body of several block types."""
    if body is None:
        body = [
            ("heading", {"text": "Hello, readers", "level": "h2"}),
            ("paragraph", '<p>Welcome to <b>our</b> <a href="https://example.org/story">first story</a>.</p>'),
            ("quote", {"text": "Print is not dead.", "attribution": "An editor"}),
            ("divider", None),
            ("button", {"label": "Read more", "page": None, "link_url": "https://example.org/more"}),
        ]
    fields.setdefault("subject", "Spring issue: news from the press")
    fields.setdefault("preheader", "Three stories and a quote")
    fields.setdefault("issue_date", datetime.date(2026, 3, 21))
    page = NewsletterIssuePage(title=title, slug=slug, body=body, **fields)
    parent.add_child(instance=page)
    if publish:
        page.save_revision().publish()
    else:
        page.unpublish() if page.live else None
    page.refresh_from_db()
    return page


def started_campaign(issue_page, readers: int, capture_on_commit):
    """A campaign started to ``readers`` subscribers (reader0..N-1@example.com) whose batch tasks
    have not run: ``capture_on_commit`` is pytest-django's django_capture_on_commit_callbacks."""
    from campaigns import services
    from subscribers.tests.factories import MailingListFactory, SubscriberFactory, SubscriptionFactory

    weekly = MailingListFactory(slug="weekly")
    for index in range(readers):
        SubscriptionFactory(list=weekly, subscriber=SubscriberFactory(email=f"reader{index}@example.com"))
    campaign = services.create_campaign(issue_page, [weekly])
    with capture_on_commit(execute=False):
        services.start_campaign(campaign.pk)
    return campaign
