"""ESP tracking webhooks: ``/anymail/<esp>/tracking/``, authenticated always, never a 500 for a bad body.

anymail's views parse each ESP's format and check its basic auth and signatures; this module
decides which of them are reachable and what a hostile request gets back:

- Only the ESPs in ``BROADSHEET["TRACKING_WEBHOOKS"]`` are routed; any other name is a 404, and so
  is every ESP when none is configured.
- Every event must carry the basic-auth secret (``ANYMAIL_WEBHOOK_SECRET``), whatever the ESP and
  whatever the mailer (an ESP's SMTP relay posts events too). anymail only warns when no secret is
  set; here nothing is accepted without one (and ``check_webhook_settings`` stops the site).
- The ESP's own signature is verified where it has one (``mail.esps``: Mailgun's signing key,
  SendGrid's signed events, MailerSend's and Resend's signing secrets, Amazon SNS's certificate
  signature, which anymail does not check yet: ``AmazonSESTrackingWebhookView`` below).
- Failed authentication is a 400 (anymail's answer; SNS gets the 401 challenge it needs first), a
  body that is too big a 413, a body anymail cannot parse (not UTF-8, not JSON, not the shape the
  ESP sends) a 400. A database error while recording stays a 500 so that the ESP retries.
"""

import base64
import binascii
import importlib.util
import logging
import re
from urllib.parse import urlsplit

import requests
from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.signals import tracking
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView as AnymailAmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBasicAuthMixin
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from campaigns.tracking import record_tracking_events, tracking_event
from mail.esps import ESPS

logger = logging.getLogger(__name__)

# Larger than any ESP's event batch (SendGrid and SparkPost post up to about 1 MB of events).
MAX_BODY_BYTES = 5 * 1024 * 1024


def enabled_esps() -> list[str]:
    return [name for name in settings.BROADSHEET["TRACKING_WEBHOOKS"] if ESPS.get(name) and ESPS[name].tracking_view]


def _refuse(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
def tracking_webhook(request, esp: str):
    """One ESP's tracking webhook: authenticate, parse with anymail, send ``anymail.signals.tracking``."""
    if esp not in enabled_esps():
        raise Http404("No tracking webhook for this ESP.")
    if request.method == "HEAD":
        return HttpResponse()  # some ESPs check the URL with a HEAD when it is configured
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST", "HEAD"])
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        logger.error("Tracking webhook for %s refused: ANYMAIL_WEBHOOK_SECRET is not set.", esp)
        return _refuse(403, "Tracking webhooks need ANYMAIL_WEBHOOK_SECRET.")
    try:
        length = int(request.headers.get("content-length") or 0)
    except ValueError:
        return HttpResponseBadRequest("Bad Content-Length.")
    if length > MAX_BODY_BYTES:
        return _refuse(413, "Request body too large.")
    view_class = import_string(ESPS[esp].tracking_view)
    if not request.headers.get("authorization") and view_class is AmazonSESTrackingWebhookView:
        # Amazon SNS sends basic auth only after a 401 challenge (anymail's own SES view does this).
        response = _refuse(401, "Authentication required.")
        response["WWW-Authenticate"] = 'Basic realm="Anymail WEBHOOK_SECRET"'
        return response
    try:
        view = view_class()
    except (ImproperlyConfigured, ImportError):
        # A missing signing key or package: the system check reports it; never a 500 to the ESP.
        logger.exception("Tracking webhook for %s is misconfigured.", esp)
        return _refuse(403, "This tracking webhook is not configured.")
    view.setup(request, esp=esp)
    try:
        view.run_validators(request)
    except SNSTopicRefused as error:
        logger.warning("Tracking webhook for %s refused: %s", esp, error)
        return _refuse(403, "This SNS topic is not accepted (SES_SNS_TOPIC_ARNS).")
    except AnymailWebhookValidationFailure as error:
        logger.warning("Tracking webhook for %s refused: %s", esp, error)
        return HttpResponseBadRequest("Authentication failed.")
    except RequestDataTooBig:
        return _refuse(413, "Request body too large.")
    except Exception:  # hostile bodies reach anymail's validators (some parse the body)
        return HttpResponseBadRequest("Malformed webhook body.")
    try:
        events = view.parse_events(request)
    except Exception:  # anymail's parsers assume well-formed ESP payloads; anything else is a bad request
        logger.info("Malformed %s webhook body refused.", esp, exc_info=True)
        return HttpResponseBadRequest("Malformed webhook body.")
    if view.signal is tracking:
        # One POST can carry an ESP's whole batch (SendGrid posts up to about 1,000 events):
        # recorded together, set-based (campaigns.tracking.record_tracking_events).
        record_tracking_events([tracking_event(event, view.esp_name) for event in events])
    else:
        for event in events:
            view.signal.send(sender=view_class, event=event, esp_name=view.esp_name)
    return HttpResponse()


# --- Amazon SES: SNS message signatures ------------------------------------------------------

# https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html: the certificate
# must come over HTTPS from an SNS host; these fields, in this order, are what SNS signs.
SNS_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_certificates: dict[str, object] = {}  # URL -> public key; SNS uses a handful of certificates


def fetch_certificate(url: str) -> bytes:
    """The PEM certificate at ``url`` (an SNS host, checked by the caller)."""
    response = requests.get(url, timeout=5, allow_redirects=False)
    response.raise_for_status()
    return response.content


def _sns_public_key(url: str):
    parts = urlsplit(url)
    if parts.scheme != "https" or not SNS_CERT_HOST.match(parts.hostname or "") or not parts.path.endswith(".pem"):
        raise AnymailWebhookValidationFailure("SNS SigningCertURL is not an Amazon SNS certificate URL")
    key = _certificates.get(url)
    if key is None:
        try:
            key = x509.load_pem_x509_certificate(fetch_certificate(url)).public_key()
        except (requests.RequestException, ValueError) as error:
            raise AnymailWebhookValidationFailure("SNS signing certificate could not be loaded") from error
        if len(_certificates) > 32:
            _certificates.clear()
        _certificates[url] = key
    return key


def verify_sns_signature(message) -> None:
    """Raise AnymailWebhookValidationFailure unless ``message`` (a parsed SNS body) is signed by SNS."""
    if not isinstance(message, dict):
        raise AnymailWebhookValidationFailure("SNS message is not a JSON object")
    fields = SNS_SIGNED_FIELDS.get(message.get("Type"))
    algorithm = {"1": hashes.SHA1, "2": hashes.SHA256}.get(message.get("SignatureVersion"))
    if fields is None or algorithm is None:
        raise AnymailWebhookValidationFailure("Unknown SNS message type or signature version")
    text = "".join(
        f"{name}\n{message[name]}\n" for name in fields if name in message and isinstance(message[name], str)
    )
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        key = _sns_public_key(str(message.get("SigningCertURL", "")))
        key.verify(signature, text.encode(), padding.PKCS1v15(), algorithm())
    except (binascii.Error, InvalidSignature, TypeError, ValueError) as error:
        raise AnymailWebhookValidationFailure("SNS message signature is not valid") from error


# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html (SNS topic: account id and
# a name of up to 256 letters, digits, "-" and "_", ".fifo" for a FIFO topic).
SNS_TOPIC_ARN = re.compile(r"^arn:aws(-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")


class SNSTopicRefused(AnymailWebhookValidationFailure):
    """An SNS message from a topic not in SES_SNS_TOPIC_ARNS (answered 403)."""


def check_sns_topic(message) -> None:
    """Raise SNSTopicRefused unless ``message`` (a parsed SNS body) comes from a topic we trust.

    A valid SNS signature proves only that SOME topic sent it: anyone can create a topic in their
    own AWS account and, given the webhook URL with its secret, subscribe it here and publish
    signed "bounces" and "complaints". ``SES_SNS_TOPIC_ARNS`` names the topics SES publishes
    our events to; nothing else is accepted, not even a subscription confirmation.
    """
    allowed = settings.BROADSHEET["SES_SNS_TOPIC_ARNS"]
    topic = message.get("TopicArn") if isinstance(message, dict) else None
    if not allowed:
        raise SNSTopicRefused("SES_SNS_TOPIC_ARNS is not set: no SNS topic is trusted")
    if topic not in allowed:
        raise SNSTopicRefused(f"SNS topic {str(topic)[:300]!r} is not in SES_SNS_TOPIC_ARNS")


class AmazonSESTrackingWebhookView(AnymailAmazonSESTrackingWebhookView):
    """anymail's SES tracking view, also checking the SNS topic and signature (after the basic auth).

    anymail 15 checks the basic auth, that the SNS headers match the body (type and message id)
    and confirms a subscription only with the basic auth; it neither verifies the SNS signature
    nor limits the topics ("Future: could also take a TopicArn or list"): both are done here.
    """

    def validate_request(self, request):
        # anymail runs every validate_request of the class chain, this one first: check the cheap
        # basic auth and topic before anything that may fetch a certificate.
        AnymailBasicAuthMixin.validate_request(self, request)
        message = self._parse_sns_message(request)
        check_sns_topic(message)
        verify_sns_signature(message)


# --- System check ---------------------------------------------------------------------------------


def check_webhook_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Routed tracking webhooks need the basic-auth secret, and each ESP's signature key and package."""
    errors = []
    esps = enabled_esps()
    if not esps:
        return errors
    secret = settings.ANYMAIL.get("WEBHOOK_SECRET")
    if not secret or ":" not in str(secret):
        errors.append(
            checks.Error(
                f"Tracking webhooks are enabled ({', '.join(esps)}) without ANYMAIL_WEBHOOK_SECRET.",
                hint="Set ANYMAIL_WEBHOOK_SECRET=user:long-random-password and put it in the webhook URL "
                "you give the ESP (https://user:password@your-site/anymail/<esp>/tracking/), or set "
                "TRACKING_WEBHOOKS=none.",
                id="broadsheet.E101",
            )
        )
    for name in esps:
        esp = ESPS[name]
        if esp.signature_variable and not settings.ANYMAIL.get(esp.signature_variable):
            errors.append(
                checks.Error(
                    f"The {name} tracking webhook needs {esp.signature_variable} to verify the ESP's signature.",
                    hint=f"Copy it from the {name} dashboard's webhook settings into {esp.signature_variable}.",
                    id="broadsheet.E102",
                )
            )
        if name == "amazon_ses":
            errors += _check_sns_topics()
        for package in esp.packages:
            if importlib.util.find_spec(package) is None:
                errors.append(
                    checks.Error(
                        f"The {name} tracking webhook needs the {package!r} package.",
                        hint="pip install -r requirements.txt",
                        id="broadsheet.E103",
                    )
                )
    return errors


def _check_sns_topics() -> list[checks.CheckMessage]:
    """SES over SNS needs the allow-list of topics (an error, like the secret: see check_sns_topic)."""
    topics = settings.BROADSHEET["SES_SNS_TOPIC_ARNS"]
    if not topics:
        return [
            checks.Error(
                "The amazon_ses tracking webhook is enabled without SES_SNS_TOPIC_ARNS: every SNS "
                "message is refused until the topics SES publishes to are listed.",
                hint="Set SES_SNS_TOPIC_ARNS=arn:aws:sns:<region>:<account>:<topic>[,...] (the topics of "
                "your SES configuration set's event destination); a signature alone proves only that "
                "some AWS account's topic sent an event.",
                id="broadsheet.E104",
            )
        ]
    return [
        checks.Error(
            f"SES_SNS_TOPIC_ARNS holds {topic[:100]!r}, which is not an SNS topic ARN.",
            hint="An SNS topic ARN reads arn:aws:sns:<region>:<12-digit account>:<topic name>.",
            id="broadsheet.E105",
        )
        for topic in topics
        if not SNS_TOPIC_ARN.match(topic)
    ]
