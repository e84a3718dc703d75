"""Public endpoints of our own tracking (campaigns.click_tracking): the link redirect and the open pixel."""

import base64
import logging

from django.core import signing
from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from campaigns.click_tracking import personal_url, read_delivery_token, read_link
from campaigns.models import Delivery
from campaigns.tracking import CLICKED, OPENED, OWN_ESP, TrackingEvent, own_event_id, record_tracking_event
from subscribers.models import MAX_ID
from subscribers.views import client_ip

logger = logging.getLogger(__name__)

# The smallest transparent GIF (1x1).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _record(request, campaign_id: int, event_type: str, url: str = ""):
    """Record an open or click for the delivery in ``?d=``; a bad or foreign token records nothing.

    HEAD requests are recorded too: campaigns.bots counts them as a machine's (link scanners).

    Tracking must never break the reader's link or image, so a database error is logged, not raised.
    """
    delivery_id = read_delivery_token(request.GET.get("d", ""))
    if delivery_id is None or not 0 < campaign_id <= MAX_ID:
        return
    user_agent = request.headers.get("user-agent", "")[:500]
    try:
        delivery = Delivery.objects.filter(pk=delivery_id, campaign_id=campaign_id).only("pk", "email").first()
        if delivery is None:
            return
        record_tracking_event(
            TrackingEvent(
                esp=OWN_ESP,
                event_type=event_type,
                recipient=delivery.email,
                timestamp=timezone.now(),
                event_id=own_event_id(),
                url=url,
                delivery_id=delivery.pk,
                payload={"user_agent": user_agent},
                user_agent=user_agent,
                client_ip=client_ip(request) or "",
                method=request.method,
            )
        )
    except DatabaseError:
        logger.exception("Could not record a %s for delivery %s", event_type, delivery_id)


@require_safe
@never_cache
def click(request, signed):
    """Redirect (302) to the link signed in ``signed``, recording the click; 400 for a forged value."""
    try:
        campaign_id, url = read_link(signed)
    except signing.BadSignature:
        return HttpResponseBadRequest(_("This link is not valid."))
    _record(request, campaign_id, CLICKED, url)
    if "%%" in url:
        # A link with merge tags: the recipient's values came in the query (click_tracking).
        url = personal_url(url, request.GET)
    return HttpResponseRedirect(url)


@require_safe
@never_cache
def open_pixel(request, campaign_id):
    """A 1x1 transparent GIF, recording an open for the delivery in ``?d=``."""
    _record(request, campaign_id, OPENED)
    return HttpResponse(PIXEL_GIF, content_type="image/gif")
