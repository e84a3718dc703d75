from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path, re_path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

from campaigns.webhooks import tracking_webhook
from newsletter_site import views

urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    # ESP tracking webhooks: only the configured ESPs answer (campaigns.webhooks), no inbound mail.
    path("anymail/<str:esp>/tracking/", tracking_webhook, name="tracking_webhook"),
    path("newsletter/", include("subscribers.urls")),
    path("campaigns/", include("campaigns.urls")),
    # The language switcher's POST target: sets the language cookie.
    path("i18n/setlang/", views.set_language, name="set_language"),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()

# Uploaded images and documents: served by Django only with DEBUG or SERVE_MEDIA (checked per request).
urlpatterns.append(re_path(r"^" + settings.MEDIA_URL.strip("/") + r"/(?P<path>.*)$", views.media, name="media"))

# Wagtail's page serving last: it catches every other path. Pages per language: English
# unprefixed (every existing URL keeps working), other languages under /<code>/. Everything above
# (the token links in emails, RFC 8058 one-click, webhooks, tracking) stays unprefixed: those
# pages take the visitor's language from the cookie or Accept-Language (newsletter_site.middleware).
urlpatterns += i18n_patterns(path("", include(wagtail_urls)), prefix_default_language=False)

# The 404 page in the visitor's language, also for unprefixed addresses that are no page.
handler404 = views.page_not_found
