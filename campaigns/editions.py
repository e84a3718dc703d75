"""A campaign in several languages: one rendered edition per live translation of its issue.

The issue is rendered once per language when the campaign starts (never per recipient); each
recipient's Delivery row records, at the snapshot, the language of the edition they get: their
own language when the issue has a live translation in it, else the issue's own language. A
campaign whose lists are all single-language lists in one language sends that language to all.
"""

from dataclasses import replace

from django.db.models import Case, Q, Value, When
from django.utils import translation

from campaigns.models import Campaign, CampaignEdition


def issue_language(page) -> str:
    """The language the issue itself is written in (its Wagtail locale)."""
    return page.locale.language_code


def live_translations(page) -> dict:
    """``{language: page}`` of the issue's live translations, the issue's own language excluded."""
    return {
        other.locale.language_code: other.specific
        for other in page.get_translations().live().select_related("locale")
        if other.live_revision_id is not None
    }


def render_editions(campaign: Campaign, page, render) -> list[CampaignEdition]:
    """Render and store one CampaignEdition per live translation of ``page``.

    ``render(page_object) -> (subject, html, text)`` renders one published revision; it runs with
    that translation's language active, so the layout's own words (footer, links) match.
    """
    editions = []
    for language, translated in sorted(live_translations(page).items()):
        revision = translated.live_revision
        with translation.override(language):
            subject, html, text = render(revision.as_object())
        editions.append(
            CampaignEdition(
                campaign=campaign,
                language=language,
                page=translated,
                page_revision=revision,
                subject=subject,
                html=html,
                text=text,
            )
        )
    CampaignEdition.objects.filter(campaign=campaign).delete()
    return CampaignEdition.objects.bulk_create(editions)


def delivery_language(campaign: Campaign, default: str, editions: list[str]):
    """The expression the recipient snapshot stores in Delivery.language (over Subscriber rows).

    Lists that are all single-language in one language decide for everyone; otherwise the
    subscriber's language picks an edition, matched like subscribers.languages.supported_language
    (``zh-CN`` and ``zh`` get ``zh-hans``), and everyone else gets ``default``.
    """
    list_languages = set(campaign.lists.values_list("language", flat=True))
    if len(list_languages) == 1 and "" not in list_languages:
        (language,) = list_languages
        return Value(language if language in editions else default)
    exact = [When(language__iexact=language, then=Value(language)) for language in editions]
    generic = []
    for language in editions:
        base = language.split("-")[0]
        generic.append(
            When(
                Q(language__iexact=base) | Q(language__istartswith=f"{base}-") | Q(language__istartswith=f"{base}_"),
                then=Value(language),
            )
        )
    if not editions:
        return Value(default)
    return Case(*exact, *generic, default=Value(default))


def edition_contents(campaign: Campaign, content) -> dict:
    """``{language: MessageContent}`` for each edition: ``content`` (the campaign's own) with the
    edition's subject, html and text."""
    return {
        edition.language: replace(content, subject=edition.subject, html=edition.html, text=edition.text)
        for edition in campaign.editions.all()
    }
