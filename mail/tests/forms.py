"""What the newsletter settings page posts, for tests that fill it in (one place for its fields)."""


def newsletter_settings_form(**changes: str) -> dict[str, str]:
    """The settings form as an editor submits it: the sender, the postal address, the footer and
    one Chinese footer translation; ``changes`` overrides fields by their form name."""
    return {
        "sender_name": "The Broadsheet",
        "sender_email": "news@example.com",
        "reply_to": "",
        "postal_address": "1 Fleet Street\nLondon EC4Y 1AA",
        "footer_text": "You signed up on our website.",
        "footer_translations-TOTAL_FORMS": "1",
        "footer_translations-INITIAL_FORMS": "0",
        "footer_translations-MIN_NUM_FORMS": "0",
        "footer_translations-MAX_NUM_FORMS": "1000",
        "footer_translations-0-language": "zh-hans",
        "footer_translations-0-text": "您在我们的网站上订阅了本通讯。",
        "footer_translations-0-ORDER": "1",
        "footer_translations-0-DELETE": "",
        **changes,
    }
