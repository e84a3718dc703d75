"""Visitor pages: subscribe, confirm, unsubscribe (link and RFC 8058 one-click), preference centre.

Views parse the request, call a workflow in ``subscribers.services`` and render. GET requests
never change anything (mail scanners fetch every link); only POSTs do.
"""

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from subscribers import services, tokens
from subscribers.forms import PreferencesForm, SubscribeForm
from subscribers.languages import supported_language
from subscribers.models import MailingList, Subscriber, Subscription, normalise_email

# django-ratelimit's counting (cache.add + cache.incr, fixed windows) on the default cache. The
# app is deliberately not in INSTALLED_APPS: its system check rejects the DatabaseCache we use
# without Redis (increments there are not atomic, so a burst can over-run a limit by a few,
# which is fine for stopping bots and mail-bombing). With REDIS_URL set, counting is atomic.
# The rates are BROADSHEET["SUBSCRIBE_RATE_PER_IP" / "SUBSCRIBE_RATE_PER_ADDRESS"].


def client_ip(request) -> str | None:
    """The visitor's address, for the consent record, the per-IP limit and the tracking endpoints.

    Behind N reverse proxies (settings.BROADSHEET["TRUSTED_PROXY_COUNT"]) REMOTE_ADDR is the last
    proxy; the client is the Nth entry from the right of X-Forwarded-For, the part the trusted
    proxies appended (entries further left are whatever the client chose to send).
    """
    hops = int(settings.BROADSHEET["TRUSTED_PROXY_COUNT"])
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or None


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:500]


def _ip_key(group, request) -> str:
    # The client behind the trusted proxies, the same address the consent record stores: with
    # django-ratelimit's "ip" key every visitor behind the proxy shared one counter (the proxy's).
    return client_ip(request) or ""


def _address_key(group, request) -> str:
    return normalise_email(request.POST.get("email", ""))


def _speak_subscribers_language(request, subscriber_uid) -> None:
    """Pages reached from an email speak the language of that email (the subscriber's), unless
    the visitor chose one with the language switcher (the cookie)."""
    if settings.LANGUAGE_COOKIE_NAME in request.COOKIES:
        return
    stored = Subscriber.objects.filter(uid=subscriber_uid).values_list("language", flat=True).first()
    if stored is not None:
        translation.activate(supported_language(stored))
        request.LANGUAGE_CODE = translation.get_language()


def _bad_link(request, *, expired: bool = False):
    """The page for a forged, wrong-purpose or expired link: 400 (410 when expired), no change."""
    return TemplateResponse(
        request,
        "subscribers/link_expired.html" if expired else "subscribers/link_invalid.html",
        status=410 if expired else 400,
    )


# --- Subscribe --------------------------------------------------------------------------------


def subscribe_page(request, page):
    """Serve a ``pages.SubscribePage`` (its ``serve()`` calls this). GET: the form (``?sent=1``:
    the thank-you text). POST: validate, call ``services.subscribe``, redirect to the thank-you text.

    The thank-you page is the same whatever happened (new, pending, already subscribed,
    suppressed, honeypot filled, per-address limit reached), so the page never tells who is
    subscribed. Only the per-IP limit answers differently (429), which says nothing about an address.
    """
    lists = MailingList.objects.offered_in(translation.get_language())
    context = page.get_context(request)
    template = page.get_template(request)
    if request.method == "POST":
        if is_ratelimited(
            request,
            group="subscribers.subscribe.ip",
            key=_ip_key,
            rate=settings.BROADSHEET["SUBSCRIBE_RATE_PER_IP"],
            method="POST",
            increment=True,
        ):
            return TemplateResponse(request, template, {**context, "rate_limited": True}, status=429)
        form = SubscribeForm(request.POST, lists=lists)
        if form.is_valid():
            address_limited = is_ratelimited(
                request,
                group="subscribers.subscribe.address",
                key=_address_key,
                rate=settings.BROADSHEET["SUBSCRIBE_RATE_PER_ADDRESS"],
                method="POST",
                increment=True,
            )
            if not form.is_bot and not address_limited:
                detail = page.full_url or ""
                if form.cleaned_data["source"]:
                    detail = f"{detail} (form on {settings.BASE_URL}{form.cleaned_data['source']})"
                services.subscribe(
                    email=form.cleaned_data["email"],
                    name=form.cleaned_data["name"],
                    lists=form.cleaned_data["lists"],
                    consent_text=page.consent_text,
                    consent_detail=detail,
                    source=Subscription.Source.FORM,
                    ip=client_ip(request),
                    user_agent=_user_agent(request),
                    language=getattr(request, "LANGUAGE_CODE", "") or settings.LANGUAGE_CODE,
                )
            # Post/Redirect/Get: reloading the thank-you page must not post the form again.
            return _see_other(f"{request.path}?sent=1")
    elif request.GET.get("sent"):
        return TemplateResponse(request, template, {**context, "sent": True})
    else:
        form = SubscribeForm(lists=lists)
    return TemplateResponse(request, template, {**context, "form": form})


def _see_other(url: str) -> HttpResponseRedirect:
    """303 See Other: the browser GETs ``url`` after a POST (RFC 9110 s15.4.4)."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


# --- Double opt-in ----------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request, token):
    """GET: a page with a Confirm button (link scanners change nothing). POST: confirm."""
    try:
        uid, list_ids = tokens.read_confirm_token(token)
    except tokens.ExpiredToken:
        return _bad_link(request, expired=True)
    except tokens.BadToken:
        return _bad_link(request)
    _speak_subscribers_language(request, uid)
    if request.method == "POST":
        state = services.confirm_subscription(uid, list_ids, ip=client_ip(request), user_agent=_user_agent(request))
    else:
        state = services.confirmation_status(uid, list_ids)
    lists = MailingList.objects.filter(pk__in=list_ids)
    if state == services.CONFIRM_DONE:
        return TemplateResponse(request, "subscribers/already_confirmed.html", {"lists": lists})
    if state == services.CONFIRM_GONE:
        return _bad_link(request, expired=True)
    if request.method == "POST":
        # A link on our own site: relative, whatever BASE_URL says (emails need it absolute, pages don't).
        preferences_url = reverse("subscribers:preferences", args=[tokens.preferences_token(uid)])
        return TemplateResponse(
            request, "subscribers/confirmed.html", {"lists": lists, "preferences_url": preferences_url}
        )
    return TemplateResponse(request, "subscribers/confirm.html", {"lists": lists})


# --- Unsubscribe ------------------------------------------------------------------------------


def _unsubscribe_page(request, token, uid, list_ids):
    return TemplateResponse(
        request,
        "subscribers/unsubscribe.html",
        {
            "lists": MailingList.objects.filter(pk__in=list_ids) if list_ids else None,
            "action_url": reverse("subscribers:unsubscribe", args=[token]),
            "preferences_url": reverse("subscribers:preferences", args=[tokens.preferences_token(uid)]),
        },
    )


# CSRF-exempt: the unguessable token in the URL is the only credential (no cookie or session
# grants anything here), and leaving must work even where cookies are blocked.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """GET: a page with an Unsubscribe button and a preference-centre link. POST: unsubscribe."""
    try:
        link = tokens.read_unsubscribe_token(token)
    except tokens.BadToken:
        return _bad_link(request)
    _speak_subscribers_language(request, link.uid)
    if request.method != "POST":
        return _unsubscribe_page(request, token, link.uid, link.list_ids)
    _leave(request, link, Subscription.UnsubscribeMethod.LINK)
    return TemplateResponse(
        request,
        "subscribers/unsubscribed.html",
        {
            "lists": MailingList.objects.filter(pk__in=link.list_ids) if link.list_ids else None,
            "preferences_url": reverse("subscribers:preferences", args=[tokens.preferences_token(link.uid)]),
        },
    )


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def one_click(request, token):
    """RFC 8058 target of ``List-Unsubscribe``: POST unsubscribes and answers 200 (no redirect).

    Mail clients POST ``List-Unsubscribe=One-Click`` without cookies or CSRF token. Any POST is
    accepted, whatever its encoding: this URL appears only in the header, and withdrawing consent
    must not fail on a client's formatting. Idempotent. GET shows the page with a button.
    """
    try:
        link = tokens.read_unsubscribe_token(token)
    except tokens.BadToken:
        return HttpResponse(
            _("This unsubscribe link is not valid."), status=400, content_type="text/plain; charset=utf-8"
        )
    # A client without RFC 8058 opens this address in a browser (GET): the page speaks the email's language.
    _speak_subscribers_language(request, link.uid)
    if request.method != "POST":
        return _unsubscribe_page(request, token, link.uid, link.list_ids)
    _leave(request, link, Subscription.UnsubscribeMethod.ONE_CLICK)
    return HttpResponse(_("You have been unsubscribed."), content_type="text/plain; charset=utf-8")


def _leave(request, link: tokens.UnsubscribeLink, method: str) -> None:
    services.unsubscribe(
        link.uid,
        link.list_ids,
        method=method,
        campaign_id=link.campaign_id,
        ip=client_ip(request),
        user_agent=_user_agent(request),
    )


# --- Preference centre ------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request, token):
    """The subscriber's public lists and name; POST (with CSRF) saves, or unsubscribes from
    everything once the visitor confirmed that on a second page."""
    try:
        uid = tokens.read_preferences_token(token)
    except tokens.BadToken:
        return _bad_link(request)
    subscriber = Subscriber.objects.filter(uid=uid).first()
    if subscriber is None:
        return _bad_link(request)
    _speak_subscribers_language(request, uid)
    public_lists = MailingList.objects.filter(is_public=True)
    if request.method == "POST":
        if "unsubscribe_all" in request.POST:
            if "confirm" not in request.POST:
                # Leaving everything is asked once more, on a page of its own: no script needed.
                return TemplateResponse(request, "subscribers/unsubscribe_all.html", {"subscriber": subscriber})
            services.unsubscribe(
                uid,
                (),
                method=Subscription.UnsubscribeMethod.PREFERENCES,
                ip=client_ip(request),
                user_agent=_user_agent(request),
            )
            return redirect(f"{request.path}?done=all")
        form = PreferencesForm(request.POST, lists=public_lists)
        if form.is_valid():
            services.update_preferences(
                uid,
                list_ids=[m.pk for m in form.cleaned_data["lists"]],
                name=form.cleaned_data["name"],
                ip=client_ip(request),
                user_agent=_user_agent(request),
                page_url=settings.BASE_URL + request.path,
                language=form.cleaned_data["language"] or None,
            )
            # Post/redirect/get: reloading the page must not post the choices again.
            return redirect(f"{request.path}?done=saved")
    else:
        choices = services.preference_choices(subscriber)
        form = PreferencesForm(
            initial={
                "name": subscriber.name,
                "lists": [m.pk for m, chosen in choices if chosen],
                "language": supported_language(subscriber.language),
            },
            lists=public_lists,
        )
    return TemplateResponse(
        request,
        "subscribers/preferences.html",
        {"form": form, "subscriber": subscriber, "done": request.GET.get("done", "")},
    )
