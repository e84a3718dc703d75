"""Automatic sends in the admin: one rule per list, listed with its state and figures (campaigns
made, last sent, next digest), edited in a form, paused and resumed with one click (a POST,
permission-checked, logged in the site history). Registered by campaigns.wagtail_hooks."""

from django.contrib import messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.formats import time_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from wagtail.admin.ui.tables import Column, NumberColumn
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet

from campaigns import autosend
from campaigns.models import AutoSendRule, Campaign, IssueSend
from subscribers.templatetags.admin_format import DateTimeColumn


def schedule_text(rule: AutoSendRule) -> str:
    """What the rule does, in words: "Each issue, 30 min after publishing" / "Digest: Monday, 08:00"."""
    if rule.mode == AutoSendRule.Mode.ON_PUBLISH:
        return _("Each issue, %(minutes)s min after publishing") % {"minutes": rule.review_delay}
    return _("Digest: %(day)s, %(time)s") % {
        "day": rule.get_digest_weekday_display(),
        "time": time_format(rule.digest_time, "H:i"),
    }


def state_text(rule: AutoSendRule) -> str:
    state = _("Paused") if rule.paused else _("Active")
    if rule.last_error:
        return _("%(state)s (last problem: %(error)s)") % {"state": state, "error": rule.last_error}
    return state


class PauseColumn(Column):
    """A one-click Pause / Resume button: a small form that POSTs to the rule's action view
    (``action_url_name``, with the row's pk and "pause" or "resume"; automations' listing too)."""

    cell_template_name = "campaigns/admin/autosend_pause_cell.html"
    action_url_name = "campaigns_autosend:action"

    def is_paused(self, instance) -> bool:
        return instance.paused

    def render_cell_html(self, instance, parent_context):
        context = self.get_cell_context_data(instance, parent_context)
        paused = self.is_paused(instance)
        context.update(
            action_url=reverse(self.action_url_name, args=[instance.pk, "resume" if paused else "pause"]),
            action_label=_("Resume") if paused else _("Pause"),
        )
        # Rendered with the request, so the form carries its CSRF token.
        return render_to_string(self.cell_template_name, context, request=parent_context.get("request"))


class AutoSendIndexView(generic.IndexView):
    def get_base_queryset(self):
        # The figures as two subqueries for the whole page, not queries per row.
        made = (
            IssueSend.objects.filter(mailing_list=OuterRef("mailing_list"), campaign__isnull=False)
            .order_by()
            .values("mailing_list")
            .annotate(count=Count("campaign", distinct=True))
            .values("count")
        )
        last_sent = (
            Campaign.objects.filter(autosends__mailing_list=OuterRef("mailing_list"), status=Campaign.Status.SENT)
            .order_by("-finished_at")
            .values("finished_at")[:1]
        )
        return (
            super()
            .get_base_queryset()
            .select_related("mailing_list")
            .annotate(campaign_count=Coalesce(Subquery(made), 0), last_sent=Subquery(last_sent))
        )


class SaveRuleMixin:
    """After the form is saved, (re)schedule the rule's digest (campaigns.autosend.rule_saved)."""

    def save_instance(self):
        instance = super().save_instance()
        autosend.rule_saved(instance)
        return instance


class AutoSendCreateView(SaveRuleMixin, generic.CreateView):
    pass


class AutoSendEditView(SaveRuleMixin, generic.EditView):
    pass


class AutoSendActionView(View):
    """POST pause or resume: the workflow checks the permission and logs it."""

    http_method_names = ["post"]
    actions = {"pause": autosend.pause_rule, "resume": autosend.resume_rule}

    def post(self, request, pk, action):
        workflow = self.actions.get(action)
        if workflow is None or not AutoSendRule.objects.filter(pk=pk).exists():
            raise Http404
        changed = workflow(pk, request.user)  # PermissionDenied: 403
        rule = AutoSendRule.objects.select_related("mailing_list").get(pk=pk)
        if changed:
            if rule.paused:
                message = _("Automatic sends to “%(list)s” paused.") % {"list": rule.mailing_list.name}
                waiting = autosend.scheduled_campaigns(rule).count()
                if waiting:
                    message += " " + ngettext(
                        "%(count)s campaign it scheduled will still go: cancel it in Campaigns if it should not.",
                        "%(count)s campaigns it scheduled will still go: cancel them in Campaigns if they should not.",
                        waiting,
                    ) % {"count": waiting}
            else:
                message = _("Automatic sends to “%(list)s” resumed.") % {"list": rule.mailing_list.name}
            messages.success(request, message)
        return redirect("campaigns_autosend:index")


class AutoSendViewSet(ModelViewSet):
    model = AutoSendRule
    name = "campaigns_autosend"
    url_prefix = "automatic-sends"
    icon = "repeat"
    menu_label = gettext_lazy("Automatic sends")
    menu_order = 251
    add_to_admin_menu = True
    copy_view_enabled = False
    inspect_view_enabled = False
    index_view_class = AutoSendIndexView
    add_view_class = AutoSendCreateView
    edit_view_class = AutoSendEditView
    form_fields = ["mailing_list", "mode", "review_delay", "digest_weekday", "digest_time"]
    list_display = [
        "mailing_list",
        Column("schedule", label=gettext_lazy("Sends"), accessor=schedule_text),
        Column("state", label=gettext_lazy("State"), accessor=state_text),
        NumberColumn("campaign_count", label=gettext_lazy("Campaigns")),
        DateTimeColumn("last_sent", label=gettext_lazy("Last sent")),
        DateTimeColumn("next_digest_at", label=gettext_lazy("Next digest")),
        # Not named "pause" (a column looks its name up on the row): the button only.
        PauseColumn("pause_button", label=""),
    ]

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("<int:pk>/<str:action>/", AutoSendActionView.as_view(), name="action"),
        ]
