"""Wagtail admin views for operators: CSV import with progress, CSV export, GDPR export and erasure.

The listings, edit forms and the subscriber history page are Wagtail viewsets (wagtail_hooks.py);
these are the extra screens. Each view parses the request, calls importing / exporting / gdpr,
and renders.
"""

from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import FormView, TemplateView, View
from wagtail.admin import messages
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from subscribers import exporting, gdpr, import_tasks
from subscribers.admin_forms import (
    EraseForm,
    ImportMappingForm,
    ImportUploadForm,
    RulesField,
    SubscriberFilterSet,
    search_subscribers,
)
from subscribers.admin_permissions import ModelPolicyChecker
from subscribers.audience import Audience
from subscribers.importing import (
    ENCODINGS,
    ImportFileError,
    create_import_job,
    guess_targets,
    read_header,
)
from subscribers.models import ImportJob, MailingList, Segment, Subscriber, Subscription

# Subscriber's ModelPermissionPolicy (registered by its ModelViewSet) decides, as for the
# listings: importing needs "add", exporting "view", erasing "delete".
permission_checker = ModelPolicyChecker(
    Subscriber,
    denied_message=gettext_lazy("Importing, exporting and erasing subscribers need subscriber permissions."),
)
IMPORT, EXPORT, ERASE = "add", "view", "delete"
requires_import = method_decorator(permission_checker.require(IMPORT), name="dispatch")
requires_export = method_decorator(permission_checker.require(EXPORT), name="dispatch")
requires_erase = method_decorator(permission_checker.require(ERASE), name="dispatch")


def _breadcrumbs(*items):
    return [{"url": reverse("wagtailadmin_home"), "label": _("Home")}, *items]


def _subscribers_crumb():
    return {"url": reverse("subscribers_subscriber:index"), "label": _("Subscribers")}


def _imports_crumb():
    return {"url": reverse("subscribers_import:index"), "label": _("Import")}


# --- Import -----------------------------------------------------------------------------------


@requires_import
class ImportUploadView(WagtailAdminTemplateMixin, FormView):
    """Step 1: upload the file (and say its encoding); also lists the recent imports."""

    template_name = "subscribers/admin/import_upload.html"
    form_class = ImportUploadForm
    page_title = gettext_lazy("Import subscribers")
    header_icon = "upload"

    def get_breadcrumbs_items(self):
        return _breadcrumbs({"url": "", "label": _("Import")})

    def get_context_data(self, **kwargs):
        return super().get_context_data(recent_jobs=ImportJob.objects.prefetch_related("lists")[:20], **kwargs)

    def form_valid(self, form):
        job = create_import_job(form.cleaned_data["file"], self.request.user)
        import_tasks.schedule_sweep()
        query = {"encoding": form.cleaned_data["encoding"], "delimiter": form.cleaned_data["delimiter"]}
        url = reverse("subscribers_import:map", args=[job.pk])
        return redirect(f"{url}?{urlencode(query)}")


@requires_import
class ImportMappingView(WagtailAdminTemplateMixin, FormView):
    """Step 2: map the columns, choose the lists and the mode; then the job is queued."""

    template_name = "subscribers/admin/import_map.html"
    form_class = ImportMappingForm
    page_title = gettext_lazy("Import subscribers")
    header_icon = "upload"

    def dispatch(self, request, *args, **kwargs):
        self.job = get_object_or_404(ImportJob, pk=kwargs["pk"])
        if self.job.column_map:  # Already queued: the mapping cannot change under a running import.
            return redirect("subscribers_import:progress", self.job.pk)
        source = request.POST if request.method == "POST" else request.GET
        self.encoding = source.get("encoding") if source.get("encoding") in ENCODINGS else "utf-8"
        self.delimiter = source.get("delimiter") or ""
        try:
            with self.job.file.open("rb") as stream:
                self.header, self.delimiter = read_header(stream, self.encoding, self.delimiter or None)
        except ImportFileError as exc:
            self.header, self.file_error = [], str(exc)
        else:
            self.file_error = ""
        return super().dispatch(request, *args, **kwargs)

    def get_page_subtitle(self):
        return self.job.original_name

    def get_breadcrumbs_items(self):
        return _breadcrumbs(_imports_crumb(), {"url": "", "label": self.job.original_name})

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs.update(header=self.header, initial_targets=guess_targets(self.header))
        kwargs["initial"] = {"encoding": self.encoding, "delimiter": self.delimiter, "mode": ImportJob.Mode.CONFIRM}
        return kwargs

    def get_context_data(self, **kwargs):
        delimiter_names = {",": _("comma"), ";": _("semicolon"), "\t": _("tab"), "|": _("pipe")}
        return super().get_context_data(
            job=self.job,
            file_error=self.file_error,
            encoding_label=ENCODINGS[self.encoding],
            delimiter_label=delimiter_names.get(self.delimiter, repr(self.delimiter)),
            **kwargs,
        )

    def form_valid(self, form):
        if self.file_error:
            return self.form_invalid(form)
        data = form.cleaned_data
        import_tasks.queue_import_job(
            self.job,
            lists=data["lists"],
            column_map=data["column_map"],
            mode=data["mode"],
            consent_note=data["consent_note"].strip(),
            encoding=data["encoding"],
            delimiter=self.delimiter,
            update_names=data["update_names"],
        )
        messages.success(self.request, _("Importing %(file)s.") % {"file": self.job.original_name})
        return redirect("subscribers_import:progress", self.job.pk)


def _job_status(job: ImportJob) -> dict:
    percent = None
    if job.total_rows:
        percent = min(100, round(100 * job.processed_rows / job.total_rows))
    elif job.status == ImportJob.Status.DONE:
        percent = 100
    return {
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED),
        "total_rows": job.total_rows,
        "processed_rows": job.processed_rows,
        "percent": percent,
        "created": job.created_count,
        "updated": job.updated_count,
        "skipped": job.skipped_count,
        "errors": job.error_count,
    }


@requires_import
class ImportProgressView(WagtailAdminTemplateMixin, TemplateView):
    """The job's progress (polled from ImportStatusView) and, once done, its line-numbered report."""

    template_name = "subscribers/admin/import_progress.html"
    page_title = gettext_lazy("Import")
    header_icon = "upload"

    def dispatch(self, request, *args, **kwargs):
        self.job = get_object_or_404(ImportJob.objects.prefetch_related("lists"), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_subtitle(self):
        return self.job.original_name

    def get_breadcrumbs_items(self):
        return _breadcrumbs(_imports_crumb(), {"url": "", "label": self.job.original_name})

    def get_context_data(self, **kwargs):
        status = _job_status(self.job)
        return super().get_context_data(
            job=self.job,
            job_status=status,
            status_url=reverse("subscribers_import:status", args=[self.job.pk]),
            **kwargs,
        )


@requires_import
class ImportStatusView(View):
    """JSON progress of one import, polled by the progress page."""

    def get(self, request, pk):
        return JsonResponse(_job_status(get_object_or_404(ImportJob, pk=pk)))


# --- Export -----------------------------------------------------------------------------------


def _csv_response(lines, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@requires_export
class ExportListView(View):
    """A list's subscriptions as CSV; ``?status=subscribed`` (repeatable) narrows it."""

    def get(self, request, pk):
        mailing_list = get_object_or_404(MailingList, pk=pk)
        statuses = [s for s in request.GET.getlist("status") if s in Subscription.Status.values]
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        return _csv_response(exporting.export_list(mailing_list, statuses), f"{mailing_list.slug}-{stamp}.csv")


@requires_export
class ExportSubscribersView(View):
    """The subscriber listing as CSV, with the same search and filters as the listing's query string."""

    def get(self, request):
        queryset = Subscriber.objects.all()
        if query := request.GET.get("q", "").strip():
            queryset = search_subscribers(queryset, query)
        filters = SubscriberFilterSet(request.GET, queryset=queryset, request=request)
        if not filters.is_valid():
            # Exporting everyone because one filter was mistyped would hand out the whole list.
            problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in filters.errors.items())
            return HttpResponseBadRequest(
                _("Nothing exported: invalid filter (%(problems)s).") % {"problems": problems},
                content_type="text/plain",
            )
        queryset = filters.qs
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        return _csv_response(exporting.export_subscribers(queryset), f"subscribers-{stamp}.csv")


# --- GDPR -------------------------------------------------------------------------------------


@requires_export
class GdprExportView(View):
    """Everything held about one subscriber, downloaded as JSON."""

    def get(self, request, pk):
        subscriber = get_object_or_404(Subscriber, pk=pk)
        data = gdpr.export_subscriber_data(subscriber)
        response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
        filename = f"subscriber-{slugify(subscriber.email_normalised) or subscriber.uid}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@requires_erase
class GdprEraseView(WagtailAdminTemplateMixin, FormView):
    """Confirm, then erase one subscriber's personal data (a suppression hash stays)."""

    template_name = "subscribers/admin/erase.html"
    form_class = EraseForm
    page_title = gettext_lazy("Erase personal data")
    header_icon = "bin"

    def dispatch(self, request, *args, **kwargs):
        self.subscriber = get_object_or_404(Subscriber, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_page_subtitle(self):
        return self.subscriber.email

    def get_breadcrumbs_items(self):
        return _breadcrumbs(_subscribers_crumb(), {"url": "", "label": self.subscriber.email})

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "subscriber": self.subscriber}

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            subscriber=self.subscriber,
            subscription_count=self.subscriber.subscriptions.count(),
            event_count=self.subscriber.events.count(),
            **kwargs,
        )

    def form_valid(self, form):
        gdpr.erase_subscriber(self.subscriber, actor=self.request.user)
        messages.success(self.request, _("The subscriber's personal data was erased; the address stays suppressed."))
        return redirect("subscribers_subscriber:inspect", self.subscriber.pk)


# --- Segments: the builder's live count ----------------------------------------------------------

segment_permissions = ModelPolicyChecker(
    Segment, denied_message=gettext_lazy("Building segments needs the permission to add or change segments.")
)
# Subscribers in the builder's sample (only for users who may see subscribers).
SAMPLE_SIZE = 10


class SegmentPreviewView(View):
    """POST ``rules`` (the builder's JSON): {"count", "sample", "errors"} as the editor edits.

    The count is Audience(every list, rules): who the segment would reach if a campaign went to
    every list, the same compiled rules a campaign's snapshot applies. Rules that do not check
    (half-built ones, as the editor types, or hostile ones) answer {"count": null, "errors": [the
    messages the form would show]}: an answer, not a failure, so a half-typed rule does not show as
    an error in the browser; nothing is run for them. Staff who may
    add or change segments only; the sample (addresses) only for those who may also view
    subscribers.
    """

    http_method_names = ["post"]

    def dispatch(self, request, *args, **kwargs):
        if not any(segment_permissions.user_has(request.user, action) for action in ("add", "change")):
            return JsonResponse({"errors": [str(segment_permissions.denied_message)]}, status=403)
        return super().dispatch(request, *args, **kwargs)

    def post(self, request):
        try:
            rules = RulesField().clean(request.POST.get("rules", ""))
        except ValidationError as error:
            return JsonResponse({"count": None, "sample": [], "errors": error.messages})
        matching = Audience(MailingList.objects.all(), rules).subscribers()
        sample = []
        if permission_checker.user_has(request.user, EXPORT):
            sample = [
                {
                    "email": subscriber.email,
                    "name": subscriber.name,
                    "url": reverse("subscribers_subscriber:inspect", args=[subscriber.pk]),
                }
                for subscriber in matching.order_by("-created_at", "-pk")[:SAMPLE_SIZE]
            ]
        return JsonResponse({"count": matching.count(), "sample": sample, "errors": []})
