"""Send a campaign again to those who did not open it: a child campaign with its own subject.

The child is an ordinary campaign of the same issue (``Campaign.resend_of``) to the same lists,
sender and mailer, with a new subject, started after a chosen delay (the existing scheduled
start). Its audience (``Campaign.audience_only``, through ``subscribers.audience.Audience``) is
the original's deliveries that were sent, and since then not bounced, complained about or
unsubscribed from, and that no person opened (machine opens do not count: campaigns.bots), of
subscribers who can still receive the lists. It is worked out when the child STARTS, so a
reader who opens the original during the delay is left out, and the snapshot stays one
INSERT ... SELECT.

Decisions where the issue is silent:

- Only a campaign that has finished sending (``sent``) and whose opens were tracked can be sent
  again: without open tracking (plain SMTP with TRACK_OPENS off and no ESP) nobody is known to
  have opened it, and "everyone" is not what the editor asked for. Refused with a message.
- A resend is not resent (readers would get the issue three times); the resend's own segment
  is not copied (the original's deliveries already applied it).
- Exactly once: one live resend per campaign (a partial unique constraint); a second request,
  a double click, returns the first. A cancelled or failed resend leaves room for another,
  which skips whoever the first one reached.
"""

import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import audit, reporting, services
from campaigns.models import Campaign
from campaigns.services import CampaignError
from subscribers.audience import Audience

# The longest delay the form offers (a week): later, the issue is old news.
MAX_DELAY = datetime.timedelta(days=7)


def live_resend(campaign: Campaign) -> Campaign | None:
    """The campaign's resend that is not cancelled or failed, if any."""
    return campaign.resends.exclude(status__in=[Campaign.Status.CANCELLED, Campaign.Status.FAILED]).first()


def refusal(campaign: Campaign) -> str:
    """Why ``campaign`` cannot be sent again to its non-openers ("" when it can)."""
    if campaign.resend_of_id is not None:
        return _("This campaign is itself a resend: it is not sent a third time.")
    if campaign.status != Campaign.Status.SENT:
        return _("Only a campaign that has finished sending can be sent again to those who did not open it.")
    if not reporting.tracking(campaign).opens:
        return _(
            "Opens were not tracked for this campaign, so nobody is known to have opened it: "
            "it cannot be sent to those who did not."
        )
    return ""


def non_openers(campaign: Campaign) -> int:
    """How many readers a resend of ``campaign`` would go to now (as the form shows it): the
    resend's own audience, readers who left the lists or were suppressed since left out."""
    return Audience(campaign.lists.all(), only=Campaign.non_openers(campaign.pk)).count()


def create_resend(
    campaign_id: int, *, subject: str, delay: datetime.timedelta = datetime.timedelta(0), user=None
) -> tuple[Campaign, bool]:
    """The resend of campaign ``campaign_id`` to its non-openers with ``subject``, started after
    ``delay``; returns (the resend, whether this call created it).

    Idempotent: while a live resend exists it is returned unchanged (``created`` False). Raises
    CampaignError when the campaign cannot be sent again (``refusal``) or the resend cannot start
    (nobody left, the issue unpublished...), PermissionDenied without the send permission. The
    resend and its scheduled start (or its start now) commit together, with the audit entry.
    """
    if delay < datetime.timedelta(0) or delay > MAX_DELAY:
        raise CampaignError(_("Choose a delay between now and 7 days."))
    with transaction.atomic():
        original = Campaign.objects.select_for_update().select_related("page").get(pk=campaign_id)
        existing = live_resend(original)
        if existing is not None:
            return existing, False
        reason = refusal(original)
        if reason:
            raise CampaignError(reason)
        try:
            with transaction.atomic():
                resend = services.create_campaign(
                    original.page,
                    original.lists.all(),
                    user=user,
                    subject=subject,
                    from_email=original.from_email,
                    reply_to=original.reply_to,
                    mailer=original.mailer,
                )
                resend.resend_of = original
                resend.save(update_fields=["resend_of"])
        except IntegrityError:
            # Another request created it between our look and our insert (SQLite has no row lock).
            return live_resend(original), False
        at = timezone.now() + delay if delay else None
        resend = services.start_campaign(resend.pk, user=user, at=at)
        recipients = resend.recipients or Audience.of(resend).count()
        audit.log_action(resend, audit.RESEND, user, original=original.pk, subject=subject, recipients=recipients)
    return resend, True
