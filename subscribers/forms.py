"""Visitor forms: subscribe (with a honeypot) and the preference centre. They parse; services act."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from mail.addresses import clean_header_text
from subscribers.languages import language_choices
from subscribers.models import MAX_ID, normalise_email


class ModelIdsField(forms.ModelMultipleChoiceField):
    """Several rows chosen by id; an id no row can have is "not a valid choice", never a query.

    Django checks each value with an exact lookup (guarded against overflow) but then runs an
    ``__in`` query that is not: ``99999999999999999999`` raised OverflowError on SQLite (a 500).
    """

    def _check_values(self, value):
        for pk in value if isinstance(value, (list, tuple)) else ():
            try:
                in_range = 0 < int(str(pk)) <= MAX_ID
            except ValueError:
                in_range = True  # Not a number: Django's own check names it.
            if not in_range:
                raise ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice", params={"value": pk}
                )
        return super()._check_values(value)


class ListCheckboxes(ModelIdsField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        return obj.name


class SubscribeForm(forms.Form):
    email = forms.CharField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "name@example.com"}),
    )
    name = forms.CharField(
        label=_("Name (optional)"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    lists = ListCheckboxes(
        label=_("Newsletters"),
        queryset=None,
        error_messages={"required": _("Choose at least one newsletter.")},
    )
    # Honeypot: hidden from people by CSS (.honeypot) and from screen readers; bots fill it in.
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )
    # Path of the page a subscribe block sat on, for the consent record (optional).
    source = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def __init__(self, *args, lists, **kwargs):
        super().__init__(*args, **kwargs)
        # The lists marked "preselected" (the main list) start ticked, so the common case is one
        # field and a button. Consent is still the visitor's own act: they submit the form next to
        # the consent sentence and then confirm by email (double opt-in).
        self.fields["lists"].queryset = lists
        self.fields["lists"].initial = [m.pk for m in lists if m.preselected]

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        try:
            normalise_email(email)
        except ValidationError:
            raise ValidationError(_("Enter a valid email address, like name@example.com."), code="invalid") from None
        return email

    def clean_name(self):
        # The name goes into the To: header of every email: no line breaks or control characters.
        return clean_header_text(self.cleaned_data["name"])

    def clean_source(self):
        source = self.cleaned_data["source"].strip()
        # Only a local path: this lands in the consent record and must not point elsewhere.
        if not source.startswith("/") or source.startswith("//"):
            return ""
        return source

    @property
    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get("website"))


class PreferencesForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    lists = ListCheckboxes(label=_("Newsletters"), queryset=None, required=False)
    # Optional so a form without it (an old page still open in a tab) changes no language.
    language = forms.ChoiceField(label=_("Language of our emails"), choices=language_choices, required=False)

    def __init__(self, *args, lists, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lists"].queryset = lists

    def clean_name(self):
        return clean_header_text(self.cleaned_data["name"])
