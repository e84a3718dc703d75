"""Automations in the Wagtail admin: the listing (state and figures, one-click pause/resume),
the add/edit form with its emails inline, the per-step report, and restart. Registered by
automations.wagtail_hooks; the workflows (automations.services) check the permission and log."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import ObjectList
from wagtail.admin.ui.tables import Column, NumberColumn
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets.button import HeaderButton

from automations import reporting, services, tasks
from automations.models import Automation
from campaigns.autosend_admin import PauseColumn

# --- The form ----------------------------------------------------------------------------------


class AutomationForm(WagtailAdminModelForm):
    """A welcome email is one email: the form says so instead of saving a second step."""

    def clean(self):
        cleaned = super().clean()
        steps = self.formsets.get("steps")
        if cleaned.get("kind") == Automation.Kind.WELCOME and steps is not None and steps.is_valid():
            kept = [form for form in steps.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
            if len(kept) != 1:
                raise ValidationError(_("A welcome email has exactly one email."))
        return cleaned


class KickMixin:
    """After a save, tick soon: a new or changed automation may have someone due now."""

    def save_instance(self):
        instance = super().save_instance()
        tasks.kick()
        return instance


class AutomationCreateView(KickMixin, generic.CreateView):
    pass


class AutomationEditView(KickMixin, generic.EditView):
    def get_header_buttons(self):
        return [
            *super().get_header_buttons(),
            HeaderButton(_("Report"), url=reverse("automations:report", args=[self.object.pk]), icon_name="doc-full"),
        ]


# --- The listing -------------------------------------------------------------------------------


class AutomationPauseColumn(PauseColumn):
    action_url_name = "automations:action"

    def is_paused(self, instance) -> bool:
        return instance.status == Automation.Status.PAUSED


class AutomationIndexView(generic.IndexView):
    def get_base_queryset(self):
        return reporting.with_figures(super().get_base_queryset().select_related("list", "segment"))


def audience_text(automation: Automation) -> str:
    if automation.segment_id:
        return _("%(list)s, segment %(segment)s") % {"list": automation.list, "segment": automation.segment}
    return str(automation.list)


# --- Actions -----------------------------------------------------------------------------------


class AutomationActionView(View):
    """POST pause, resume or restart: the workflow checks the permission (403) and logs it."""

    http_method_names = ["post"]
    actions = {
        "pause": (services.pause_automation, gettext_lazy("“%(name)s” paused.")),
        "resume": (services.resume_automation, gettext_lazy("“%(name)s” resumed.")),
        "restart": (services.restart_automation, gettext_lazy("“%(name)s” restarted for everyone in it.")),
    }

    def post(self, request, pk, action):
        if action not in self.actions:
            raise Http404
        automation = get_object_or_404(Automation, pk=pk)
        workflow, message = self.actions[action]
        if workflow(automation.pk, request.user):
            messages.success(request, message % {"name": automation.name})
        if action == "restart":
            return redirect("automations:report", automation.pk)
        return redirect("automations:index")


class AutomationReportView(generic.WagtailAdminTemplateMixin, TemplateView):
    """Per step: entered, sent, opened, clicked, unsubscribed, waiting."""

    template_name = "automations/admin/report.html"
    header_icon = "doc-full"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm("automations.view_automation") and not request.user.has_perm(
            services.CHANGE_PERMISSION
        ):
            raise Http404
        self.automation = get_object_or_404(Automation.objects.select_related("list", "segment"), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self):
        return _("Report: %(name)s") % {"name": self.automation.name}

    def get_breadcrumbs_items(self):
        return [
            {"url": reverse("wagtailadmin_home"), "label": _("Home")},
            {"url": reverse("automations:index"), "label": _("Automations")},
            {"url": "", "label": self.automation.name},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            automation=self.automation,
            audience=audience_text(self.automation),
            steps=reporting.step_report(self.automation),
            edit_url=reverse("automations:edit", args=[self.automation.pk]),
            restart_url=reverse("automations:action", args=[self.automation.pk, "restart"]),
            can_change=self.request.user.has_perm(services.CHANGE_PERMISSION),
        )
        return context


class AutomationViewSet(ModelViewSet):
    model = Automation
    name = "automations"
    url_prefix = "automations"
    icon = "time"
    menu_label = gettext_lazy("Automations")
    menu_order = 252
    add_to_admin_menu = True
    copy_view_enabled = False
    inspect_view_enabled = False
    edit_handler = ObjectList(Automation.panels, base_form_class=AutomationForm)
    index_view_class = AutomationIndexView
    add_view_class = AutomationCreateView
    edit_view_class = AutomationEditView
    list_display = [
        "name",
        "kind",
        Column("audience", label=gettext_lazy("Audience"), accessor=audience_text),
        Column("status", label=gettext_lazy("State"), accessor="get_status_display"),
        NumberColumn("enrolled", label=gettext_lazy("Entered")),
        NumberColumn("in_progress", label=gettext_lazy("In progress")),
        NumberColumn("sent", label=gettext_lazy("Emails sent")),
        NumberColumn("opened", label=gettext_lazy("Opened")),
        # Not named "pause": a column's value is its name looked up on the row, and a callable is
        # called (Automation.pause would pause every automation the listing shows).
        AutomationPauseColumn("pause_button", label=""),
    ]
    list_filter = ["kind", "status", "list"]

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("<int:pk>/report/", AutomationReportView.as_view(), name="report"),
            path("<int:pk>/<str:action>/", AutomationActionView.as_view(), name="action"),
        ]
