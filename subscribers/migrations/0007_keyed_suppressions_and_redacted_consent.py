"""Issue 8 finding 8: suppression hashes keyed (HMAC), link tokens out of consent records.

Existing suppressions are unkeyed SHA-256 of the normalised address, which cannot be reversed.
They are marked ``keyed=False``; those whose address is still known (a live subscriber row) are
re-keyed here, the others stay matchable and are re-keyed the first time their address comes
back (``SuppressionQuerySet.matching``). The regular expressions and the key derivation are copied
from subscribers/tokens.py and subscribers/models.py as they were when this migration was written.
"""

import hashlib
import re

from django.conf import settings
from django.db import migrations, models
from django.utils.crypto import salted_hmac

TOKEN = re.compile(r"[0-9a-f]{32}(?:-\d+)*(?:_\d+)?(?:\.[A-Za-z0-9_-]+){1,2}")
QUERY = re.compile(r"((?:https?://|/)[^\s?#()]*)[?#][^\s()]*")


def redact(text):
    return TOKEN.sub("[link]", QUERY.sub(r"\1", text or ""))


def keyed_hash(normalised):
    secret = getattr(settings, "SUPPRESSION_KEY", "") or settings.SECRET_KEY
    return salted_hmac("broadsheet.subscribers.suppression", normalised, secret=secret, algorithm="sha256").hexdigest()


def forwards(apps, schema_editor):
    Suppression = apps.get_model("subscribers", "Suppression")
    Subscriber = apps.get_model("subscribers", "Subscriber")
    Subscription = apps.get_model("subscribers", "Subscription")
    SubscriberEvent = apps.get_model("subscribers", "SubscriberEvent")

    Suppression.objects.update(keyed=False)
    legacy = dict(Suppression.objects.values_list("email_hash", "pk"))
    if legacy:
        for normalised in Subscriber.objects.values_list("email_normalised", flat=True).iterator(chunk_size=2000):
            pk = legacy.get(hashlib.sha256(normalised.encode()).hexdigest())
            if pk is not None:
                Suppression.objects.filter(pk=pk).update(email_hash=keyed_hash(normalised), keyed=True)

    for pk, detail in Subscription.objects.exclude(consent_detail="").values_list("pk", "consent_detail").iterator():
        clean = redact(detail)
        if clean != detail:
            Subscription.objects.filter(pk=pk).update(consent_detail=clean[:500])
    for event in SubscriberEvent.objects.exclude(detail={}).only("pk", "detail").iterator():
        if not isinstance(event.detail, dict):
            continue
        clean = {k: redact(v) if isinstance(v, str) else v for k, v in event.detail.items()}
        if clean != event.detail:
            SubscriberEvent.objects.filter(pk=event.pk).update(detail=clean)


class Migration(migrations.Migration):
    dependencies = [
        ("subscribers", "0006_mailinglist_mailer"),
    ]

    operations = [
        migrations.AddField(
            model_name="suppression",
            name="keyed",
            field=models.BooleanField(default=True),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
