"""How the admin writes dates, durations and yes/no: one format on every admin page of both apps.

Dates are "2026-11-30 09:36" in the editor's time zone (the same form the audit log records),
so a listing, a campaign page and a subscriber's history can be compared at a glance.
"""

import datetime

from django import template
from django.utils import timezone
from wagtail.admin.ui.tables import Column

register = template.Library()

DATETIME_FORMAT = "%Y-%m-%d %H:%M"
DATE_FORMAT = "%Y-%m-%d"


@register.filter
def admin_datetime(value) -> str:
    """An aware datetime as "2026-11-30 09:36" in the current time zone; a date as "2026-11-30"; "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, datetime.date):
        return value.strftime(DATE_FORMAT)
    return str(value)


@register.filter
def duration(seconds) -> str:
    """Seconds as "45 s", "3 min 5 s" or "2 h 10 min"; a dash for None."""
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def yes_no(value) -> str:
    return "Yes" if value else "No"


class DateTimeColumn(Column):
    """A listing column in the admin's one date format (Wagtail's DateColumn shows "3 hours ago")."""

    def get_value(self, instance):
        return admin_datetime(super().get_value(instance))
