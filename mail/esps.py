"""The ESP registry: one declaration per email service provider, read by everything that needs its facts.

Settings parsing (``newsletter_site.config``: ``EMAIL_URL=anymail://NAME``, credentials and webhook
signature keys from the environment), the transport choice (``campaigns.sending.transports``:
recipients per batch call and the inline merge syntax) and the tracking webhooks
(``campaigns.webhooks``: which view, which signature, which bounces are soft) all read ``ESPS``.
In the manner of django-anymail's per-ESP backends, the dataclass holds what is shared and each
declaration states only what differs. Adding an ESP is one declaration here (docs/sending.md).

Plain Python with no Django imports: the settings module reads it while settings are being made.
Vendor references: Postmark https://postmarkapp.com/developer/webhooks/webhooks-overview,
Mailgun https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks/,
SendGrid https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features,
Amazon SNS https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html,
Resend https://resend.com/docs/dashboard/webhooks/verify-webhooks-requests,
MailerSend https://developers.mailersend.com/api/v1/webhooks.html#security.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ESP:
    """What Broadsheet needs to know about one ESP (anymail backend module ``name``)."""

    # anymail's module name, as in ``EMAIL_URL=anymail://NAME`` and ``/anymail/NAME/tracking/``.
    name: str
    # anymail setting (without the ESP prefix) holding the API credential; the environment
    # variable has the full setting's name (``POSTMARK_SERVER_TOKEN``). None: read elsewhere.
    credential_setting: str | None = "API_KEY"
    # anymail setting (without the prefix) holding the key that verifies the ESP's own webhook
    # signature; the environment variable again has the full name. None: basic auth only.
    signature_setting: str | None = None
    # Recipients per API call when the ESP can batch inline content (STANDARDS.md, ESP limits).
    batch_limit: int = 1
    # The ESP's inline merge-field syntax, FIELD standing for the field name. Empty: anymail
    # cannot batch inline content for this ESP (it needs a stored template), so each recipient
    # gets their own message over one connection.
    merge_field: str = ""
    # Values of the raw event's bounce type (at ``bounce_type_path``) that anymail reports as
    # "bounced" but are temporary.
    soft_bounce_types: frozenset[str] = frozenset()
    bounce_type_path: tuple[str, ...] = ("Type",)
    # The tracking webhook view (dotted path); empty when the ESP has none.
    tracking_view: str = ""
    # Python packages the backend or the signature check needs beyond anymail (the system check
    # names a missing one; requirements.txt installs them).
    packages: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        """anymail's setting prefix for this ESP (``AMAZON_SES``)."""
        return self.name.upper()

    @property
    def backend(self) -> str:
        return f"anymail.backends.{self.name}.EmailBackend"

    @property
    def credential_variable(self) -> str | None:
        return f"{self.prefix}_{self.credential_setting}" if self.credential_setting else None

    @property
    def signature_variable(self) -> str | None:
        return f"{self.prefix}_{self.signature_setting}" if self.signature_setting else None

    @property
    def batches(self) -> bool:
        """Does our transport send one API call for many recipients (inline merge fields)?"""
        return bool(self.merge_field)

    def is_soft_bounce(self, esp_event) -> bool:
        """Is this raw ESP event (anymail's ``esp_event``) a temporary bounce?"""
        value = esp_event
        for key in self.bounce_type_path:
            value = value.get(key) if isinstance(value, dict) else None
        return isinstance(value, str) and value in self.soft_bounce_types

    def merge_field_for(self, field: str) -> str:
        """The placeholder for merge field ``field`` in this ESP's syntax (``%recipient.name%``)."""
        return self.merge_field.replace("FIELD", field)


def _anymail_view(module: str, view: str) -> str:
    return f"anymail.webhooks.{module}.{view}"


ESPS: dict[str, ESP] = {
    esp.name: esp
    for esp in (
        ESP(
            "postmark",
            credential_setting="SERVER_TOKEN",
            batch_limit=500,
            # Postmark's "SoftBounce"; a virus notification says nothing about the address.
            soft_bounce_types=frozenset({"SoftBounce", "VirusNotification"}),
            tracking_view=_anymail_view("postmark", "PostmarkTrackingWebhookView"),
        ),
        ESP(
            "mailgun",
            signature_setting="WEBHOOK_SIGNING_KEY",
            batch_limit=1000,
            merge_field="%recipient.FIELD%",
            tracking_view=_anymail_view("mailgun", "MailgunTrackingWebhookView"),
        ),
        ESP(
            "sendgrid",
            signature_setting="TRACKING_WEBHOOK_VERIFICATION_KEY",
            packages=("cryptography",),
            batch_limit=1000,
            tracking_view=_anymail_view("sendgrid", "SendGridTrackingWebhookView"),
        ),
        ESP(
            "brevo",
            batch_limit=1000,
            merge_field="{{ params.FIELD }}",
            tracking_view=_anymail_view("brevo", "BrevoTrackingWebhookView"),
        ),
        ESP(
            "mailjet",
            batch_limit=50,
            merge_field="[[var:FIELD]]",
            tracking_view=_anymail_view("mailjet", "MailjetTrackingWebhookView"),
        ),
        ESP(
            "resend",
            signature_setting="SIGNING_SECRET",
            packages=("svix",),
            batch_limit=100,
            tracking_view=_anymail_view("resend", "ResendTrackingWebhookView"),
        ),
        ESP(
            "sparkpost",
            batch_limit=1000,
            merge_field="{{FIELD}}",
            tracking_view=_anymail_view("sparkpost", "SparkPostTrackingWebhookView"),
        ),
        ESP(
            "mailersend",
            credential_setting="API_TOKEN",
            signature_setting="SIGNING_SECRET",
            batch_limit=500,
            tracking_view=_anymail_view("mailersend", "MailerSendTrackingWebhookView"),
        ),
        ESP(
            "amazon_ses",
            credential_setting=None,  # boto3 reads AWS_* itself
            batch_limit=50,
            # https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types
            soft_bounce_types=frozenset({"Transient", "Undetermined"}),
            bounce_type_path=("bounce", "bounceType"),
            # SNS signs every message with an Amazon certificate: verified by our subclass,
            # since anymail does not (yet) check SNS signatures.
            packages=("boto3", "cryptography"),
            tracking_view="campaigns.webhooks.AmazonSESTrackingWebhookView",
        ),
        # anymail's test backend (tests and the benchmark): batches like a real ESP, no webhooks.
        ESP("test", credential_setting=None, batch_limit=1000, merge_field="{{FIELD}}"),
    )
}


def esp_for_backend(backend_path: str) -> ESP | None:
    """The declaration for an anymail backend path (``anymail.backends.NAME.EmailBackend``), else None."""
    parts = backend_path.split(".")
    if len(parts) == 4 and parts[:2] == ["anymail", "backends"]:
        return ESPS.get(parts[2])
    return None
