"""The "Subscribers" admin menu: lists (with counts), subscribers (search, filters, history), import."""

import datetime

from django.db.models.functions import Lower
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail import hooks
from wagtail.admin import messages
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.ui.tables import Column, NumberColumn, TitleColumn
from wagtail.admin.views import generic
from wagtail.admin.viewsets.base import ViewSet, ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets.button import Button

from subscribers import views_admin
from subscribers.admin_forms import SUBSCRIBER_SEARCH_FIELDS, AttributesField, RulesField, SubscriberFilterSet
from subscribers.audience import Audience, subscriptions_per_list, suppressed_per_list
from subscribers.counting import EstimatedCountPaginator
from subscribers.models import MailingList, Segment, Subscriber, Subscription
from subscribers.templatetags.admin_format import DateTimeColumn, admin_datetime, describe_event, in_words, yes_no

# --- Lists ------------------------------------------------------------------------------------


class MailingListIndexView(generic.IndexView):
    def get_base_queryset(self):
        status = Subscription.Status
        # One subquery per figure and list, each an index range (subscribers.audience): a join of
        # every subscription with its subscriber took seconds at a million subscribers.
        return (
            super()
            .get_base_queryset()
            .annotate(
                # What a campaign to the list reaches: the one count (Audience) every page shows.
                receiving_count=Audience.count_per_list(),
                # Subscribed, but the reader bounced, complained or was blocked: reached by nothing.
                suppressed_count=suppressed_per_list(),
                pending_count=subscriptions_per_list(status.PENDING),
                unsubscribed_count=subscriptions_per_list(status.UNSUBSCRIBED),
            )
        )

    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        subscribers_url = reverse("subscribers_subscriber:index")
        buttons += [
            MenuItem(_("Subscribers"), url=f"{subscribers_url}?list={instance.pk}", icon_name="user", priority=5),
            MenuItem(
                _("Export CSV"),
                url=reverse("subscribers_import:export_list", args=[instance.pk]),
                icon_name="download",
                priority=25,
            ),
        ]
        return buttons


class MailingListViewSet(ModelViewSet):
    model = MailingList
    name = "subscribers_list"
    url_prefix = "subscriber-lists"
    icon = "list-ul"
    menu_label = gettext_lazy("Lists")
    index_view_class = MailingListIndexView
    copy_view_enabled = False
    form_fields = [
        "name",
        "slug",
        "description",
        "is_public",
        "preselected",
        "double_opt_in",
        "language",
        "from_name",
        "from_email",
        "reply_to",
        "mailer",
    ]
    search_fields = ["name", "slug"]
    list_display = [
        "name",
        "slug",
        Column("is_public", label=gettext_lazy("Public"), accessor=lambda mailing_list: yes_no(mailing_list.is_public)),
        Column(
            "double_opt_in",
            label=gettext_lazy("Double opt-in"),
            accessor=lambda mailing_list: yes_no(mailing_list.double_opt_in),
        ),
        NumberColumn("receiving_count", label=gettext_lazy("Can receive"), sort_key="receiving_count"),
        NumberColumn("suppressed_count", label=gettext_lazy("Suppressed"), sort_key="suppressed_count"),
        NumberColumn("pending_count", label=gettext_lazy("Pending"), sort_key="pending_count"),
        NumberColumn("unsubscribed_count", label=gettext_lazy("Unsubscribed"), sort_key="unsubscribed_count"),
    ]


# --- Subscribers ------------------------------------------------------------------------------


class SubscriberIndexView(generic.IndexView):
    # A million subscribers: "about N" from PostgreSQL's estimate instead of counting them all.
    paginator_class = EstimatedCountPaginator

    def order_queryset(self, queryset):
        queryset = super().order_queryset(queryset)
        if self.is_searching and not self.is_explicitly_ordered:
            # The same order as the address (already lower-case), written so PostgreSQL cannot
            # walk the address index: expecting a few hundred matches it walked it in order
            # hoping to meet the first soon, reading half a million rows for one found address,
            # where the trigram indexes (subscribers 0016) find the matches at once.
            queryset = queryset.order_by(Lower("email_normalised"), "pk")
        return queryset

    def _get_title_column(self, field_name, column_class=TitleColumn, **kwargs):
        # A click on a subscriber opens their page (lists, history, actions), not a bare edit form
        # (TitleColumn keeps its link function there; Wagtail offers no argument for it here).
        column = super()._get_title_column(field_name, column_class, **kwargs)
        column._get_url_func = self.get_inspect_url
        return column

    @cached_property
    def header_more_buttons(self):
        buttons = super().header_more_buttons
        query = self.request.GET.copy()
        query.pop("p", None)
        url = reverse("subscribers_import:export_subscribers")
        buttons.append(
            Button(_("Export these as CSV"), url=f"{url}?{query.urlencode()}", icon_name="download", priority=50)
        )
        return buttons

    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        buttons.append(
            MenuItem(
                _("Export personal data (JSON)"),
                url=reverse("subscribers_import:gdpr_export", args=[instance.pk]),
                icon_name="download",
                priority=40,
            )
        )
        return buttons


class SubscriberHistoryView(generic.InspectView):
    """One page per subscriber: their details, lists (with the consent record of each), history in
    words, and the actions (edit, export, erase)."""

    template_name = "subscribers/admin/subscriber_history.html"
    page_title = gettext_lazy("Subscriber")

    def get_page_subtitle(self):
        return self.object.email or _("(erased)")

    def get_field_display_value(self, field_name, field):
        value = getattr(self.object, field_name, None)
        if isinstance(value, datetime.date):
            return admin_datetime(value) or "–"
        return super().get_field_display_value(field_name, field)

    def get_context_data(self, **kwargs):
        list_names = dict(MailingList.objects.values_list("pk", "name"))
        events = self.object.events.select_related("list", "actor").order_by("-at", "-pk")
        return super().get_context_data(
            subscriptions=self.object.subscriptions.select_related("list").order_by("list__name"),
            events=[describe_event(event, list_names) for event in events],
            attributes=[(key, in_words(value)) for key, value in sorted(self.object.attributes.items())],
            **kwargs,
        )

    @cached_property
    def header_more_buttons(self):
        buttons = super().header_more_buttons
        buttons.append(
            Button(
                _("Export personal data (JSON)"),
                url=reverse("subscribers_import:gdpr_export", args=[self.object.pk]),
                icon_name="download",
                priority=30,
            )
        )
        if views_admin.permission_checker.user_has(self.request.user, views_admin.ERASE):
            buttons.append(
                Button(
                    _("Erase personal data"),
                    url=reverse("subscribers_import:gdpr_erase", args=[self.object.pk]),
                    icon_name="warning",
                    priority=40,
                )
            )
        return buttons


class SubscriberDeleteView(generic.DeleteView):
    """Deleting a row would forget the address, so a later import could add it again; erasing
    removes the personal data and keeps an anonymous suppression hash. Delete leads to Erase."""

    def dispatch(self, request, *args, **kwargs):
        return redirect("subscribers_import:gdpr_erase", kwargs["pk"])


class SubscriberViewSet(ModelViewSet):
    model = Subscriber
    name = "subscribers_subscriber"
    url_prefix = "subscribers"
    icon = "user"
    menu_label = gettext_lazy("Subscribers")
    index_view_class = SubscriberIndexView
    delete_view_class = SubscriberDeleteView
    inspect_view_enabled = True
    inspect_view_class = SubscriberHistoryView
    inspect_view_fields = ["email", "name", "language", "state", "state_reason", "state_changed_at", "created_at"]
    copy_view_enabled = False
    form_fields = ["email", "name", "language", "attributes", "state", "state_reason"]
    search_fields = SUBSCRIBER_SEARCH_FIELDS
    filterset_class = SubscriberFilterSet
    list_per_page = 50
    list_display = [
        "email",
        "name",
        Column("state", label=gettext_lazy("State"), accessor="get_state_display", sort_key="state"),
        DateTimeColumn("created_at", label=gettext_lazy("Added"), sort_key="created_at"),
    ]

    def formfield_for_dbfield(self, db_field, **kwargs):
        if db_field.name == "attributes":  # rows of name + value, not raw JSON
            return AttributesField()
        return super().formfield_for_dbfield(db_field, **kwargs)


# --- Segments -----------------------------------------------------------------------------------


class SegmentDeleteView(generic.DeleteView):
    """A segment a campaign used stays (Campaign.segment is PROTECT): its report says who it went to."""

    def form_valid(self, form):
        used = self.object.campaigns.count()
        if used:
            messages.error(
                self.request,
                _("“%(segment)s” cannot be deleted: %(count)s campaign(s) went to it, and their reports name it.")
                % {"segment": self.object, "count": used},
            )
            return redirect(self.index_url_name)
        return super().form_valid(form)


class SegmentViewSet(ModelViewSet):
    model = Segment
    name = "subscribers_segment"
    url_prefix = "segments"
    icon = "filter"
    menu_label = gettext_lazy("Segments")
    delete_view_class = SegmentDeleteView
    copy_view_enabled = True
    form_fields = ["name", "slug", "description", "rules"]
    search_fields = ["name", "slug", "description"]
    list_display = [
        "name",
        "slug",
        "description",
        DateTimeColumn("updated_at", label=gettext_lazy("Updated"), sort_key="updated_at"),
    ]

    def formfield_for_dbfield(self, db_field, **kwargs):
        if db_field.name == "rules":  # rows of field / operator / value, not raw JSON
            return RulesField()
        return super().formfield_for_dbfield(db_field, **kwargs)

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("preview/", views_admin.SegmentPreviewView.as_view(), name="preview"),
        ]


# --- Import, export, GDPR screens ---------------------------------------------------------


class SubscriberToolsViewSet(ViewSet):
    """The import screens (menu item "Import") and the export / GDPR endpoints."""

    name = "subscribers_import"
    url_prefix = "subscriber-import"
    icon = "upload"
    menu_label = gettext_lazy("Import")

    menu_item_class = views_admin.permission_checker.menu_item_class(views_admin.IMPORT)

    def get_urlpatterns(self):
        return [
            path("", views_admin.ImportUploadView.as_view(), name="index"),
            path("<int:pk>/map/", views_admin.ImportMappingView.as_view(), name="map"),
            path("<int:pk>/", views_admin.ImportProgressView.as_view(), name="progress"),
            path("<int:pk>/status.json", views_admin.ImportStatusView.as_view(), name="status"),
            path("export/list/<int:pk>/", views_admin.ExportListView.as_view(), name="export_list"),
            path("export/subscribers/", views_admin.ExportSubscribersView.as_view(), name="export_subscribers"),
            path("gdpr/<int:pk>/export/", views_admin.GdprExportView.as_view(), name="gdpr_export"),
            path("gdpr/<int:pk>/erase/", views_admin.GdprEraseView.as_view(), name="gdpr_erase"),
        ]


class SubscribersGroup(ViewSetGroup):
    menu_label = gettext_lazy("Subscribers")
    menu_icon = "group"
    menu_order = 210
    items = (MailingListViewSet, SubscriberViewSet, SegmentViewSet, SubscriberToolsViewSet)


@hooks.register("register_admin_viewset")
def register_subscribers_viewsets():
    return SubscribersGroup()
