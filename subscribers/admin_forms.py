"""Forms of the subscribers admin: the import steps, the erasure confirmation, the listing filters."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet

from subscribers.importing import CORE_FIELDS, ENCODINGS, ImportFileError, attribute_key, check_text_file
from subscribers.models import ImportJob, MailingList, Subscriber, Subscription

DELIMITER_CHOICES = [("", gettext_lazy("Detect automatically")), (",", gettext_lazy("Comma (,)")),
                     (";", gettext_lazy("Semicolon (;)")), ("\t", gettext_lazy("Tab")),
                     ("|", gettext_lazy("Pipe (|)"))]  # fmt: skip
IGNORE = "-"


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"), help_text=gettext_lazy("A CSV file whose first line names the columns.")
    )
    encoding = forms.ChoiceField(
        label=gettext_lazy("Encoding"),
        choices=list(ENCODINGS.items()),
        initial="utf-8",
        help_text=gettext_lazy('Excel\'s "CSV UTF-8" is UTF-8. Choose Windows-1252 for an older Excel "CSV" file.'),
    )
    delimiter = forms.ChoiceField(label=gettext_lazy("Delimiter"), choices=DELIMITER_CHOICES, required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            check_text_file(upload)
        except ImportFileError as exc:
            raise ValidationError(str(exc)) from None
        return upload


class ImportMappingForm(forms.Form):
    """One choice per CSV column (email, name, language, ignore, or an attribute), lists and mode."""

    lists = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Lists"),
        queryset=MailingList.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Add every row to these."),
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("Mode"),
        choices=ImportJob.Mode.choices,
        widget=forms.RadioSelect,
        initial=ImportJob.Mode.CONFIRM,
    )
    consent_note = forms.CharField(
        max_length=400,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=gettext_lazy("Consent note"),
        help_text=gettext_lazy(
            "Required to subscribe directly: where, when and how these people agreed "
            '(e.g. "Paper sign-up sheet, Leeds book fair, 3 May 2025"). Stored with every subscription.'
        ),
    )
    update_names = forms.BooleanField(
        label=gettext_lazy("Replace names subscribers already have"),
        required=False,
        initial=False,
        help_text=gettext_lazy(
            "Off: the file's name only fills in a missing one, so a name a subscriber typed is kept."
        ),
    )
    encoding = forms.ChoiceField(choices=list(ENCODINGS.items()), widget=forms.HiddenInput)
    delimiter = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, header: list[str], initial_targets: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        names = {"email": _("Email"), "name": _("Name"), "language": _("Language")}
        choices = [(IGNORE, _("Ignore this column")), *[(f, names.get(f, f.capitalize())) for f in CORE_FIELDS],
                   ("attribute", _("Attribute (merge field)"))]  # fmt: skip
        self.column_fields = []
        for index, column in enumerate(header):
            target = initial_targets[index] if index < len(initial_targets) else ""
            core = target if target in CORE_FIELDS else ("attribute" if target else IGNORE)
            label = column or _("Column %(number)s") % {"number": index + 1}
            self.fields[f"col_{index}"] = forms.ChoiceField(label=label, choices=choices, initial=core)
            self.fields[f"attr_{index}"] = forms.CharField(
                label=_("Attribute name"), required=False, initial=attribute_key(column) if column else "",
            )  # fmt: skip
            self.column_fields.append((self[f"col_{index}"], self[f"attr_{index}"]))

    def clean(self):
        data = super().clean()
        # By position, not by header name: two columns may share a name ("Name", "Name").
        column_map, seen = [], set()
        names = {"email": _("email address"), "name": _("name"), "language": _("language")}
        for index, column in enumerate(self.header):
            target = data.get(f"col_{index}")
            if target in CORE_FIELDS:
                if target in seen:
                    raise ValidationError(_("Only one column can be the %(field)s.") % {"field": names[target]})
                seen.add(target)
                column_map.append(target)
            elif target == "attribute":
                name = attribute_key(data.get(f"attr_{index}") or column)
                if not name or name in CORE_FIELDS:
                    self.add_error(f"attr_{index}", _("Give the attribute a name (not email, name or language)."))
                column_map.append(name)
            else:
                column_map.append("")
        if "email" not in seen:
            raise ValidationError(_("Choose the column that holds the email address."))
        if data.get("mode") == ImportJob.Mode.SUBSCRIBE and not (data.get("consent_note") or "").strip():
            self.add_error("consent_note", _("Say where and how these people gave their consent."))
        data["column_map"] = column_map
        return data


class EraseForm(forms.Form):
    confirm_email = forms.CharField(label=gettext_lazy("Type the address to confirm"))

    def __init__(self, *args, subscriber, **kwargs):
        super().__init__(*args, **kwargs)
        self.subscriber = subscriber

    def clean_confirm_email(self):
        value = self.cleaned_data["confirm_email"].strip().lower()
        if value != self.subscriber.email_normalised:
            raise ValidationError(_("This is not the subscriber's address."))
        return value


SUBSCRIBER_SEARCH_FIELDS = ["email", "email_normalised", "name"]


def search_subscribers(queryset, query: str):
    """Subscribers whose address or name contains ``query`` (any case), as the listing searches."""
    condition = Q()
    for name in SUBSCRIBER_SEARCH_FIELDS:
        condition |= Q(**{f"{name}__icontains": query})
    return queryset.filter(condition)


class SubscriberFilterSet(WagtailFilterSet):
    """Listing filters. List and status apply to the same subscription: "unsubscribed from News"."""

    list = django_filters.ModelChoiceFilter(
        queryset=MailingList.objects.all(), label=gettext_lazy("List"), method="by_subscription"
    )
    status = django_filters.ChoiceFilter(
        choices=Subscription.Status.choices, label=gettext_lazy("Subscription status"), method="by_subscription"
    )
    state = django_filters.ChoiceFilter(choices=Subscriber.State.choices, label=gettext_lazy("State"))
    created_at = django_filters.DateFromToRangeFilter(label=gettext_lazy("Added"), widget=DateRangePickerWidget)

    class Meta:
        model = Subscriber
        fields = ["list", "status", "state", "created_at"]

    def by_subscription(self, queryset, name, value):
        return queryset  # Both are applied together in filter_queryset.

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        mailing_list, status = self.form.cleaned_data.get("list"), self.form.cleaned_data.get("status")
        if mailing_list or status:
            subscriptions = Subscription.objects.all()
            if mailing_list:
                subscriptions = subscriptions.filter(list=mailing_list)
            if status:
                subscriptions = subscriptions.filter(status=status)
            queryset = queryset.filter(pk__in=subscriptions.values("subscriber_id"))
        return queryset
