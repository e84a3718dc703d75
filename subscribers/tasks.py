"""Background work for the subscriber flows: thin wrappers that re-fetch by id and send an email.

Each is safe to run twice: the service re-reads what is still true (a confirmation only for
subscriptions still pending, nothing for a suppressed or erased subscriber) before sending.
"""

import datetime

from django_tasks import task

from subscribers import emails


@task()
def send_confirmation(subscriber_id: int, list_ids: list[int]) -> bool:
    return emails.send_confirmation_email(subscriber_id, list_ids)


@task()
def send_already_subscribed(subscriber_id: int, list_ids: list[int]) -> bool:
    return emails.send_already_subscribed_email(subscriber_id, list_ids)


@task()
def notify_staff(subscriber_id: int, list_ids: list[int]) -> bool:
    return emails.send_staff_notification(subscriber_id, list_ids)


@task()
def send_staff_digest(day: str) -> int:
    """``day`` is an ISO date (UTC); see ``emails.send_staff_digest``."""
    return emails.send_staff_digest(datetime.date.fromisoformat(day))
