"""Audit log actions for campaigns: who sent a test, scheduled, sent, paused, resumed, cancelled, retried.

Registered with Wagtail's ``register_log_actions`` hook (campaigns/wagtail_hooks.py), so the entries
appear in Wagtail's site history report with the user and a readable message. Test sends are logged
against the page (there is no campaign yet), everything else against the campaign.
"""

from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import LogFormatter
from wagtail.log_actions import log as wagtail_log

TEST_SEND = "campaigns.test_send"
SCHEDULE = "campaigns.schedule"
SEND = "campaigns.send"
PAUSE = "campaigns.pause"
RESUME = "campaigns.resume"
CANCEL = "campaigns.cancel"
RETRY_FAILED = "campaigns.retry_failed"
RESEND = "campaigns.resend"
AB_WINNER = "campaigns.ab_winner"
AUTOSEND = "campaigns.autosend"
AUTOSEND_PAUSE = "campaigns.autosend_pause"
AUTOSEND_RESUME = "campaigns.autosend_resume"


class _DataFormatter(LogFormatter):
    """Builds the message from the entry's data, falling back to the plain message when it is missing."""

    template = ""  # lazily translated, with %(name)s fields from the entry's data

    def format_message(self, log_entry):
        try:
            return str(self.template) % log_entry.data
        except (KeyError, TypeError):
            return self.message


def register_actions(actions):
    """Register every campaign action with Wagtail's LogActionRegistry (the register_log_actions hook)."""

    @actions.register_action(TEST_SEND)
    class TestSendFormatter(_DataFormatter):
        label = _("Newsletter: send test")
        message = _("Sent a test of the newsletter")
        template = _("Sent a test of the newsletter to %(addresses)s")

    @actions.register_action(SCHEDULE)
    class ScheduleFormatter(_DataFormatter):
        label = _("Newsletter: schedule")
        message = _("Scheduled the newsletter")
        template = _("Scheduled for %(scheduled_at)s to %(lists)s (%(recipients)s recipients)")

    @actions.register_action(SEND)
    class SendFormatter(_DataFormatter):
        label = _("Newsletter: send")
        message = _("Started sending the newsletter")
        template = _("Started sending to %(lists)s (%(recipients)s recipients)")

    actions.register_action(PAUSE, _("Newsletter: pause"), _("Paused sending"))
    actions.register_action(RESUME, _("Newsletter: resume"), _("Resumed sending"))
    actions.register_action(CANCEL, _("Newsletter: cancel"), _("Cancelled the campaign"))

    @actions.register_action(RETRY_FAILED)
    class RetryFormatter(_DataFormatter):
        label = _("Newsletter: retry failed")
        message = _("Queued the failed deliveries again")
        template = _("Queued %(count)s failed deliveries again")

    @actions.register_action(RESEND)
    class ResendFormatter(_DataFormatter):
        label = _("Newsletter: send again to non-openers")
        message = _("Sent again to those who did not open")
        template = _(
            'Sent again to those who did not open campaign %(original)s, as "%(subject)s" (%(recipients)s recipients)'
        )

    @actions.register_action(AB_WINNER)
    class ABWinnerFormatter(_DataFormatter):
        label = _("Newsletter: A/B test winner")
        message = _("Chose the A/B test's winner")
        template = _('Variant %(variant)s ("%(subject)s") won the A/B test; the rest of the audience is sent it')

    @actions.register_action(AUTOSEND)
    class AutoSendFormatter(_DataFormatter):
        label = _("Newsletter: scheduled automatically")
        message = _("Scheduled automatically on publish")
        template = _("Scheduled automatically for %(scheduled_at)s to %(list)s (the list sends each issue on publish)")

    actions.register_action(AUTOSEND_PAUSE, _("Automatic send: pause"), _("Paused the list's automatic sends"))
    actions.register_action(AUTOSEND_RESUME, _("Automatic send: resume"), _("Resumed the list's automatic sends"))


def log_action(instance, action: str, user, **data):
    """Write one audit entry for ``instance`` (a Campaign or a page) by ``user``; returns the log entry."""
    return wagtail_log(instance, action, user=user, data=data)
