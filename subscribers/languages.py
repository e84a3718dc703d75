"""Which interface language a subscriber gets: one of settings.LANGUAGES, whatever was stored."""

from django.conf import settings
from django.utils import translation


def supported_language(code: str | None) -> str:
    """The settings.LANGUAGES code for ``code``, else settings.LANGUAGE_CODE.

    Accepts what browsers, CSV files and older rows hold: ``zh-CN``, ``zh_Hans``, ``en-us``,
    ``ZH``. Chinese of any region maps to ``zh-hans`` (the Chinese we have), unknown codes to the
    default language.
    """
    code = (code or "").strip().replace("_", "-").lower()
    if code:
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            pass
    return settings.LANGUAGE_CODE


def language_choices() -> list[tuple[str, str]]:
    """(code, name in that language) for every interface language: a reader finds their own."""
    return [(code, translation.get_language_info(code)["name_local"]) for code, _name in settings.LANGUAGES]
