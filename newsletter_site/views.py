"""Site-level views that belong to no app."""

from django.conf import settings
from django.http import Http404
from django.views.static import serve


def media(request, path):
    """Uploaded files (images, documents) from MEDIA_ROOT, only when DEBUG or SERVE_MEDIA is on.

    For a laptop or a single small server (``make serve-prod`` turns it on); a real deployment
    serves MEDIA_ROOT from the front web server or object storage instead. The setting is read per
    request so tests can switch it. ``serve`` refuses paths outside MEDIA_ROOT.
    """
    if not (settings.DEBUG or settings.SERVE_MEDIA):
        raise Http404("Media files are not served by the application.")
    return serve(request, path, document_root=settings.MEDIA_ROOT)
