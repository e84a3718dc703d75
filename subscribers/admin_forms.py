"""Forms of the subscribers admin: the import steps, the erasure confirmation, the listing filters,
the attributes editor and the segment rule builder."""

import json
from itertools import zip_longest

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join, json_script
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet

from subscribers import segments
from subscribers.attributes import MAX_NAME_LENGTH, MAX_VALUE_LENGTH, attributes_from_pairs, display_value
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


# --- Subscriber attributes: a key/value editor ----------------------------------------------------


class AttributesWidget(forms.Widget):
    """Rows of name + value inputs for a flat JSON object (the subscriber's attributes).

    Posted as parallel lists ``<name>-name`` and ``<name>-value`` plus a marker ``<name>`` (so a
    form whose rows were all removed still says "no attributes" rather than "field not sent").
    attributes-editor.js adds and removes rows; without JavaScript one blank row is offered and a
    row whose name and value are cleared is dropped.
    """

    class Media:
        js = ["subscribers/attributes-editor.js"]

    def value_from_datadict(self, data, files, name):
        names, values = data.getlist(f"{name}-name"), data.getlist(f"{name}-value")
        return list(zip_longest(names, values, fillvalue=""))

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}-name" not in data and f"{name}-value" not in data

    def _row(self, name, key, value, first_id=""):
        id_attr = format_html(' id="{}"', first_id) if first_id else ""
        return format_html(
            "<tr>"
            '<td><input type="text" name="{}-name" value="{}"{} aria-label="{}" maxlength="{}" autocomplete="off"></td>'
            '<td><input type="text" name="{}-value" value="{}" aria-label="{}" maxlength="{}" autocomplete="off"></td>'
            '<td><button type="button" class="button button-small button-secondary" data-remove-row>{}</button></td>'
            "</tr>",
            name, key, id_attr, _("Name"), MAX_NAME_LENGTH,
            name, value, _("Value"), MAX_VALUE_LENGTH,
            _("Remove"),
        )  # fmt: skip

    def render(self, name, value, attrs=None, renderer=None):
        pairs = [(key, val) for key, val in (value or []) if key or val] + [("", "")]
        first_id = (attrs or {}).get("id", "")
        rows = format_html_join(
            "", "{}", ((self._row(name, key, val, first_id if i == 0 else ""),) for i, (key, val) in enumerate(pairs))
        )
        return format_html(
            '<div class="attributes-editor" data-attributes-editor>'
            '<input type="hidden" name="{}" value="rows">'
            '<table class="attributes-editor__rows"><thead><tr><th scope="col">{}</th><th scope="col">{}</th>'
            '<th scope="col"><span class="w-sr-only">{}</span></th></tr></thead><tbody data-rows>{}</tbody></table>'
            "<template data-row-template>{}</template>"
            '<button type="button" class="button button-small button-secondary" data-add-row>{}</button>'
            "</div>",
            name, _("Name"), _("Value"), _("Remove"), rows, self._row(name, "", ""), _("Add a field"),
        )  # fmt: skip


class AttributesField(forms.Field):
    """A subscriber's attributes edited as name/value rows; cleans to a flat {name: text} dict
    following subscribers.attributes (names, text values, sizes). Never raises anything else."""

    widget = AttributesWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", gettext_lazy("Attributes"))
        kwargs.setdefault(
            "help_text",
            gettext_lazy("Merge fields: a name (e.g. city, member_since) and its text (e.g. Leeds)."),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, dict):  # by name, as the subscriber's page lists them (jsonb keeps no order)
            return [(str(key), display_value(val)) for key, val in sorted(value.items())]
        return value if isinstance(value, list) else []

    def to_python(self, value):
        if isinstance(value, dict):  # an initial value, not posted rows
            return value
        rows = value if isinstance(value, list) else []
        return attributes_from_pairs(rows)


# --- Segment rules: a builder (rows of field, operator, value; all/any; one nested group) -------------


class RulesWidget(forms.Textarea):
    """The segment's rules as JSON in a textarea, which segment-builder.js hides behind rows of
    field / operator / value (from ``segments.schema()``) and keeps in step; it also asks the
    preview view for the live count and a sample as the editor edits. Without JavaScript the JSON
    itself can be edited (and is checked the same way)."""

    class Media:
        js = ["subscribers/segment-builder.js"]
        css = {"all": ["subscribers/segment-builder.css"]}

    def render(self, name, value, attrs=None, renderer=None):
        textarea = super().render(name, value, {**(attrs or {}), "data-rules-input": "", "rows": 8}, renderer)
        schema = segments.schema()
        schema["choices"]["list"] = [[item.pk, item.name] for item in MailingList.objects.order_by("name")]
        schema["text"] = {
            "match_prefix": _("Subscribers who match"),
            "match_suffix": _("of these rules:"),
            "group_prefix": _("a group matching"),
            "add_rule": _("Add a rule"),
            "add_group": _("Add a group"),
            "remove": _("Remove"),
            "field": _("What the rule looks at"),
            "operator": _("How it compares"),
            "attribute_name": _("Attribute name"),
            "value": _("Value"),
            "counting": _("Counting…"),
            "count": _("%(count)s subscribers can receive a list and match."),
            "sample": _("For example:"),
            "failed": _("The count could not be updated."),
        }
        return format_html(
            '<div class="segment-builder" data-segment-builder data-preview-url="{}">{}{}'
            '<div data-builder-rows></div><div class="segment-builder__preview" data-preview aria-live="polite"></div>'
            "</div>",
            reverse("subscribers_segment:preview"),
            textarea,
            json_script(schema, f"{attrs.get('id', name) if attrs else name}-schema"),
        )


class RulesField(forms.Field):
    """A segment's rules, cleaned by ``segments.parse_rules`` (so nothing the database would refuse or
    misread gets in) and checked further: at least one rule, every list named still there."""

    widget = RulesWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("label", gettext_lazy("Rules"))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return json.dumps(value, ensure_ascii=False, indent=1) if isinstance(value, dict) else value

    def to_python(self, value):
        if isinstance(value, dict):
            data = value
        else:
            try:
                data = json.loads(value or "")
            except (TypeError, ValueError, RecursionError):
                raise ValidationError(_("These rules could not be read; build them with the rows above.")) from None
        rules = segments.parse_rules(data)
        if not rules["rules"]:
            raise ValidationError(_("Add at least one rule."))
        named = segments.list_ids(rules)
        missing = named - set(MailingList.objects.filter(pk__in=named).values_list("pk", flat=True))
        if missing:
            raise ValidationError(_("A rule names a list that no longer exists: choose another."))
        return rules
