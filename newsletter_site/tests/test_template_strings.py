"""Every user-facing string in our templates is marked for translation.

A text node, or a user-visible attribute (title, alt, placeholder, aria-label, the value of a
button), that holds letters outside {% translate %} / {% blocktranslate %} fails the test; so does
a literal string given to an included template or a Wagtail admin component (header, panel,
status) as its title, heading, label or text without ``_("...")``.
Template tags and variables count as translated (their text comes from elsewhere), and so do
punctuation, digits and symbols. ALLOWED lists the few words that are the same in every language.
"""

import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.template.base import Lexer, TokenType

TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates"]
TEMPLATES = sorted(path for directory in TEMPLATE_DIRS for path in directory.rglob("*.html"))

# Words that need no translation (brand, format and protocol names, the time zone).
ALLOWED = {"Broadsheet", "Atom", "RSS", "CSV", "JSON", "HTML", "DKIM", "SPF", "DMARC", "SMTP", "UTC", "SHA"}
# Blocks whose content is code, not text (a class attribute's value).
CODE_BLOCKS = {"body_class"}
VISIBLE_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "aria-placeholder"}
BUTTON_INPUT_TYPES = {"submit", "button", "reset"}
# {% include "..." with title="Send" %}: literal values of these names are shown to people.
_LITERAL_KWARG = re.compile(
    r"""\b(title|subtitle|label|text|heading|description|help_text|action_text)=(["'])(.*?)\2"""
)
# {% status "sent" %} (Wagtail's status tag): its first argument is shown as it is.
_LITERAL_LABEL = re.compile(r"""^status\s+(["'])(.*?)\1""")
# {{ value|default:"Not set" }}, {{ flag|yesno:"Yes,No" }}, {% firstof a "Nobody" %}: a literal the
# page shows in place of the variable (a _("...") argument is marked).
_LITERAL_FILTER = re.compile(r"""\|(?:default|default_if_none|yesno)\s*:\s*(["'])(.*?)\1""")
_LITERAL_ARGUMENT = re.compile(r"""(?<![_(\w])(["'])(.*?)\1""")
# A template tag or variable: its output is not a literal of this template.
MARK = "\x00"


def _has_words(text: str) -> bool:
    words = re.split(r"[^\w]+", text.replace(MARK, " "))
    return any(
        any(unicodedata.category(char).startswith("L") for char in word) for word in words if word not in ALLOWED
    )


class _Visible(HTMLParser):
    """Collects text nodes and user-visible attribute values outside <style> and <script>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.skip += 1
        attributes = {name: value or "" for name, value in attrs}
        for name, value in attributes.items():
            if name in VISIBLE_ATTRIBUTES and _has_words(value):
                self.found.append(f'<{tag} {name}="{value}">')
        # An <input> button shows its value; a <button> shows its content (its value is data).
        is_button = tag == "input" and attributes.get("type", "").lower() in BUTTON_INPUT_TYPES
        if is_button and _has_words(attributes.get("value", "")):
            self.found.append(f'<{tag} value="{attributes["value"]}">')

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag in ("style", "script") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and _has_words(data):
            self.found.append(" ".join(data.replace(MARK, "{…}").split()))


def untranslated_strings(source: str) -> list[str]:
    """The user-facing literal strings of a template ``source`` that are not marked for translation."""
    found: list[str] = []
    html: list[str] = []
    inside = None  # the closing tag of a {% blocktranslate %} or {% comment %} being skipped
    for token in Lexer(source).tokenize():
        content = token.contents.strip()
        name = content.split(" ", 1)[0] if token.token_type == TokenType.BLOCK else ""
        if inside:
            if name == inside:
                inside = None
            continue
        if name in ("blocktranslate", "blocktrans"):
            inside = "end" + name
            html.append(MARK)
        elif name == "comment":
            inside = "endcomment"
        elif name == "block" and content.split()[1:2] and content.split()[1] in CODE_BLOCKS:
            inside = "endblock"
            html.append(MARK)
        elif token.token_type == TokenType.TEXT:
            html.append(token.contents)
        elif token.token_type in (TokenType.VAR, TokenType.BLOCK):
            html.append(MARK)
            label = _LITERAL_LABEL.match(content)
            # A literal the tag or variable may print stands in the HTML where it is printed: it
            # counts in a text node or a visible attribute, not in a data- or lang attribute.
            printed = [value for _quote, value in _LITERAL_FILTER.findall(content)]
            if name == "firstof":
                printed += [value for _quote, value in _LITERAL_ARGUMENT.findall(content)]
            html.append(" ".join(printed) + MARK if printed else "")
            literals = [value for _name, _quote, value in _LITERAL_KWARG.findall(content)]
            if any(_has_words(value) for value in literals + ([label.group(2)] if label else [])):
                found.append(f"{{% {content} %}}")
    parser = _Visible()
    parser.feed("".join(html))
    parser.close()
    return found + parser.found


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(settings.BASE_DIR)))
def test_templates_have_no_untranslated_user_facing_strings(path):
    assert untranslated_strings(path.read_text()) == [], f"wrap these in {{% translate %}} in {path.name}"


def test_the_check_finds_untranslated_text_attributes_and_included_titles():
    bad = """{% load i18n %}
<h1>Welcome back</h1>
<p>{{ count }} issues sent</p>
<img src="x.png" alt="A printing press">
<input type="search" placeholder="Search subscribers">
<button type="submit" name="action" value="send">Send now</button>
<input type="submit" value="Save">
<a href="/" title="Home" aria-label="Go home">{% translate "Home" %}</a>
{% include "wagtailadmin/shared/header.html" with title="Campaigns" icon="mail" %}
{% panel id="progress" heading='Progress' icon="time" %}{% endpanel %}{% status "bounced" classname="w-status" %}
<p>{{ list.description|default:"No description" }} {{ list.public|yesno:'Public,Hidden' }}</p>
<p>{% firstof subscriber.name "Anonymous reader" %}</p>
"""

    assert untranslated_strings(bad) == [
        '{% include "wagtailadmin/shared/header.html" with title="Campaigns" icon="mail" %}',
        """{% panel id="progress" heading='Progress' icon="time" %}""",
        '{% status "bounced" classname="w-status" %}',
        "Welcome back",
        "{…} issues sent",
        '<img alt="A printing press">',
        '<input placeholder="Search subscribers">',
        "Send now",
        '<input value="Save">',
        '<a title="Home">',
        '<a aria-label="Go home">',
        "{…}No description{…} {…}Public,Hidden{…}",
        "{…}Anonymous reader{…}",
    ]


def test_the_check_accepts_marked_strings_variables_punctuation_and_code():
    good = """{% load i18n %}{# A comment: not shown #}{% comment %}Nor this.{% endcomment %}
<h1>{% translate "Welcome back" %}</h1>
<p>{% blocktranslate count counter=n %}One issue{% plural %}{{ counter }} issues{% endblocktranslate %}</p>
<img src="x.png" alt="{% translate 'A printing press' %}" class="hero wide">
<p>{{ page.title }} · {{ date }} (2026) — 42% | &nbsp;&middot; →</p>
<input type="hidden" name="next" value="somewhere">
<button type="submit" name="action" value="{{ action }}">{% translate "Send" %}</button>
<style>.footer a { color: red; }</style><script>const label = "not text";</script>
<p>Broadsheet</p><p>{{ time }} UTC</p>{% block body_class %}home page{% endblock %}
{% include "wagtailadmin/shared/header.html" with title=_("Campaigns") icon="mail" %}
{% panel id="progress" heading=_("Progress") icon="time" %}{% endpanel %}{% status _("bounced") %}{% status label %}
<p>{{ list.description|default:_("No description") }} {{ value|default:"–" }} {{ page.title|default:"Broadsheet" }}</p>
<p>{% firstof subscriber.name _("Anonymous reader") %}</p>
"""

    assert untranslated_strings(good) == []
