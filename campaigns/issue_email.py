"""A newsletter issue as an email: its body template inside the shared layout (mail.rendering)."""

from urllib.parse import urljoin

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from mail.rendering import PLACEHOLDERS, RenderedEmail, base_url_or_default, render_layout


def render_issue(page, *, base_url: str | None = None, lists=None) -> RenderedEmail:
    """Render a NewsletterIssuePage into a complete email with placeholders for recipient values.

    ``base_url`` (default settings.BASE_URL) is the origin every relative link and image is
    resolved against. The footer carries the sender's postal address, the unsubscribe and
    preferences placeholders, a "view in browser" link to the page itself, and says what the
    reader receives and where: "You are receiving <lists> at %%email%%." (``lists``: the
    campaign's MailingLists or names; None, as in previews and test sends, names the newsletter).
    The address is a placeholder, so this costs one string replacement per recipient, no render.
    The layout's own words (footer, links) are in the issue's language (its Wagtail locale).
    """
    base_url = base_url_or_default(base_url)
    language = page.locale.language_code if page.locale_id else settings.LANGUAGE_CODE
    with translation.override(language):
        return _render(page, base_url, lists)


def _render(page, base_url: str, lists) -> RenderedEmail:
    body = render_to_string("campaigns/email/issue.html", {"page": page, "base_url": base_url})
    return render_layout(
        subject=page.subject,
        preheader=page.preheader,
        body=body,
        base_url=base_url,
        view_url=_page_url(page, base_url),
        unsubscribe_url=PLACEHOLDERS["unsubscribe_url"],
        preferences_url=PLACEHOLDERS["preferences_url"],
        footer_text=None,
        receiving=[str(getattr(item, "name", item)) for item in lists] if lists is not None else None,
    )


def _page_url(page, base_url: str) -> str:
    """The page's public URL, absolute even when it has no routable site yet (unsaved previews)."""
    url = page.full_url
    if not url:
        return base_url + "/"
    return urljoin(base_url + "/", url)
