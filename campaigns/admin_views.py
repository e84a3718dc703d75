"""Wagtail admin views for sending an issue and watching the campaign: parse, call campaigns.services, render.

Every view requires the ``campaigns.send_campaign`` permission (editing pages is a separate one)
and answers 403 without it. Every action is written to Wagtail's audit log with the user.
"""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponseBadRequest, HttpResponseNotFound, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import FormView, TemplateView, View
from wagtail.admin import messages
from wagtail.admin.ui.tables import Column, NumberColumn, StatusTagColumn, TitleColumn
from wagtail.admin.views import generic
from wagtail.admin.views.pages.edit import EditView
from wagtail.admin.widgets.button import HeaderButton

from campaigns import abtests, audit, charts, reporting, resends, services
from campaigns.admin_forms import (
    AudienceForm,
    CampaignFilterSet,
    DeliveryFilterForm,
    ResendForm,
    SendCampaignForm,
    TestSendForm,
)
from campaigns.bounces import processing as bounce_processing
from campaigns.bounces.mailboxes import check_mailbox
from campaigns.bounces.mailboxes import describe as describe_mailbox
from campaigns.models import Campaign, Delivery, NewsletterIssuePage
from campaigns.sending import mailers
from mail import mergetags
from mail.models import newsletter_settings
from mail.rendering import join_names
from mail.senders import sender_for
from subscribers import segments
from subscribers.admin_permissions import ModelPolicyChecker
from subscribers.audience import Audience
from subscribers.models import MAX_ID, Subscriber
from subscribers.templatetags.admin_format import DATETIME_FORMAT, DateTimeColumn

# Campaigns that went out (or are going out) to a list: the ones that make a second send a re-send.
ALREADY_SENT_STATUSES = [
    Campaign.Status.SCHEDULED,
    Campaign.Status.SENDING,
    Campaign.Status.PAUSED,
    Campaign.Status.SENT,
]


# Campaign's ModelPermissionPolicy (registered in CampaignsConfig.ready()): "send" is
# campaigns.send_campaign. Every view here requires it; editing pages is a separate permission.
permission_checker = ModelPolicyChecker(
    Campaign, denied_message=gettext_lazy("Sending newsletters needs the “Can send campaigns” permission.")
)
requires_send = method_decorator(permission_checker.require("send"), name="dispatch")


def can_send(user) -> bool:
    return permission_checker.user_has(user, "send")


def sendable_page(page) -> bool:
    """A NewsletterIssuePage that is live: the published revision is what a campaign sends."""
    # Exactly an issue: a subtype (an automation's email) is sent by its automation, not by hand.
    return type(page) is NewsletterIssuePage and page.live and page.live_revision_id is not None


def send_url(page) -> str:
    return reverse("campaigns_admin:send", args=[page.pk])


class IssueEditView(EditView):
    """Wagtail's page editor for issues, with "Send as newsletter" as a button in the header.

    Wagtail's ``register_page_header_buttons`` hook only fills the header's "..." menu; a visible
    header button is the edit view's ``header_buttons`` (used through the issue's PageViewSet,
    campaigns.wagtail_hooks). Shown for a published issue to users who may send.
    """

    @cached_property
    def header_buttons(self):
        buttons = list(super().header_buttons)
        if can_send(self.request.user) and sendable_page(self.page):
            buttons.append(HeaderButton(_("Send as newsletter"), send_url(self.page), icon_name="mail"))
        return buttons


def _crumbs(*items):
    return [
        {"url": reverse("wagtailadmin_home"), "label": _("Home")},
        {"url": reverse("campaigns_admin:index"), "label": _("Campaigns")},
        *items,
    ]


def _segment_data(segment) -> dict:
    """The segment's rules as they were when it was sent, in words and as JSON, for the audit log."""
    return {"segment_rules": segments.describe(segment.rules), "segment_json": segment.rules} if segment else {}


def _list_names(lists, segment=None) -> str:
    """ "News, Sport", or with a segment "News, Sport (segment: Leeds readers)": what the audit log says."""
    names = ", ".join(str(item) for item in lists)
    return _("%(lists)s (segment: %(segment)s)") % {"lists": names, "segment": segment} if segment else names


def _local(value) -> str:
    """``value`` in the current (editor's) time zone, unambiguous: "2027-01-15 10:00 (Europe/Paris)"."""
    return f"{timezone.localtime(value).strftime(DATETIME_FORMAT)} ({timezone.get_current_timezone_name()})"


# --- Send from the page --------------------------------------------------------------------------


@requires_send
class SendCampaignView(generic.WagtailAdminTemplateMixin, FormView):
    """The "Send as newsletter" form of one published issue: test send, review, confirm.

    POST ``action``: ``test`` sends a test and stays on the form; ``review`` validates and shows
    the confirmation step (exact recipients, warnings); ``confirm`` creates and starts (or schedules)
    the campaign; ``edit`` goes back from the confirmation to the form.
    """

    template_name = "campaigns/admin/send.html"
    confirm_template_name = "campaigns/admin/send_confirm.html"
    form_class = SendCampaignForm
    header_icon = "mail"

    def dispatch(self, request, *args, **kwargs):
        self.page = get_object_or_404(NewsletterIssuePage.objects.issues(), pk=kwargs["page_id"])
        if not sendable_page(self.page):
            messages.error(
                request,
                _("'%(title)s' is not published: only a published issue can be sent.") % {"title": self.page.title},
            )
            return redirect("wagtailadmin_pages:edit", self.page.pk)
        return super().dispatch(request, *args, **kwargs)

    def get_page_title(self):
        return _("Send as newsletter")

    def get_page_subtitle(self):
        return self.page.get_admin_display_title()

    def get_breadcrumbs_items(self):
        return _crumbs({"url": "", "label": _("Send '%(title)s'") % {"title": self.page.title}})

    @property
    def newsletter_settings(self):
        return newsletter_settings(self.page.get_site())

    def get_initial(self):
        lists = list(self.newsletter_settings.default_lists.all())
        # One preselected list with its own sender: that is the sender its readers know.
        sender = sender_for(lists[0] if len(lists) == 1 else None, self.page.get_site())
        return {
            "lists": lists,
            "subject": self.page.subject,
            "from_email": sender.from_email,
            "reply_to": sender.reply_to,
        }

    def get_context_data(self, **kwargs):
        kwargs.setdefault("test_form", TestSendForm(initial={"test_addresses": self.request.user.email}))
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        subject = form.data.get("subject", "") if form is not None and form.is_bound else ""
        context.update(
            # Merge tags that cannot be sent, listed before the editor gets to the send button.
            merge_tag_errors=services.merge_tag_errors(self.page, subject=subject),
            merge_tags=mergetags.known_tags(),
            preview_as_subscriber_url=reverse("campaigns_admin:preview_as", args=[self.page.pk]),
            page=self.page,
            can_send_settings=self.newsletter_settings.can_send,
            previous_sends=self.previous_sends(),
            action_url=self.request.path,
        )
        return context

    def previous_sends(self, lists=None):
        """[(list, campaign)] for every earlier campaign of this page to one of ``lists`` (all lists if None)."""
        campaigns = (
            Campaign.objects.filter(page=self.page, status__in=ALREADY_SENT_STATUSES)
            .prefetch_related("lists")
            .order_by("-created_at")
        )
        if lists is not None:
            campaigns = campaigns.filter(lists__in=lists).distinct()
        wanted = None if lists is None else {item.pk for item in lists}
        return [
            (mailing_list, campaign)
            for campaign in campaigns
            for mailing_list in campaign.lists.all()
            if wanted is None or mailing_list.pk in wanted
        ]

    def post(self, request, *args, **kwargs):
        action = request.POST.get("action", "review")
        if action == "test":
            return self.send_test()
        form = self.get_form()
        if action == "edit" or not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        if action == "confirm":
            return self.start(form)
        return self.confirm_step(form)

    def send_test(self):
        test_form = TestSendForm(self.request.POST)
        # Keep what the editor typed in the main form without showing its errors yet.
        form = self.form_class(initial=self._initial_from_post())
        if test_form.is_valid():
            addresses = test_form.cleaned_data["test_addresses"]
            try:
                count = services.send_test(self.page, addresses, subscriber=self._test_subscriber(test_form))
            except services.CampaignError as error:
                messages.error(self.request, str(error))
            else:
                audit.log_action(self.page, audit.TEST_SEND, self.request.user, addresses=", ".join(addresses))
                messages.success(
                    self.request,
                    _("Test sent to %(addresses)s (%(count)s sent).")
                    % {"addresses": ", ".join(addresses), "count": count},
                )
        return self.render_to_response(self.get_context_data(form=form, test_form=test_form))

    def _test_subscriber(self, test_form):
        """The subscriber whose values fill a test's merge tags (None: the sample reader); a
        CampaignError when one is asked for and cannot be shown to this user or does not exist."""
        wanted = test_form.cleaned_data.get("as_subscriber", "")
        if not wanted:
            return None
        if not self.request.user.has_perm("subscribers.view_subscriber"):
            raise services.CampaignError(_("Sending a test as a subscriber needs the permission to view subscribers."))
        subscriber = _find_subscriber(wanted)
        if subscriber is None:
            raise services.CampaignError(_("No subscriber has this address or id."))
        return subscriber

    def _initial_from_post(self):
        data = self.request.POST
        initial = {name: data.get(name) for name in self.form_class.base_fields if name in data}
        initial["lists"] = data.getlist("lists")
        return initial

    def confirm_step(self, form):
        lists, segment = list(form.cleaned_data["lists"]), form.cleaned_data["segment"]
        recipients = form.audience().count()
        mailer = mailers.choose_mailer(
            form.cleaned_data.get("mailer") or "", [item.mailer for item in sorted(lists, key=lambda item: item.pk)]
        )
        context = self.get_context_data(form=form)
        if context["merge_tag_errors"]:
            # Stay on the form, where the tags that cannot be sent are listed.
            return self.render_to_response(context)
        context.update(
            recipients=recipients,
            mailer=mailer,
            # Only for a send now: a scheduled one shares the allowance with whatever runs then.
            expected_finish=None if form.cleaned_data["send_at"] else mailers.finish_if_started(recipients, mailer),
            chosen_lists=lists,
            segment=segment,
            segment_rules=segments.describe(segment.rules) if segment else "",
            already_sent=self.previous_sends(lists),
            has_unpublished_changes=self.page.has_unpublished_changes,
            send_at=form.cleaned_data["send_at"],
        )
        return self.response_class(
            request=self.request, template=[self.confirm_template_name], context=context, using=self.template_engine
        )

    def start(self, form):
        data = form.cleaned_data
        lists, send_at, segment = list(data["lists"]), data["send_at"], data["segment"]
        try:
            # One transaction: a campaign that cannot start is not left behind as a draft.
            with transaction.atomic():
                campaign = services.create_campaign(
                    self.page,
                    lists,
                    user=self.request.user,
                    subject=data["subject"],
                    from_email=data["from_email"],
                    reply_to=data["reply_to"],
                    mailer=data.get("mailer") or "",
                    segment=segment,
                )
                if data.get("ab_test"):
                    abtests.configure(
                        campaign,
                        data["ab_subjects"],
                        percent=data["ab_percent"],
                        window=datetime.timedelta(hours=data["ab_window_hours"]),
                        metric=data["ab_metric"],
                    )
                campaign = services.start_campaign(campaign.pk, user=self.request.user, at=send_at)
                abtests.schedule_decision(campaign)
                recipients = campaign.recipients or Audience.of(campaign).count()
                if campaign.status == Campaign.Status.SCHEDULED:
                    audit.log_action(
                        campaign,
                        audit.SCHEDULE,
                        self.request.user,
                        scheduled_at=_local(campaign.scheduled_at),
                        lists=_list_names(lists, segment),
                        recipients=recipients,
                        **_segment_data(segment),
                    )
                else:
                    audit.log_action(
                        campaign,
                        audit.SEND,
                        self.request.user,
                        lists=_list_names(lists, segment),
                        recipients=recipients,
                        **_segment_data(segment),
                    )
        except services.CampaignError as error:
            messages.error(self.request, str(error))
            return self.render_to_response(self.get_context_data(form=form))
        if campaign.status == Campaign.Status.SCHEDULED:
            message = _("'%(title)s' is scheduled for %(time)s.") % {
                "title": self.page.title,
                "time": _local(campaign.scheduled_at),
            }
        else:
            message = _("Sending '%(title)s' to %(count)s recipients.") % {
                "title": self.page.title,
                "count": f"{campaign.recipients:,}",
            }
        messages.success(self.request, message)
        return redirect("campaigns_admin:detail", campaign.pk)


@requires_send
class PreviewAsSubscriberView(View):
    """The issue's latest draft as one subscriber would get it: ``?subscriber=`` an address or a
    subscriber id, ``?mode=email`` (the HTML email, default) or ``text`` (the plain-text part).

    Merge tags take that subscriber's values (links stay sample links). It shows a subscriber's
    name and attributes, so it needs the permission to view subscribers besides sending.
    """

    def get(self, request, page_id):
        page = get_object_or_404(NewsletterIssuePage, pk=page_id)
        if not request.user.has_perm("subscribers.view_subscriber"):
            raise PermissionDenied
        mode = request.GET.get("mode") or "email"
        if mode not in ("email", "text"):
            return HttpResponseBadRequest(_("Choose the email or the plain text."))
        subscriber = _find_subscriber(request.GET.get("subscriber", ""))
        if subscriber is None:
            return HttpResponseNotFound(_("No subscriber has this address or id."))
        return page.get_latest_revision_as_object().serve_email_preview(request, mode, subscriber)


def _find_subscriber(value: str):
    """The subscriber with this id or address, or None (for anything else, however malformed)."""
    value = value.strip()[:254]
    if value.isdecimal() and value.isascii():
        return Subscriber.objects.filter(pk=int(value)).first() if int(value) <= MAX_ID else None
    try:
        return Subscriber.objects.for_email(value).first()
    except ValidationError:
        return None


@requires_send
class AudienceCountView(View):
    """GET ``lists`` (ids) and ``segment`` (an id, or empty): {"count"} for the send form as the editor
    chooses, the same ``Audience`` count the confirmation step shows and the snapshot inserts.
    A choice that does not validate answers {"count": null, "errors": [...]}, never a query."""

    def get(self, request):
        form = AudienceForm(request.GET, counts={})
        if not form.is_valid():
            errors = [message for messages_ in form.errors.values() for message in messages_]
            return JsonResponse({"count": None, "errors": errors})
        return JsonResponse({"count": form.audience().count(), "errors": []})


@requires_send
class NewCampaignView(generic.WagtailAdminTemplateMixin, TemplateView):
    """ "New campaign": choose a published issue, then its "Send as newsletter" form."""

    template_name = "campaigns/admin/new.html"
    header_icon = "mail"
    page_title = gettext_lazy("New campaign")
    issues_per_page = 20

    def get_breadcrumbs_items(self):
        return _crumbs({"url": "", "label": _("New campaign")})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        issues = (
            NewsletterIssuePage.objects.issues()
            .live()
            .filter(live_revision__isnull=False)
            .order_by("-issue_date", "-first_published_at", "-pk")
        )
        page_obj = Paginator(issues, self.issues_per_page).get_page(self.request.GET.get("p"))
        sent = {}
        for campaign in Campaign.objects.filter(
            page__in=[issue.pk for issue in page_obj], status__in=ALREADY_SENT_STATUSES
        ).prefetch_related("lists"):
            sent.setdefault(campaign.page_id, []).append(campaign)
        context.update(
            issues=page_obj,
            rows=[
                (issue, reverse("campaigns_admin:send", args=[issue.pk]), sent.get(issue.pk, [])) for issue in page_obj
            ],
        )
        return context


# --- Campaign listing ----------------------------------------------------------------------------


@requires_send
class CampaignIndexView(generic.IndexView):
    model = Campaign
    any_permission_required = ["send"]
    filterset_class = CampaignFilterSet
    index_url_name = "campaigns_admin:index"
    index_results_url_name = "campaigns_admin:index_results"
    page_title = gettext_lazy("Campaigns")
    header_icon = "mail"
    paginate_by = 25
    default_ordering = "-created_at"
    add_url_name = "campaigns_admin:new"
    add_item_label = gettext_lazy("New campaign")

    @cached_property
    def header_buttons(self):
        mailers_button = HeaderButton(_("Mailers"), url=reverse("campaigns_admin:mailers"), icon_name="mail")
        return [*super().header_buttons, mailers_button]

    def get_add_url(self):
        # A campaign starts from an issue: "New campaign" chooses one (the send permission is
        # already required to see this listing; Campaign has no separate "add" permission in use).
        return reverse(self.add_url_name)

    @property
    def columns(self):
        return [
            TitleColumn("page", label=_("Issue"), accessor="page", get_url=self.get_detail_url),
            Column("lists", label=_("Lists"), accessor=lambda c: _list_names(c.lists.all())),
            StatusTagColumn("status", label=_("Status"), accessor="get_status_display", primary=self._is_active),
            DateTimeColumn("scheduled_at", label=_("Scheduled")),
            DateTimeColumn("started_at", label=_("Started")),
            DateTimeColumn("finished_at", label=_("Finished")),
            NumberColumn("recipients", label=_("Recipients")),
            NumberColumn("sent", label=_("Sent")),
            NumberColumn("failed", label=_("Failed")),
            NumberColumn("unique_opens", label=_("Opens")),
            NumberColumn("unique_clicks", label=_("Clicks")),
        ]

    @staticmethod
    def _is_active(campaign):
        return campaign.status in (Campaign.Status.SENDING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED)

    def get_detail_url(self, campaign):
        return reverse("campaigns_admin:detail", args=[campaign.pk])

    def get_base_queryset(self):
        return Campaign.objects.select_related("page").prefetch_related("lists")

    def get_breadcrumbs_items(self):
        return [*_crumbs()[:1], {"url": "", "label": _("Campaigns")}]


# --- One campaign --------------------------------------------------------------------------------


class CampaignMixin:
    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.campaign = get_object_or_404(Campaign.objects.select_related("page"), pk=kwargs["pk"])


@requires_send
class CampaignDetailView(CampaignMixin, generic.WagtailAdminTemplateMixin, TemplateView):
    """Progress (live while sending), controls, and the per-recipient deliveries table."""

    template_name = "campaigns/admin/detail.html"
    header_icon = "mail"
    deliveries_per_page = 50

    def get_page_title(self):
        return self.campaign.page.title

    def get_page_subtitle(self):
        return self.campaign.get_status_display()

    def get_breadcrumbs_items(self):
        return _crumbs({"url": "", "label": self.campaign.page.title})

    def get_header_buttons(self):
        return [
            HeaderButton(
                _("Report"),
                url=reverse("campaigns_admin:report", args=[self.campaign.pk]),
                icon_name="doc-full",
            )
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        campaign = self.campaign
        mailer = mailers.mailer_for(campaign)
        filter_form = DeliveryFilterForm(self.request.GET or None)
        deliveries = filter_form.filter(campaign.deliveries.order_by("pk"))
        paginator = Paginator(deliveries, self.deliveries_per_page)
        page_obj = paginator.get_page(self.request.GET.get("p"))
        context.update(
            campaign=campaign,
            lists=campaign.lists.all(),
            progress=reporting.progress(campaign),
            mailer=mailer,
            expected_finish=mailers.campaign_finish(campaign),
            progress_url=reverse("campaigns_admin:progress", args=[campaign.pk]),
            actions=campaign_actions(campaign),
            filter_form=filter_form,
            deliveries=page_obj,
            elided_page_range=paginator.get_elided_page_range(page_obj.number),
            delivery_statuses=Delivery.Status,
        )
        return context


@dataclass(frozen=True)
class CampaignAction:
    """One control on the campaign page: when it applies, the workflow it calls, how it is logged.

    ``run(campaign, user)`` calls the service and returns the audit entry's data (raising
    services.CampaignError when the campaign cannot do it); ``message`` is formatted with that data.
    """

    name: str
    label: str  # lazily translated, as the message
    icon: str
    classname: str
    applies: Callable[[Campaign], bool]
    run: Callable[[Campaign, object], dict]
    log_action: str
    message: str


_S = Campaign.Status


def _pause(campaign, user):
    services.pause_campaign(campaign.pk, user=user)
    return {}


def _resume(campaign, user):
    services.resume_campaign(campaign.pk, user=user)
    return {}


def _cancel(campaign, user):
    services.cancel_campaign(campaign.pk, user=user)
    return {}


def _retry(campaign, user):
    return {"count": services.retry_failed(campaign.pk)}


# The campaign page's controls, in button order. A new control is one entry here.
CAMPAIGN_ACTIONS = {
    action.name: action
    for action in [
        CampaignAction(
            "pause", gettext_lazy("Pause"), "time", "button-secondary", lambda c: c.status == _S.SENDING, _pause,
            audit.PAUSE, gettext_lazy("Sending is paused."),
        ),
        CampaignAction(
            "resume", gettext_lazy("Resume"), "resubmit", "button-secondary", lambda c: c.status == _S.PAUSED,
            _resume, audit.RESUME, gettext_lazy("Sending resumed."),
        ),
        CampaignAction(
            "retry", gettext_lazy("Retry failed"), "rotate", "button-secondary",
            lambda c: c.failed > 0 and c.status in (_S.SENDING, _S.PAUSED, _S.SENT), _retry, audit.RETRY_FAILED,
            gettext_lazy("{count:,} failed deliveries queued again."),
        ),
        CampaignAction(
            "cancel", gettext_lazy("Cancel campaign"), "cross", "no",
            lambda c: c.status in (_S.DRAFT, _S.SCHEDULED, _S.SENDING, _S.PAUSED), _cancel, audit.CANCEL,
            gettext_lazy("The campaign is cancelled: nothing more will be sent."),
        ),
    ]
}  # fmt: skip


def campaign_actions(campaign: Campaign) -> list[dict]:
    """Every control button, with ``shown`` saying whether it applies in the campaign's current status.

    All are rendered (hidden when not shown) so the progress script can reveal them when the
    status changes, e.g. Resume after someone else paused the campaign.
    """
    return [
        {
            "name": action.name,
            "label": action.label,
            "icon": action.icon,
            "classname": action.classname,
            "shown": action.applies(campaign),
            "url": reverse("campaigns_admin:action", args=[campaign.pk, action.name]),
        }
        for action in CAMPAIGN_ACTIONS.values()
    ]


@requires_send
class CampaignProgressView(CampaignMixin, View):
    """The JSON the progress bar polls every 2 seconds (see campaigns/static/campaigns/progress.js)."""

    def get(self, request, *args, **kwargs):
        data = reporting.progress(self.campaign)
        data["actions"] = [action["name"] for action in campaign_actions(self.campaign) if action["shown"]]
        return JsonResponse(data)


@requires_send
class CampaignActionView(CampaignMixin, View):
    """POST one of CAMPAIGN_ACTIONS: call its workflow and write its audit entry in one transaction
    (as wagtail.contrib.redirects logs inside the transaction: no entry for a change that rolled
    back, no change without its entry), then go back to the campaign page."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        action = CAMPAIGN_ACTIONS.get(kwargs["action"])
        if action is None:
            raise Http404
        campaign, user = self.campaign, request.user
        try:
            with transaction.atomic():
                data = action.run(campaign, user)
                audit.log_action(campaign, action.log_action, user, **data)
        except services.CampaignError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, str(action.message).format(**data))
        return redirect("campaigns_admin:detail", campaign.pk)


@requires_send
class CampaignReportView(CampaignMixin, generic.WagtailAdminTemplateMixin, TemplateView):
    template_name = "campaigns/admin/report.html"
    header_icon = "doc-full"

    def get_page_title(self):
        return _("Report: %(title)s") % {"title": self.campaign.page.title}

    def get_breadcrumbs_items(self):
        return _crumbs(
            {"url": reverse("campaigns_admin:detail", args=[self.campaign.pk]), "label": self.campaign.page.title},
            {"url": "", "label": _("Report")},
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        report = reporting.campaign_report(self.campaign)
        hours = report.hours
        chart = None
        series = []
        if report.tracking.opens:
            series.append(charts.Series(_("Opens"), [h.opens for h in hours]))
        if report.tracking.clicks:
            series.append(charts.Series(_("Clicks"), [h.clicks for h in hours]))
        if hours and series:
            chart = charts.bar_chart(
                [f"{h.hour}h" for h in hours],
                series,
                title=_("%(series)s per hour, first 48 hours") % {"series": join_names([one.name for one in series])},
                label_every=6,
            )
        context.update(
            campaign=self.campaign,
            report=report,
            chart=chart,
            lists=self.campaign.lists.all(),
            detail_url=reverse("campaigns_admin:detail", args=[self.campaign.pk]),
            **self.resend_context(),
            **self.ab_context(),
        )
        return context

    def resend_context(self) -> dict:
        """The "send again to non-openers" panel: the resend made, else the form or why not."""
        campaign = self.campaign
        resend = resends.live_resend(campaign)
        refusal = "" if resend else resends.refusal(campaign)
        offer = resend is None and not refusal
        return {
            "resend": resend,
            "resend_refusal": refusal,
            "resend_form": ResendForm(initial={"subject": campaign.subject}) if offer else None,
            "resend_audience": resends.non_openers(campaign) if offer else None,
            "resend_url": reverse("campaigns_admin:resend", args=[campaign.pk]),
        }

    def ab_context(self) -> dict:
        """The A/B test panel: each variant's figures, the winner and its send, or the pick buttons."""
        campaign = self.campaign
        if not campaign.is_ab_test:
            return {}
        figures = abtests.variant_figures(campaign)
        open_for_pick = campaign.ab_winner is None and campaign.status in (
            Campaign.Status.SENDING,
            Campaign.Status.PAUSED,
            Campaign.Status.SENT,
        )
        return {
            "ab_figures": figures,
            "ab_leader": abtests.leader(figures, campaign.ab_metric) if figures else None,
            "ab_rest": campaign.winner_sends.first(),
            "ab_due": abtests.decision_due_at(campaign) if campaign.started_at or campaign.scheduled_at else None,
            "ab_can_pick": open_for_pick,
            "ab_pick_url": reverse("campaigns_admin:ab_pick", args=[campaign.pk]),
        }


@requires_send
class CampaignABPickView(CampaignMixin, View):
    """POST an editor's choice of an A/B test's winner (campaigns.abtests.decide)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        try:
            variant = int(request.POST.get("variant", ""))
        except ValueError:
            variant = -1
        try:
            outcome = abtests.decide(self.campaign.pk, variant=variant, user=request.user)
        except services.CampaignError as error:
            messages.error(request, str(error))
        else:
            if outcome == "decided":
                messages.info(request, _("The A/B test's winner was already chosen."))
            else:
                messages.success(
                    request,
                    _("Variant %(letter)s is sent to the rest of the audience.") % {"letter": abtests.LETTERS[variant]},
                )
        return redirect("campaigns_admin:report", self.campaign.pk)


@requires_send
class CampaignResendView(CampaignMixin, View):
    """POST the report's "send again to those who did not open" form (campaigns.resends)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        form = ResendForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(str(message) for messages_ in form.errors.values() for message in messages_)
            messages.error(request, _("Not sent again: %(errors)s") % {"errors": errors})
            return redirect("campaigns_admin:report", self.campaign.pk)
        delay = datetime.timedelta(hours=form.cleaned_data["delay_hours"])
        try:
            resend, created = resends.create_resend(
                self.campaign.pk, subject=form.cleaned_data["subject"], delay=delay, user=request.user
            )
        except services.CampaignError as error:
            messages.error(request, str(error))
            return redirect("campaigns_admin:report", self.campaign.pk)
        if created:
            messages.success(
                request,
                _("Sent again to those who did not open: %(status)s.")
                % {"status": resend.get_status_display().lower()},
            )
        else:
            messages.info(request, _("This campaign was already sent again to those who did not open it."))
        return redirect("campaigns_admin:detail", resend.pk)


# --- Mailers -------------------------------------------------------------------------------------


@requires_send
class MailersView(generic.WagtailAdminTemplateMixin, TemplateView):
    """Each mailer's limits, use and health, who sends through it, and the bounce mailbox (issue 14)."""

    template_name = "campaigns/admin/mailers.html"
    header_icon = "mail"
    page_title = gettext_lazy("Mailers")

    def get_breadcrumbs_items(self):
        return _crumbs({"url": "", "label": _("Mailers")})

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            mailers=mailers.overview(),
            mailbox=bounce_processing.mailbox_status(),
            mailbox_check_url=reverse("campaigns_admin:mailbox_check"),
        )
        return context


@requires_send
class MailerCheckView(View):
    """POST: connect and log in to one mailer (``name``) or to the bounce mailbox (no ``name``), as
    ``manage.py check_mailers`` does, and say what was found; then back to the mailers page.

    The check is a login over the network, so it runs only when asked, never when the page is
    shown, and waits at most ``timeout`` seconds: a silent server must not hold the request past
    the web server's own limit (gunicorn's default is 30 s).
    """

    http_method_names = ["post"]
    timeout = 10

    def post(self, request, name=None):
        if name is None:
            config = settings.BROADSHEET["BOUNCE_MAILBOX"]
            if not config:
                raise Http404
            title = _("Bounce mailbox %(mailbox)s") % {"mailbox": describe_mailbox(config)}
            ok, lines = check_mailbox(config, timeout=self.timeout)
        else:
            if name not in settings.MAILERS:
                raise Http404
            check = mailers.check_mailer(name, timeout=self.timeout)
            title = _("Mailer %(name)s (%(where)s)") % {"name": name, "where": check.where}
            ok, lines = check.ok, check.lines
        report = messages.success if ok else messages.error
        result = _("answered") if ok else _("PROBLEM")
        report(request, f"{title}: {result}. {'; '.join(lines)}")
        return redirect("campaigns_admin:mailers")


def recent_campaigns(limit: int = 5):
    """The newest campaigns, for the dashboard panel."""
    return Campaign.objects.select_related("page").filter(~Q(status=Campaign.Status.DRAFT))[:limit]
