"""How the admin writes dates, durations and yes/no: one format on every admin page of both apps.

Dates are "2026-11-30 09:36" in the editor's time zone (the same form the audit log records),
so a listing, a campaign page and a subscriber's history can be compared at a glance.
"""

import datetime

from django import template
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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
        return _("%(seconds)s s") % {"seconds": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return _("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": seconds}
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}


@register.filter
def yes_no(value) -> str:
    return _("Yes") if value else _("No")


class DateTimeColumn(Column):
    """A listing column in the admin's one date format (Wagtail's DateColumn shows "3 hours ago")."""

    def get_value(self, instance):
        return admin_datetime(super().get_value(instance))


# What each SubscriberEvent.kind means, in words (the services write the kinds).
EVENT_LABELS = {
    "created": gettext_lazy("Added"),
    "subscribe_requested": gettext_lazy("Asked to subscribe"),
    "subscribe_refused": gettext_lazy("Subscription refused"),
    "confirmation_sent": gettext_lazy("Confirmation email sent"),
    "subscribed": gettext_lazy("Subscribed"),
    "confirmed": gettext_lazy("Subscription confirmed"),
    "unsubscribed": gettext_lazy("Unsubscribed"),
    "profile_updated": gettext_lazy("Details changed"),
    "suppressed": gettext_lazy("Suppressed (no more email)"),
    "erased": gettext_lazy("Personal data erased"),
}
# Detail keys, in words; keys not listed are shown capitalised with underscores as spaces.
DETAIL_LABELS = {
    "via": gettext_lazy("How"),
    "lists": gettext_lazy("Lists"),
    "ip": gettext_lazy("IP address"),
    "user_agent": gettext_lazy("Browser"),
    "fields": gettext_lazy("Changed"),
    "import_job": gettext_lazy("Import"),
    "line": gettext_lazy("Line"),
    "file": gettext_lazy("File"),
    "note": gettext_lazy("Note"),
    "reason": gettext_lazy("Reason"),
    "state": gettext_lazy("State"),
    "source": gettext_lazy("Source"),
    "method": gettext_lazy("How"),
}
VIA_LABELS = {
    "confirmation": gettext_lazy("confirmed from the email"),
    "form": gettext_lazy("subscribe form"),
    "preferences": gettext_lazy("preference centre"),
    "import": gettext_lazy("import"),
    "admin": gettext_lazy("admin"),
}


# The kinds of an import's line notes (subscribers.importing.ImportResult.note), in words.
IMPORT_NOTE_KINDS = {
    "error": gettext_lazy("Error"),
    "duplicate": gettext_lazy("Duplicate"),
    "suppressed": gettext_lazy("Suppressed"),
    "unsubscribed": gettext_lazy("Unsubscribed"),
    "fatal": gettext_lazy("Import stopped"),
}


@register.filter
def import_note_kind(kind: str) -> str:
    return str(IMPORT_NOTE_KINDS.get(kind, kind))


def event_label(kind: str) -> str:
    return str(EVENT_LABELS.get(kind) or kind.replace("_", " ").capitalize())


def in_words(value, list_names: dict[int, str] | None = None, key: str = "") -> str:
    """A detail value as a person reads it: Yes/No, list names for list ids, commas for lists."""
    if isinstance(value, bool):
        return yes_no(value)
    if value is None or value == "":
        return "–"
    if key == "lists" and list_names is not None:
        ids = value if isinstance(value, list) else [value]
        return ", ".join(
            list_names.get(item, _("list #%(id)s") % {"id": item}) if isinstance(item, int) else str(item)
            for item in ids
        )
    if key in ("via", "method", "source") and isinstance(value, str):
        return str(VIA_LABELS.get(value, value.replace("_", " ")))
    if isinstance(value, list):
        return ", ".join(in_words(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {in_words(v)}" for k, v in value.items())
    return str(value)


def describe_event(event, list_names: dict[int, str]) -> dict:
    """One history row in words: {"at", "what", "list", "by", "details": [(label, value), ...]}."""
    details = [
        (str(DETAIL_LABELS.get(key, key.replace("_", " ").capitalize())), in_words(value, list_names, key))
        for key, value in (event.detail or {}).items()
    ]
    return {
        "at": admin_datetime(event.at),
        "what": event_label(event.kind),
        "list": event.list.name if event.list_id and event.list else "",
        "by": event.actor.get_username() if event.actor_id and event.actor else "",
        "details": details,
    }
