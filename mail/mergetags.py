"""Merge tags: the one syntax editors write for per-recipient values, and its compiled substitution.

Editors write, in the subject, the preheader and anywhere in the body (rich text, headings,
button labels and URLs)::

    {{ first_name }}  {{ name }}  {{ email }}  {{ attributes.city }}
    {{ first_name|default:"reader" }}        (the fallback when the value is empty)

Three steps, each in one place:

1. ``canonicalise(text, html=...)``, once per render: every editor tag becomes a compact token
   ``%%first_name|reader%%`` (the fallback percent-encoded: no space, quote or markup in it), the
   form the rendered email has always used for per-recipient values (``%%name%%``,
   ``%%unsubscribe_url%%``...; mail.rendering.PLACEHOLDERS). The rich-text editor's entities
   (``&quot;``) are read as the characters they stand for. A tag this module does not know, a
   filter other than ``default``, a tag split by formatting (``{{ first_<b>name</b> }}``) or a tag
   in a link's scheme or host is reported in ``errors`` and dropped from the output, so it is
   never sent raw; the start check refuses a campaign with errors.
2. ``compile_template(template, html=...)``, once per campaign and part: literal chunks and ``Slot``s, each
   slot knowing how its value is written where it stands (HTML-escaped in HTML, URL-quoted inside
   a link, as it is in plain text; ``compile_header`` for the subject: control characters become
   spaces, so a CR/LF in a name never reaches a header).
3. ``fill(compiled, values)`` per recipient: one join. No template engine runs per recipient, and
   a value is never read again as a tag (a subscriber named ``{{ email }}`` or ``%%email%%`` is
   just text).

Tokens a subscriber's value cannot produce: substitution is one pass over the compiled template.
Legacy ``%%name%%`` written by editors before tags existed keeps working: it is the same token.
"""

import html as html_lib
import re
from typing import NamedTuple
from urllib.parse import quote, unquote

from django.utils.translation import gettext as _

# What editors may write: the subscriber's values. ``attributes.<name>`` is any attribute name
# (subscribers.attributes.NAME_PATTERN); a subscriber without it gets the fallback.
EDITOR_KEYS = ("first_name", "name", "email")
ATTRIBUTE_PREFIX = "attributes."
# Values the system fills (links, the signed delivery id): written as they are (HTML-escaped in
# HTML), never URL-quoted, and never written by editors as tags.
SYSTEM_KEYS = ("unsubscribe_url", "preferences_url", "delivery")

_ATTRIBUTE_NAME = r"[^\W\d_]\w{0,49}"
_KEY = rf"(?:[a-z_]+|attributes\.{_ATTRIBUTE_NAME})"
# An editor tag: ``{{`` ... ``}}`` with at most 300 characters between (entities and markup
# included, so a tag split by formatting is still seen, and reported).
_EDITOR_TAG = re.compile(r"\{\{(.{0,300}?)\}\}", re.DOTALL)
_TAG_BODY = re.compile(
    rf"""\s*(?P<key>{_KEY})\s*(?:\|\s*(?P<filter>\w+)\s*(?P<argument>:\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|“(?P<cq>[^”]*)”))?)?\s*""",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"<[^>]*>")
# A token: ``%%key%%`` or ``%%key|percent-encoded fallback%%``.
TOKEN = re.compile(rf"%%(?P<key>{_KEY})(?:\|(?P<fallback>(?:[A-Za-z0-9_.~-]|%[0-9A-F]{{2}})*))?%%")
# css-inline writes every attribute with double quotes; href and src hold links.
_URL_ATTRIBUTE = re.compile(r'(\s(?:href|src)=")([^"]*)"')
# A link in plain text (tokens hold no space, so a URL with tokens is one run of non-spaces).
_TEXT_URL = re.compile(r"(?:https?|mailto):\S+", re.IGNORECASE)
# Where a tag may stand in a link: after the path begins (``https://host/``, ``https://host?``,
# ``/path``, ``?query``, ``#fragment``) or in a mailto: query. Never in the scheme or the host, so
# a subscriber's value cannot send the reader somewhere else.
_URL_PERSONAL_PART = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#%]+[/?#]|[/?#](?!/)|mailto:[^?%]*\?)")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

HTML, TEXT, URL, HEADER = "html", "text", "url", "header"


def is_known(key: str) -> bool:
    return key in EDITOR_KEYS or key.startswith(ATTRIBUTE_PREFIX)


def token(key: str, fallback: str = "") -> str:
    """The token for ``key`` with ``fallback`` (as canonicalise() writes it)."""
    return f"%%{key}|{quote(fallback, safe='')}%%" if fallback else f"%%{key}%%"


def known_tags() -> list[tuple[str, str]]:
    """``(tag, what it is)`` for the editors' help, in the active language."""
    return [
        ("{{ first_name }}", _("the first word of the name, or the imported first_name attribute")),
        ("{{ name }}", _("the subscriber's name")),
        ("{{ email }}", _("the subscriber's email address")),
        ("{{ attributes.city }}", _("any attribute of the subscriber (here: city)")),
        ('{{ first_name|default:"reader" }}', _("the text in quotes when the value is empty")),
    ]


# --- 1. Editor tags to tokens (once per render) -----------------------------------------------


class Canonical(NamedTuple):
    text: str
    errors: tuple[str, ...]


def canonicalise(text: str, *, html: bool) -> Canonical:
    """``text`` with every editor tag as its token, and the problems found (in the active
    language, each once). ``html``: ``text`` is HTML (entities inside tags are decoded, markup
    inside a tag means it was split by formatting, and tags in links are checked)."""
    if "{{" not in text:
        return Canonical(text, ())
    errors: list[str] = []

    def replace(match: re.Match) -> str:
        inner = match.group(1)
        if html and "<" in inner:
            _report(
                errors,
                _("“%(tag)s” is broken by formatting: retype it in one go, without bold, italics or a link inside.")
                % {"tag": _shown(match.group(0))},
            )
            # Only the markup stays: the HTML around the tag keeps its structure.
            return "".join(_MARKUP.findall(inner))
        source = html_lib.unescape(inner) if html else inner
        parsed = _TAG_BODY.fullmatch(source)
        key = parsed["key"].lower() if parsed else ""
        if not is_known(key):
            _report(errors, _("“%(tag)s” is not a merge tag this newsletter knows.") % {"tag": _shown(match.group(0))})
            return ""
        fallback = parsed["dq"] or parsed["sq"] or parsed["cq"] or ""
        if parsed["filter"] is not None and (parsed["filter"].lower() != "default" or parsed["argument"] is None):
            _report(
                errors,
                _('“%(tag)s”: the only filter is default, as in {{ first_name|default:"reader" }}.')
                % {"tag": _shown(match.group(0))},
            )
            return ""
        return token(key, fallback)

    out = _EDITOR_TAG.sub(replace, text)
    if html:
        out = _URL_ATTRIBUTE.sub(lambda m: _check_link(m, errors), out)
    else:
        out = _TEXT_URL.sub(lambda m: _checked_url(m.group(0), errors), out)
    return Canonical(out, tuple(errors))


def _check_link(match: re.Match, errors: list[str]) -> str:
    url = _checked_url(match.group(2), errors)
    return f'{match.group(1)}{url}"'


def _checked_url(url: str, errors: list[str]) -> str:
    """``url`` unchanged when its tokens stand in the path, query or fragment; else without them
    (reported): a subscriber's value never chooses the scheme or the host of a link."""
    first = _first_editor_token(url)
    if first is None:
        return url
    if _URL_PERSONAL_PART.match(url[: first.start()]):
        return url
    _report(
        errors,
        _("A merge tag in a link may stand only after the address of the site (in its path or query): %(url)s")
        % {"url": _shown(unquote(url))},
    )
    return TOKEN.sub(lambda m: m.group(0) if m["key"] in SYSTEM_KEYS else "", url)


def _first_editor_token(text: str):
    for match in TOKEN.finditer(text):
        if match["key"] not in SYSTEM_KEYS:
            return match
    return None


def _report(errors: list[str], message: str) -> None:
    if message not in errors:
        errors.append(message)


def _shown(tag: str) -> str:
    """A tag as the editor sees it in a message: entities decoded, markup dropped, at most 80 characters."""
    text = html_lib.unescape(_MARKUP.sub("", tag))
    return text if len(text) <= 80 else text[:79] + "…"


# --- 2. Tokens to literal chunks and slots (once per campaign) ---------------------------------


class Slot:
    """One per-recipient value: where it stands decides how it is written (``mode``).

    Built once per campaign; equal slots (same key, fallback, mode) are interchangeable, so a
    caller may remember a slot's output for a value (the engine does, across recipients).
    """

    __slots__ = ("_hash", "_quote", "_strip", "fallback", "html", "key", "mode")

    def __init__(self, key: str, fallback: str, mode: str, html: bool = False):
        self.key, self.fallback, self.mode, self.html = key, fallback, mode, html
        self._quote = mode == URL and key not in SYSTEM_KEYS  # URL-quoted: a value never ends the path
        self._strip = mode == HEADER
        self._hash = hash((key, fallback, mode, html))

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, Slot) and (self.key, self.fallback, self.mode, self.html) == (
            other.key,
            other.fallback,
            other.mode,
            other.html,
        )

    def __repr__(self):
        return f"Slot({self.key!r}, {self.fallback!r}, {self.mode!r}, html={self.html})"

    def raw(self, values: dict) -> str:
        """The recipient's value, else the fallback, else ""."""
        return values.get(self.key) or self.fallback

    def write(self, value: str) -> str:
        """``value`` as it is written where the slot stands."""
        if self._quote:
            value = quote(value, safe="")
        elif self._strip:
            value = _CONTROL.sub(" ", value)
        return html_lib.escape(value) if self.html else value

    def render(self, values: dict) -> str:
        value = values.get(self.key) or self.fallback
        return self.write(value) if value else ""


class SlotWriter:
    """``writer(slot, values)`` is ``slot.render(values)``, remembered for values that repeat across
    recipients (a city, a fallback, common first names); at most ``limit`` outputs are kept. For
    whatever fills the same slots for many recipients (the ESP batch path's merge data)."""

    def __init__(self, limit: int = 4096):
        self.limit = limit
        self.memo: dict = {}

    def __call__(self, slot: Slot, values: dict) -> str:
        raw = values.get(slot.key) or slot.fallback
        if not raw:
            return ""
        written = self.memo.get((slot, raw))
        if written is None:
            written = slot.write(raw)
            if len(self.memo) < self.limit:
                self.memo[slot, raw] = written
        return written


def compile_template(template: str, *, html: bool) -> list:
    """``template`` (tokens in it) as ``[literal, Slot, literal, ..., literal]``: literals at the
    even positions, slots at the odd ones."""
    if "%%" not in template:
        return [template]
    urls = _url_spans(template, html)
    pieces: list = []
    start = 0
    for match in TOKEN.finditer(template):
        pieces.append(template[start : match.start()])
        in_url = any(begin <= match.start() < end for begin, end in urls)
        fallback = unquote(match["fallback"] or "")
        pieces.append(Slot(match["key"], fallback, URL if in_url else (HTML if html else TEXT), html))
        start = match.end()
    pieces.append(template[start:])
    return pieces


def compile_header(template: str) -> list:
    """A header value (the subject), editor tags and tokens alike: control characters in a value
    become spaces. Unknown tags are dropped (``errors(template)`` lists them)."""
    return [
        Slot(piece.key, piece.fallback, HEADER) if isinstance(piece, Slot) else piece
        for piece in compile_template(canonicalise(template, html=False).text, html=False)
    ]


def _url_spans(template: str, html: bool) -> list[tuple[int, int]]:
    if html:
        return [match.span(2) for match in _URL_ATTRIBUTE.finditer(template)]
    return [match.span() for match in _TEXT_URL.finditer(template)]


def keys(compiled: list) -> set[str]:
    """The value keys a compiled template asks for."""
    return {piece.key for piece in compiled[1::2]}


# --- 3. Per recipient ---------------------------------------------------------------------------


def fill(compiled: list, values: dict) -> str:
    """One recipient's text: literal chunks and rendered slots joined (missing values: fallback,
    else nothing)."""
    if len(compiled) == 1:
        return compiled[0]
    return "".join([piece if index % 2 == 0 else piece.render(values) for index, piece in enumerate(compiled)])


def fill_template(template: str, values: dict, *, html: bool) -> str:
    """compile_template() and fill() in one go, for a single use (previews, test sends, the web archive)."""
    return fill(compile_template(template, html=html), values)


def errors(text: str, *, html: bool = False) -> tuple[str, ...]:
    """The problems canonicalise() finds in ``text``."""
    return canonicalise(text, html=html).errors


def without_tags(text: str, *, html: bool) -> str:
    """``text`` as a reader with no values sees it (the web archive, the feed): each tag shows its
    fallback, or nothing; unknown tags nothing."""
    return fill_template(canonicalise(text, html=html).text, {}, html=html)


def subscriber_values(name: str, email: str, attributes: dict | None, wanted) -> dict[str, str]:
    """The editor-tag values of one subscriber for the keys in ``wanted``: ``first_name`` is the
    imported ``first_name`` attribute, else the first word of the name."""
    values = {"name": name or "", "email": email or ""}
    attributes = attributes or {}
    for key in wanted:
        if key == "first_name":
            first = attributes.get("first_name")
            values[key] = first if isinstance(first, str) and first.strip() else ((name or "").split() or [""])[0]
        elif key.startswith(ATTRIBUTE_PREFIX):
            value = attributes.get(key[len(ATTRIBUTE_PREFIX) :])
            values[key] = value if isinstance(value, str) else ("" if value is None else str(value))
    return values
