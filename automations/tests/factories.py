"""Automation emails, automations and steps for tests."""

from wagtail.models import Page

from automations.models import Automation, AutomationEmailIndexPage, AutomationEmailPage, Step


def email_folder() -> AutomationEmailIndexPage:
    folder = AutomationEmailIndexPage.objects.first()
    if folder is None:
        folder = Page.get_first_root_node().add_child(
            instance=AutomationEmailIndexPage(title="Automation emails", slug="automation-emails")
        )
    return folder


def make_email(title="Welcome", *, subject="Welcome aboard", slug=None, text="Glad you are here.", publish=True):
    page = AutomationEmailPage(
        title=title,
        slug=slug or title.lower().replace(" ", "-"),
        subject=subject,
        body=[("paragraph", f"<p>{text}</p>")],
    )
    email_folder().add_child(instance=page)
    if publish:
        page.save_revision().publish()
    page.refresh_from_db()
    return page


def make_automation(mailing_list, *emails, kind=Automation.Kind.SEQUENCE, delays=None, **fields):
    """An automation of ``mailing_list`` with one step per email; ``delays``: (days, hours, minutes) each."""
    automation = Automation.objects.create(
        name=fields.pop("name", f"{kind} of {mailing_list.slug}"), kind=kind, list=mailing_list, **fields
    )
    for index, email in enumerate(emails):
        days, hours, minutes = (delays or [(0, 0, 0)] * len(emails))[index]
        Step.objects.create(
            automation=automation,
            page=email,
            sort_order=index,
            delay_days=days,
            delay_hours=hours,
            delay_minutes=minutes,
        )
    return automation


def make_welcome(mailing_list, email=None, **fields):
    return make_automation(mailing_list, email or make_email(), kind=Automation.Kind.WELCOME, **fields)
