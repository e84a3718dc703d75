"""Forms and filters of the campaign admin: the "Send as newsletter" form and the campaign listing filters."""

import django_filters
from django import forms
from django.core.validators import validate_email
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.widgets import AdminDateTimeInput

from campaigns.models import Campaign, Delivery
from campaigns.sending.mailers import mailer_names
from mail.addresses import (
    HeaderValueError,
    clean_header_text,
    format_address,
    parse_address,
    validate_header_address,
)
from subscribers.audience import Audience
from subscribers.forms import ModelIdsField
from subscribers.models import MailingList, Segment


def sendable_counts() -> dict[int, int]:
    """{list id: its audience} for every list, in one query (``Audience.counts_per_list``)."""
    return Audience.counts_per_list()


class ListsField(ModelIdsField):
    """Checkboxes labelled with each list's audience (who can receive it now)."""

    widget = forms.CheckboxSelectMultiple

    def __init__(self, *args, counts: dict[int, int] | None = None, **kwargs):
        self.counts = counts or {}
        super().__init__(*args, **kwargs)

    def label_from_instance(self, obj):
        # Labelled as on the lists page and the dashboard (subscribers.audience).
        receiving = _("%(count)s can receive") % {"count": f"{self.counts.get(obj.pk, 0):,}"}
        return f"{obj.name} ({receiving})"


class AudienceForm(forms.Form):
    """Who a send goes to: lists, narrowed by a segment. On its own it is the send form's live count
    (AudienceCountView); the send form extends it, so both read the same two fields the same way."""

    lists = ListsField(queryset=MailingList.objects.all(), label=gettext_lazy("Send to"))
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.all(),
        required=False,
        label=gettext_lazy("Only those in the segment"),
        empty_label=gettext_lazy("Everyone on the chosen lists"),
        help_text=gettext_lazy("Narrows the lists to the subscribers a saved segment's rules match."),
    )

    def __init__(self, *args, counts=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lists"].counts = sendable_counts() if counts is None else counts
        if not self.fields["segment"].queryset.exists():
            self.fields["segment"].widget = forms.HiddenInput()  # no segments yet: nothing to choose

    def audience(self) -> Audience:
        """The Audience of the cleaned lists and segment (the form must be valid)."""
        return Audience(list(self.cleaned_data["lists"]), self.cleaned_data["segment"])


class SendCampaignForm(AudienceForm):
    """Who gets the issue, from whom, and when. Times are read in the current (editor's) time zone."""

    NOW, LATER = "now", "later"

    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    from_email = forms.CharField(
        label=gettext_lazy("Sender"),
        max_length=320,
        help_text=gettext_lazy('e.g. "The Broadsheet <news@example.com>"'),
    )
    reply_to = forms.EmailField(label=gettext_lazy("Reply-to"), required=False, validators=[validate_header_address])
    mailer = forms.ChoiceField(
        label=gettext_lazy("Mailer"), required=False, help_text=gettext_lazy("Blank: the first list's mailer.")
    )
    when = forms.ChoiceField(
        choices=[(NOW, gettext_lazy("Send now")), (LATER, gettext_lazy("Schedule for a date and time"))],
        widget=forms.RadioSelect,
        initial=NOW,
        label=gettext_lazy("When"),
    )
    send_at = forms.DateTimeField(label=gettext_lazy("Send at"), required=False, widget=AdminDateTimeInput)
    # A/B subject test (campaigns.abtests): the subject above is variant A.
    ab_test = forms.BooleanField(
        label=gettext_lazy("Test subjects first (A/B test)"),
        required=False,
        help_text=gettext_lazy(
            "Send each subject to an even part of a test share of the audience; after the test's "
            "window the subject with the most unique opens (or clicks) by people goes to the rest."
        ),
    )
    subject_b = forms.CharField(label=gettext_lazy("Subject B"), max_length=200, required=False)
    subject_c = forms.CharField(label=gettext_lazy("Subject C"), max_length=200, required=False)
    subject_d = forms.CharField(label=gettext_lazy("Subject D"), max_length=200, required=False)
    ab_percent = forms.IntegerField(
        label=gettext_lazy("Test share (%)"), min_value=1, max_value=90, initial=20, required=False
    )
    ab_window_hours = forms.IntegerField(
        label=gettext_lazy("Choose the winner after (hours)"), min_value=1, max_value=7 * 24, initial=4, required=False
    )
    ab_metric = forms.ChoiceField(
        label=gettext_lazy("Winner by"),
        choices=[("opens", gettext_lazy("unique opens")), ("clicks", gettext_lazy("unique clicks"))],
        initial="opens",
        required=False,
    )
    AB_FIELDS = ("subject_b", "subject_c", "subject_d", "ab_percent", "ab_window_hours", "ab_metric")

    def __init__(self, *args, counts=None, **kwargs):
        super().__init__(*args, counts=counts, **kwargs)
        self.fields["mailer"].choices = [("", _("The list's mailer")), *((name, name) for name in mailer_names())]
        if len(self.fields["mailer"].choices) <= 2:
            self.fields["mailer"].widget = forms.HiddenInput()  # one mailer: nothing to choose
        self.fields["send_at"].help_text = _("In your time zone (%(zone)s).") % {
            "zone": timezone.get_current_timezone_name()
        }

    def clean_from_email(self):
        value = self.cleaned_data["from_email"].strip()
        try:
            name, address = parse_address(value)
            validate_email(address)
            return format_address(address, name)
        except (HeaderValueError, forms.ValidationError):
            raise forms.ValidationError(
                _('Enter an address, optionally with a name: "Name <address@example.com>".')
            ) from None

    def clean_subject(self):
        return clean_header_text(self.cleaned_data["subject"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("when") == self.LATER:
            send_at = cleaned.get("send_at")
            if send_at is None:
                self.add_error("send_at", _("Choose when to send it."))
            elif send_at <= timezone.now():
                self.add_error("send_at", _("Choose a time in the future."))
        else:
            cleaned["send_at"] = None
        if cleaned.get("ab_test"):
            self._clean_ab_test(cleaned)
        return cleaned

    def _clean_ab_test(self, cleaned):
        """The subjects to test (A first, empty ones left out), each header-safe, two to four different."""
        subjects = [cleaned.get("subject") or ""]
        for name in ("subject_b", "subject_c", "subject_d"):
            try:
                subjects.append(clean_header_text(cleaned.get(name) or ""))
            except forms.ValidationError as error:
                self.add_error(name, error)
        subjects = [subject for subject in subjects if subject]
        if len(subjects) < 2 or len(set(subjects)) != len(subjects):
            self.add_error("subject_b", _("An A/B test needs two to four different subjects."))
        for name, default in (("ab_percent", 20), ("ab_window_hours", 4), ("ab_metric", "opens")):
            if cleaned.get(name) in (None, ""):
                cleaned[name] = default
        cleaned["ab_subjects"] = subjects


class ResendForm(forms.Form):
    """Send a sent campaign again to those who did not open it (campaigns.resends)."""

    subject = forms.CharField(
        label=gettext_lazy("New subject"),
        max_length=200,
        help_text=gettext_lazy("A different subject gives the issue a second chance."),
    )
    delay_hours = forms.IntegerField(
        label=gettext_lazy("Send after (hours)"),
        min_value=0,
        max_value=7 * 24,
        initial=24,
        help_text=gettext_lazy("0 sends now. Whoever opens the first email meanwhile is left out."),
    )

    def clean_subject(self):
        return clean_header_text(self.cleaned_data["subject"])


def parse_addresses(value: str) -> list[str]:
    """Comma/semicolon/whitespace-separated addresses, validated; raises ValidationError."""
    addresses = [part for part in value.replace(";", ",").replace("\n", ",").split(",") if part.strip()]
    addresses = [part.strip() for part in addresses]
    for address in addresses:
        validate_email(address)
        validate_header_address(address)
    return addresses


class TestSendForm(forms.Form):
    test_addresses = forms.CharField(
        label=gettext_lazy("Send a test to"),
        max_length=1000,
        help_text=gettext_lazy("Comma-separated addresses. The test is marked [TEST] and shows the latest draft."),
    )
    as_subscriber = forms.CharField(
        label=gettext_lazy("As subscriber"),
        required=False,
        max_length=254,
        help_text=gettext_lazy(
            "Optional: a subscriber's address or id, whose name and attributes fill the merge tags "
            "(else a sample reader's)."
        ),
    )

    # At most a handful: a test send is not a way around the campaign ledger.
    MAX_ADDRESSES = 10

    def clean_test_addresses(self):
        try:
            addresses = parse_addresses(self.cleaned_data["test_addresses"])
        except forms.ValidationError:
            raise forms.ValidationError(_("Enter valid email addresses, separated by commas.")) from None
        if not addresses:
            raise forms.ValidationError(_("Enter at least one address."))
        if len(addresses) > self.MAX_ADDRESSES:
            raise forms.ValidationError(
                _("Send a test to at most %(count)s addresses.") % {"count": self.MAX_ADDRESSES}
            )
        return addresses


class CampaignFilterSet(WagtailFilterSet):
    status = django_filters.ChoiceFilter(
        label=gettext_lazy("Status"), choices=Campaign.Status.choices, empty_label=gettext_lazy("Any status")
    )
    list = django_filters.ModelChoiceFilter(
        field_name="lists",
        queryset=MailingList.objects.all(),
        label=gettext_lazy("List"),
        empty_label=gettext_lazy("Any list"),
    )
    created = django_filters.DateFromToRangeFilter(
        field_name="created_at", label=gettext_lazy("Created"), widget=DateRangePickerWidget
    )

    class Meta:
        model = Campaign
        fields = ["status", "list", "created"]


class DeliveryFilterForm(forms.Form):
    """Search and status filter above a campaign's deliveries table."""

    q = forms.CharField(label=gettext_lazy("Search by address"), required=False)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=[("", gettext_lazy("Any status")), *Delivery.Status.choices],
        required=False,
    )

    def filter(self, queryset):
        if not self.is_valid():
            return queryset
        if query := self.cleaned_data["q"].strip():
            queryset = queryset.filter(Q(email__icontains=query) | Q(name__icontains=query))
        if status := self.cleaned_data["status"]:
            queryset = queryset.filter(status=status)
        return queryset
