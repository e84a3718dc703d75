"""Automation workflows an editor starts: pause, resume, restart. Each checks the permission to
change automations, runs in one transaction and writes an entry in Wagtail's site history."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils.translation import gettext as _
from wagtail.log_actions import log

from automations import scheduler, tasks
from automations.models import Automation
from campaigns.models import Campaign
from campaigns.services import resume_campaign

CHANGE_PERMISSION = "automations.change_automation"
PAUSE = "automations.pause"
RESUME = "automations.resume"
RESTART = "automations.restart"


def _check_permission(user) -> None:
    if user is not None and not user.has_perm(CHANGE_PERMISSION):
        raise PermissionDenied(_("You do not have permission to change automations."))


def _runs(automation_id: int, status: str):
    return Campaign.objects.filter(automation_run__step__automation_id=automation_id, status=status)


def pause_automation(automation_id: int, user=None) -> bool:
    """Stop at once: nothing more is queued, and the emails already queued wait (their run
    campaigns pause within one batch). Returns False if it was paused already."""
    _check_permission(user)
    with transaction.atomic():
        automation = Automation.objects.select_for_update().get(pk=automation_id)
        if not automation.pause():
            return False
        for campaign in _runs(automation_id, Campaign.Status.SENDING):
            campaign.pause()
        log(automation, PAUSE, user=user)
    return True


def resume_automation(automation_id: int, user=None) -> bool:
    """Go on: the queued emails are sent, and whoever became due meanwhile gets their email now
    (outside a send window, at its next opening). Returns False if it was not paused."""
    _check_permission(user)
    with transaction.atomic():
        automation = Automation.objects.select_for_update().get(pk=automation_id)
        if not automation.resume():
            return False
        for campaign_id in _runs(automation_id, Campaign.Status.PAUSED).values_list("pk", flat=True):
            resume_campaign(campaign_id)
        log(automation, RESUME, user=user)
        tasks.kick()
    return True


def restart_automation(automation_id: int, user=None) -> int:
    """Everyone enrolled (also those who stopped by leaving, if they are on the list again) goes
    through every email again from now. Returns how many were restarted."""
    _check_permission(user)
    with transaction.atomic():
        automation = Automation.objects.select_for_update().get(pk=automation_id)
        count = scheduler.restart(automation)
        log(automation, RESTART, user=user, data={"count": count})
        tasks.kick()
    return count
