"""Automations in the Wagtail admin menu, and their entries in the site history."""

from django.utils.translation import gettext_lazy as _
from wagtail import hooks

from automations import services
from automations.admin_views import AutomationViewSet


@hooks.register("register_admin_viewset")
def register_automation_viewset():
    return AutomationViewSet()


@hooks.register("register_log_actions")
def register_automation_log_actions(actions):
    actions.register_action(services.PAUSE, _("Automation: pause"), _("Paused the automation"))
    actions.register_action(services.RESUME, _("Automation: resume"), _("Resumed the automation"))
    actions.register_action(
        services.RESTART, _("Automation: restart"), _("Restarted the automation for everyone in it")
    )
