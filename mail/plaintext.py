"""The plaintext part of an email, derived from its rendered HTML with BeautifulSoup.

Walks the DOM and emits blocks (paragraphs, headings, list items, table rows), each wrapped on
its own: headings underlined, lists as ``- `` / ``1. ``, links as ``text (url)``, buttons as
``label: url``, images as their alt text (decorative ones dropped: pictures repeating a text link,
``data-plaintext="skip"``), hidden parts (preheader, tracking pixels) dropped. Headings are
underlined, the title (h1) also overlined so it stands apart from an h2.

Wrapping measures display width, not characters: a Chinese or Japanese character takes two
columns. Lines break at spaces and, inside runs of CJK text, between characters where the Unicode
line-breaking rules (UAX #14) allow: never before closing punctuation (ideographic full stop and
comma, closing brackets and quotes) nor after opening brackets. Latin words, URLs and
%%placeholders%% are never broken. A word holding a per-recipient link or address gets a line of
its own, so the filled-in value cannot push its line past the width whatever its length (a URL
longer than a line stands alone): the text is wrapped once, and personalise() stays a plain
substitution, which also works where an ESP fills the values (batch sends with merge data).

A filled unsubscribe or preferences link (about 130 characters: a 128-bit id and an HMAC-SHA256
signature, which cannot be shortened below 78 columns for every domain without weakening them)
is therefore a line longer than 78 columns, on purpose. RFC 5322 section 2.1.1: lines MUST be at
most 998 characters and SHOULD be at most 78; the SHOULD is met on the wire, because the email
package sends a text part with longer lines as quoted-printable (soft breaks at 76, undone by the
reader's client, so the link stays whole and clickable); the MUST holds by a wide margin. Breaking
the URL itself would break the link in every client, and RFC 3676 (format=flowed) wraps only at
spaces, so it would keep the URL on one line as well. The old token URLs stay as they are.

Libraries: ``wcwidth`` for display width (East Asian Width plus zero-width and combining marks
and emoji, which a bare ``unicodedata.east_asian_width`` lookup gets wrong) and ``uniseg`` for the
line-break opportunities of UAX #14 (pure Python, MIT, no ICU to compile; its answers are
remembered per pair of line-break classes, so a Chinese issue converts about as fast as an
English one: bench/plaintext.py).
"""

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

import wcwidth
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from uniseg.linebreak import line_break, line_break_boundaries

from mail.mergetags import ATTRIBUTE_PREFIX, TOKEN

BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr html li main nav ol p pre section table tbody td tfoot th "
    "thead tr ul".split()
)
SKIPPED_TAGS = frozenset("head style script title template noscript meta link button input select textarea".split())
HEADINGS = {"h1": "=", "h2": "=", "h3": "-", "h4": "-", "h5": "-", "h6": "-"}
OVERLINED = frozenset({"h1"})  # the title also gets a line above, so it stands apart from an h2
# Tokens filled per recipient (mail.mergetags.TOKEN): ``%%name%%``, ``%%first_name|reader%%``...
# A name, a first name or an attribute flows with the text ("Hello %%name%%,"), measured as this
# many columns (or its fallback's width, if wider): a longer value can push its one line over the
# width. Every other placeholder (links, the address) can be far longer than a line, so the word
# holding it gets a line of its own.
_FLOWING_COLUMNS = {"name": 30, "first_name": 15}
_ATTRIBUTE_COLUMNS = 20
_SPACE_RUNS = re.compile(r"( +)")
_SPACES = re.compile(r"[ \t\n\r\f\v]+")  # HTML whitespace only: a no-break space stays a space
# A line break in the source between two wide characters, which CSS Text 3 (section 4.1.3, segment
# break transformation) removes rather than turning it into a space: "。\n如果" reads "。如果".
# Hangul is excluded (Korean separates words with spaces), as it is in CSS.
_SEGMENT_BREAK = re.compile(r"(\S)[ \t\f\v]*[\n\r][ \t\n\r\f\v]*(?=(\S))")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7ff]")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_PIXEL_STYLE = re.compile(r"(?:^|;)\s*(?:width|height)\s*:\s*[01]px", re.IGNORECASE)
_BUTTON_CLASSES = frozenset({"button", "btn"})


@dataclass
class _Block:
    lines: list[str]
    tight: bool  # joined to the previous block by one newline instead of a blank line
    gap: str = ""  # the "blank" line before it: ">" between paragraphs of one quote


class _Prefix:
    """Indentation of nested lists and quotes: ``first`` on the first line written inside, then ``rest``."""

    def __init__(self, first: str, rest: str):
        self.first, self.rest, self.used = first, rest, False


def html_to_text(html: str, width: int = 78) -> str:
    """Convert an email's HTML to readable plaintext wrapped at ``width`` columns.

    Returns the text with one blank line between blocks and a final newline (empty string
    for HTML with no visible text).
    """
    soup = BeautifulSoup(html, "html.parser")
    converter = _Converter(width)
    # A linked picture next to a text link to the same place (teaser cards) would print the
    # address twice, and its alt text would stand as a stray line above the card's title: such
    # pictures are left out.
    converter.text_link_hrefs = {(a.get("href") or "").strip() for a in soup.find_all("a") if a.get_text(strip=True)}
    converter.walk(soup)
    converter.flush()
    return converter.result()


class _Converter:
    def __init__(self, width: int):
        self.width = width
        self.blocks: list[_Block] = []
        self.inline: list[str] = []
        self.prefixes: list[_Prefix] = []
        self.next_tight = False
        self.list_depth = 0
        self.quote_starts: list[int] = []  # index of the first block of each open <blockquote>
        self.text_link_hrefs: set[str] = set()

    # -- output -------------------------------------------------------------------------------

    def _indents(self) -> tuple[str, str]:
        first = "".join(p.rest if p.used else p.first for p in self.prefixes)
        rest = "".join(p.rest for p in self.prefixes)
        for p in self.prefixes:
            p.used = True
        return first, rest

    def _emit(self, lines: list[str], *, wrap: bool = True, underline: str = "", overline: bool = False) -> None:
        first, rest = self._indents()
        out: list[str] = []
        for i, line in enumerate(lines):
            initial = first if i == 0 else rest
            if not wrap or not line:
                out.append((initial + line) if line else initial.rstrip())
                continue
            out.extend(wrap_line(line, self.width, initial, rest) or [initial.rstrip()])
        if underline:
            longest = max(display_width(line) - len(rest) for line in out)
            rule = rest + underline * min(longest, self.width - len(rest))
            out = [rule, *out, rule] if overline else [*out, rule]
        inside_quote = bool(self.quote_starts) and len(self.blocks) > self.quote_starts[-1]
        self.blocks.append(_Block(out, self.next_tight, rest.rstrip() if inside_quote else ""))
        self.next_tight = False

    def flush(self, *, underline: str = "", overline: bool = False) -> None:
        """Turn the pending inline text into a block (a <br> is a line break inside it)."""
        text = "".join(self.inline)
        self.inline = []
        lines = [line.strip(" ") for line in text.split("\n")]
        while lines and not lines[0]:
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        if lines:
            self._emit(lines, underline=underline, overline=overline)

    def result(self) -> str:
        parts: list[str] = []
        for block in self.blocks:
            if parts:
                parts.append("\n" if block.tight else f"\n{block.gap}\n")
            parts.append("\n".join(block.lines))
        text = "".join(parts).replace("\xa0", " ")
        text = "\n".join(line.rstrip() for line in text.split("\n"))
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
        return text + "\n" if text else ""

    # -- walking ------------------------------------------------------------------------------

    def walk(self, node) -> None:
        for child in list(node.children):
            if isinstance(child, Comment):
                continue  # includes Outlook's <!--[if mso]> conditional markup
            if isinstance(child, NavigableString):
                if type(child) is NavigableString:  # not Doctype, CData, processing instructions
                    self.inline.append(_SPACES.sub(" ", _SEGMENT_BREAK.sub(_segment_break, str(child))))
                continue
            if isinstance(child, Tag):
                self.element(child)

    def element(self, tag: Tag) -> None:
        name = tag.name.lower()
        if name in SKIPPED_TAGS or _is_hidden(tag):
            return
        if name == "br":
            self.inline.append("\n")
        elif name == "img":
            self.image(tag)
        elif name == "a":
            self.link(tag)
        elif name in HEADINGS:
            self.flush()
            self.walk(tag)
            self.flush(underline=HEADINGS[name], overline=name in OVERLINED)
        elif name in ("ul", "ol"):
            self.listing(tag, ordered=name == "ol")
        elif name == "table":
            self.table(tag)
        elif name == "blockquote":
            self.flush()
            self.prefixes.append(_Prefix("> ", "> "))
            self.quote_starts.append(len(self.blocks))
            self.walk(tag)
            self.flush()
            self.quote_starts.pop()
            self.prefixes.pop()
        elif name == "pre":
            self.flush()
            self._emit(tag.get_text().strip("\n").split("\n"), wrap=False)
        elif name == "hr":
            self.flush()
            self._emit(["-" * min(20, self.width)], wrap=False)
        elif name in BLOCK_TAGS:
            self.flush()
            self.walk(tag)
            self.flush()
        else:
            self.walk(tag)

    def image(self, tag: Tag) -> None:
        if _is_pixel(tag):
            return
        alt = _SPACES.sub(" ", tag.get("alt") or "").strip()
        if alt:
            self.inline.append(alt)

    def link(self, tag: Tag) -> None:
        href = (tag.get("href") or "").strip()
        if tag.find(BLOCK_TAGS):
            # A link around whole blocks (a card): its blocks as usual, then the address on its own.
            self.flush()
            self.walk(tag)
            self.flush()
            if _is_followable(href):
                self.inline.append(href)
                self.flush()
            return
        start = len(self.inline)
        self.walk(tag)
        text = _SPACES.sub(" ", "".join(self.inline[start:])).strip()
        del self.inline[start:]
        if not tag.get_text(strip=True) and href in self.text_link_hrefs:
            return  # a picture linking where a text link also goes: its alt would be a stray line
        self.inline.append(_format_link(text, href, button=_is_button(tag)))

    def listing(self, tag: Tag, *, ordered: bool) -> None:
        self.flush()
        try:
            number = int(tag.get("start", 1))
        except ValueError:
            number = 1
        nested = self.list_depth > 0
        self.list_depth += 1
        for index, item in enumerate(tag.find_all("li", recursive=False)):
            marker = f"{number + index}. " if ordered else "- "
            self.prefixes.append(_Prefix(marker, " " * len(marker)))
            # Items of one list sit on consecutive lines; a nested list hugs its parent item.
            self.next_tight = index > 0 or nested
            self.walk(item)
            self.flush()
            self.prefixes.pop()
        self.list_depth -= 1
        self.next_tight = nested

    def table(self, tag: Tag) -> None:
        self.flush()
        previous_was_data = False
        for row in _rows(tag):
            cells = [c for c in row.find_all(["td", "th"], recursive=False) if not _is_hidden(c)]
            if len(cells) > 1 and not any(c.find(BLOCK_TAGS) for c in cells):
                # A data row: its cells on one line.
                texts = []
                for cell in cells:
                    self.walk(cell)
                    texts.append(_SPACES.sub(" ", "".join(self.inline)).strip())
                    self.inline = []
                texts = [t for t in texts if t]
                if texts:
                    self.inline.append(" | ".join(texts))
                    self.next_tight = previous_was_data
                    self.flush()
                    previous_was_data = True
                continue
            previous_was_data = False
            # A layout row: each cell is a container of blocks.
            for cell in cells:
                self.flush()
                self.walk(cell)
                self.flush()
        caption = tag.find("caption", recursive=False)
        if caption:
            self.walk(caption)
            self.flush()


def display_width(text: str) -> int:
    """Columns ``text`` takes in a monospaced mail reader: wide (CJK) characters count 2,
    combining and zero-width characters 0."""
    if text.isascii():
        return len(text)
    return wcwidth.width(text, control_codes="ignore")


def wrap_line(text: str, width: int, initial_indent: str = "", subsequent_indent: str = "") -> list[str]:
    """Wrap one line of ``text`` into lines of at most ``width`` display columns.

    Breaks at spaces, and between CJK characters where UAX #14 allows; a unit that cannot be
    broken (a URL, a long Latin word) and is wider than the line stands alone on its line. A word
    holding a %%placeholder%% other than a name or an attribute stands alone on its line. Returns [] for blank
    ``text``.
    """
    lines: list[str] = []
    line, used, empty = initial_indent, display_width(initial_indent), True
    for spaces, unit, alone in _units(text):
        unit_width = _measure(unit)
        gap = len(spaces) if not empty else 0
        if not empty and (alone or used + gap + unit_width > width):
            lines.append(line.rstrip(" "))
            line, used, empty, gap = subsequent_indent, len(subsequent_indent), True, 0
        line += " " * gap + unit
        used += gap + unit_width
        empty = False
        if alone:
            lines.append(line)
            line, used, empty = subsequent_indent, len(subsequent_indent), True
    if not empty:
        lines.append(line.rstrip(" "))
    return lines


def _measure(unit: str) -> int:
    width = display_width(unit)
    if "%%" in unit:
        for match in TOKEN.finditer(unit):
            width += (_flowing_columns(match) or 0) - len(match.group(0))
    return width


def _flowing_columns(match: re.Match) -> int | None:
    """The columns a token that flows with the text is measured as; None for one that stands alone."""
    key = match["key"]
    reserved = _FLOWING_COLUMNS.get(key) or (_ATTRIBUTE_COLUMNS if key.startswith(ATTRIBUTE_PREFIX) else None)
    if reserved is None:
        return None
    return max(reserved, display_width(unquote(match["fallback"] or "")))


def _units(text: str):
    """``(spaces_before, unit, alone)`` for each unbreakable piece of ``text``."""
    spaces = ""
    for piece in _SPACE_RUNS.split(text):
        if not piece:
            continue
        if piece[0] == " ":
            spaces = piece
            continue
        if "%%" in piece and any(_flowing_columns(match) is None for match in TOKEN.finditer(piece)):
            yield spaces, piece, True
        elif piece.isascii() or not any(_is_wide(ch) for ch in piece):
            yield spaces, piece, False
        else:
            for index, unit in enumerate(_cjk_units(piece)):
                yield (spaces if index == 0 else ""), unit, False
        spaces = ""


def _cjk_units(piece: str) -> list[str]:
    """Split a space-free run at the UAX #14 break opportunities next to a wide character, so
    Latin words and URLs inside CJK text stay whole."""
    units, start = [], 0
    for index in range(1, len(piece)):
        before, after = piece[index - 1], piece[index]
        if (_is_wide(before) or _is_wide(after)) and _break_allowed(before, after):
            units.append(piece[start:index])
            start = index
    units.append(piece[start:])
    return units


@functools.cache
def _char_class(char: str) -> tuple[str, bool]:
    return str(line_break(char)), _is_wide(char)


_PAIR_BREAKS: dict[tuple, bool] = {}


def _break_allowed(before: str, after: str) -> bool:
    """Whether UAX #14 (uniseg) allows a break between two characters, remembered per pair of
    line-break classes: uniseg walks its rules in pure Python (about 35 us a pair), and between
    two non-space characters the answer depends on the classes alone."""
    key = (_char_class(before), _char_class(after))
    allowed = _PAIR_BREAKS.get(key)
    if allowed is None:
        allowed = _PAIR_BREAKS[key] = 1 in line_break_boundaries(before + after)
    return allowed


@functools.cache
@functools.cache
def _is_wide(char: str) -> bool:
    return wcwidth.wcwidth(char) == 2


def _segment_break(match: re.Match) -> str:
    before, after = match.group(1), match.group(2)
    joined = _is_wide(before) and _is_wide(after) and not (_HANGUL.match(before) or _HANGUL.match(after))
    return before if joined else before + " "


def _rows(table: Tag) -> list[Tag]:
    rows = []
    for child in table.find_all(["tr", "thead", "tbody", "tfoot"], recursive=False):
        if child.name == "tr":
            rows.append(child)
        else:
            rows.extend(child.find_all("tr", recursive=False))
    return rows


def _is_hidden(tag: Tag) -> bool:
    if tag.get("data-plaintext") == "skip" or tag.has_attr("hidden"):
        return True
    if "preheader" in (tag.get("class") or []):
        return True
    return bool(_HIDDEN_STYLE.search(tag.get("style") or ""))


def _is_pixel(tag: Tag) -> bool:
    """A tracking pixel: an image at most one pixel wide or high."""
    if (tag.get("width") or "").strip() in ("0", "1") or (tag.get("height") or "").strip() in ("0", "1"):
        return True
    return bool(_PIXEL_STYLE.search(tag.get("style") or ""))


def _is_button(tag: Tag) -> bool:
    return tag.has_attr("data-button") or bool(_BUTTON_CLASSES.intersection(tag.get("class") or []))


def _is_followable(href: str) -> bool:
    return bool(href) and not href.startswith("#") and not href.lower().startswith("javascript:")


def _bare(url: str) -> str:
    url = url.lower()
    for scheme in ("mailto:", "tel:", "https://", "http://"):
        if url.startswith(scheme):
            url = url[len(scheme) :]
            break
    return url.rstrip("/")


def _format_link(text: str, href: str, *, button: bool) -> str:
    if not _is_followable(href):
        return text
    if not text:
        return href
    if _bare(text) == _bare(href):
        # The link shows its own address: print it once (the address itself for mailto:/tel:).
        return text if href.lower().startswith(("mailto:", "tel:")) else href
    if button:
        # After a Chinese or Japanese label, the full-width colon, and the address on the next line.
        return f"{text}：\n{href}" if _is_wide(text[-1]) else f"{text}: {href}"
    return f"{text} ({href})"
