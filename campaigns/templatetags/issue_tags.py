"""Template filters of the public issue pages (the web archive)."""

from django import template
from django.utils.safestring import mark_safe

from mail import mergetags

register = template.Library()


@register.filter(is_safe=True)
def without_merge_tags(html):
    """Rendered HTML (an issue's body) as a reader with no values sees it: each merge tag shows its
    fallback, or nothing (mail.mergetags.without_tags); never the raw ``{{ ... }}``."""
    # Safe: our own rendered HTML, the fallbacks HTML-escaped (URL-quoted in links) by mergetags.
    return mark_safe(mergetags.without_tags(str(html), html=True))
