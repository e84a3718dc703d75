"""Campaigns in the Wagtail admin: "Send as newsletter" on issues, the Campaigns menu, the dashboard panel.

Everything here is shown only to users with ``campaigns.send_campaign``; the views check it again.
"""

from django.contrib import messages
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeData, mark_safe
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy
from wagtail import hooks
from wagtail.admin.action_menu import ActionMenuItem
from wagtail.admin.ui.components import Component
from wagtail.admin.viewsets.base import ViewSet
from wagtail.admin.viewsets.pages import PageViewSet
from wagtail.admin.widgets import Button

from campaigns import admin_views, audit, autosend, charts, reporting
from campaigns.admin_views import can_send, send_url, sendable_page
from campaigns.autosend_admin import AutoSendViewSet
from campaigns.models import NewsletterIssuePage
from subscribers.audience import Audience
from subscribers.templatetags.admin_format import admin_datetime

# --- "Send as newsletter" on a published issue -------------------------------------------------


class SendAsNewsletterMenuItem(ActionMenuItem):
    """In the editor's action menu (the drop-up next to Publish) of a published issue."""

    label = gettext_lazy("Send as newsletter")
    name = "action-send-newsletter"
    icon_name = "mail"
    order = 90

    def is_shown(self, context):
        page = context.get("page")
        return (
            context["view"] == "edit"
            and page is not None
            and can_send(context["request"].user)
            and sendable_page(page.specific_deferred)
        )

    def get_url(self, parent_context):
        return send_url(parent_context["page"])


@hooks.register("register_page_action_menu_item")
def register_send_menu_item():
    return SendAsNewsletterMenuItem()


def _send_button(page, user, priority):
    if can_send(user) and sendable_page(page.specific_deferred):
        yield Button(gettext("Send as newsletter"), send_url(page), icon_name="mail", priority=priority)


@hooks.register("register_page_listing_more_buttons")
def page_listing_send_button(page, user, next_url=None):
    yield from _send_button(page, user, priority=45)


@hooks.register("register_page_header_buttons")
def page_header_send_button(page, user, view_name, next_url=None):
    if view_name != "edit":  # the editor shows it as a button of its own (IssueEditView)
        yield from _send_button(page, user, priority=55)


class IssuePageViewSet(PageViewSet):
    """Issues' admin views: Wagtail's, with the issue editor's header button."""

    model = NewsletterIssuePage
    edit_view_class = admin_views.IssueEditView


@hooks.register("register_admin_viewset")
def register_issue_page_viewset():
    return IssuePageViewSet("newsletter_issues")


def offer_send_in_published_message(request, page):
    """Add "Send as newsletter" to the "Page '...' has been published." message of an issue.

    Wagtail adds that message (with its "View live" and "Edit" buttons) just before the
    after_edit_page / after_create_page hooks run, and offers no hook to extend its buttons: the
    queued messages are taken out and put back, the success one with one more button.
    """
    if request.method != "POST" or "action-publish" not in request.POST:
        return
    if not (can_send(request.user) and sendable_page(page.specific_deferred)):
        return
    button = format_html(
        '<a href="{}" class="button button-small" data-send-newsletter>{}</a>',
        send_url(page),
        gettext("Send as newsletter"),
    )
    queued = list(messages.get_messages(request))  # iterating takes them out of the storage
    added = False
    for message in queued:
        text = str(message.message)
        if not added and message.level == messages.SUCCESS and '<span class="buttons">' in text:
            head, _, tail = text.rpartition("</span>")
            text, added = mark_safe(f"{head}{button}</span>{tail}"), True  # Wagtail's own markup + ours
        elif isinstance(message.message, SafeData):
            text = message.message
        messages.add_message(request, message.level, text, extra_tags=message.extra_tags)


hooks.register("after_edit_page", offer_send_in_published_message)
hooks.register("after_create_page", offer_send_in_published_message)


def announce_automatic_sends(request, page):
    """After publishing an issue: which lists get it automatically, and until when the editor
    can cancel it (the review delay; campaigns.autosend)."""
    if request.method != "POST" or "action-publish" not in request.POST:
        return
    upcoming = autosend.upcoming_sends(page)
    if upcoming:
        lists = ", ".join(f"{name} ({admin_datetime(at)})" for name, at in upcoming)
        messages.info(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                gettext("Sent automatically to %(lists)s: until then you can cancel it in Campaigns.")
                % {"lists": lists},
                reverse("campaigns_admin:index"),
                gettext("Campaigns"),
            ),
        )


hooks.register("after_edit_page", announce_automatic_sends)
hooks.register("after_create_page", announce_automatic_sends)


# --- The Campaigns menu and views ---------------------------------------------------------------


class CampaignViewSet(ViewSet):
    name = "campaigns_admin"
    url_prefix = "campaigns"
    icon = "mail"
    menu_label = gettext_lazy("Campaigns")
    menu_name = "campaigns"
    menu_order = 250
    add_to_admin_menu = True
    menu_item_class = admin_views.permission_checker.menu_item_class("send")

    def get_urlpatterns(self):
        index = admin_views.CampaignIndexView
        return [
            path("", index.as_view(), name="index"),
            path("results/", index.as_view(results_only=True), name="index_results"),
            path("new/", admin_views.NewCampaignView.as_view(), name="new"),
            path("send/<int:page_id>/", admin_views.SendCampaignView.as_view(), name="send"),
            path("audience-count/", admin_views.AudienceCountView.as_view(), name="audience_count"),
            path("send/<int:page_id>/preview/", admin_views.PreviewAsSubscriberView.as_view(), name="preview_as"),
            path("mailers/", admin_views.MailersView.as_view(), name="mailers"),
            path("mailers/bounce-mailbox/check/", admin_views.MailerCheckView.as_view(), name="mailbox_check"),
            path("mailers/<str:name>/check/", admin_views.MailerCheckView.as_view(), name="mailer_check"),
            path("<int:pk>/", admin_views.CampaignDetailView.as_view(), name="detail"),
            path("<int:pk>/progress/", admin_views.CampaignProgressView.as_view(), name="progress"),
            path("<int:pk>/report/", admin_views.CampaignReportView.as_view(), name="report"),
            path("<int:pk>/resend/", admin_views.CampaignResendView.as_view(), name="resend"),
            path("<int:pk>/ab-pick/", admin_views.CampaignABPickView.as_view(), name="ab_pick"),
            path(
                "<int:pk>/<str:action>/",
                admin_views.CampaignActionView.as_view(),
                name="action",
            ),
        ]


@hooks.register("register_admin_viewset")
def register_campaign_viewset():
    return CampaignViewSet()


@hooks.register("register_admin_viewset")
def register_autosend_viewset():
    return AutoSendViewSet()


@hooks.register("register_log_actions")
def register_campaign_log_actions(actions):
    audit.register_actions(actions)


# --- Dashboard -----------------------------------------------------------------------------------


# The growth chart's day labels, as Django date format characters ("30 Nov"; "11月30日").
_DAY_FORMAT = pgettext_lazy("chart day label, Django date format", "j M")


class CampaignsPanel(Component):
    """The last campaigns and the subscriber growth over 90 days, on the admin dashboard."""

    name = "campaigns"
    template_name = "campaigns/admin/dashboard_panel.html"
    order = 90

    def get_context_data(self, parent_context):
        growth = reporting.subscriber_growth(days=90)
        values = [count for _, count in growth]
        return {
            "campaigns": admin_views.recent_campaigns(),
            "index_url": reverse("campaigns_admin:index"),
            "growth_chart": charts.line_chart(
                [date_format(day, _DAY_FORMAT) for day, _count in growth],
                values,
                title=gettext("Subscriptions, last 90 days"),
            ),
            "receiving": Audience.everyone().count(),
            "growth_now": values[-1] if values else 0,
            "growth_change": values[-1] - values[0] if values else 0,
        }


@hooks.register("construct_homepage_panels")
def add_campaigns_panel(request, panels):
    if can_send(request.user):
        panels.append(CampaignsPanel())
