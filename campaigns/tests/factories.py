import datetime

from django.contrib.auth.models import Group, Permission
from django_tasks import TaskContext, default_task_backend
from wagtail.models import GroupPagePermission, Page

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


def make_user(django_user_model, username, *, send=False):
    """A non-superuser editor who may edit every page; with ``send``, also campaigns.send_campaign."""
    group = Group.objects.create(name=f"{username} group")
    group.permissions.add(Permission.objects.get(content_type__app_label="wagtailadmin", codename="access_admin"))
    for codename in ("add_page", "change_page", "publish_page"):
        GroupPagePermission.objects.create(
            group=group, page=Page.get_first_root_node(), permission=Permission.objects.get(codename=codename)
        )
    if send:
        group.permissions.add(Permission.objects.get(content_type__app_label="campaigns", codename="send_campaign"))
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw")
    user.groups.add(group)
    return user


def run_task_result(result):
    """Run a task result a test backend holds, in this process, as a worker would (with its context)."""
    if result.task.takes_context:
        return result.task.call(TaskContext(task_result=result), *result.args, **result.kwargs)
    return result.task.call(*result.args, **result.kwargs)


def run_now(task, *args):
    """Enqueue ``task`` on the dummy backend and run it at once (it is not left among the results)."""
    result = task.enqueue(*args)
    default_task_backend.results.remove(result)
    return run_task_result(result)


def esp_merged(params: dict, address: str, part: str = "text_body") -> str:
    """What the ESP would make of a batch's ``part`` ("text_body", "html_body", "subject") for
    ``address``: each ``{{mN}}`` merge field (the test ESP's syntax) replaced by its merge data."""
    text = params[part]
    for field, value in params["merge_data"][address].items():
        text = text.replace("{{" + field + "}}", value)
    return text
