"""CSV import of subscribers: streamed, chunked, bulk queries, line-numbered report.

The file is read line by line from a binary stream and decoded per line, so a 1,000,000-row
file never sits in memory and a byte that is not valid in the chosen encoding is reported with
its line number. Encodings: UTF-8 by default (a byte-order mark is accepted and dropped); for
files saved by older spreadsheet software the operator chooses Windows-1252 or Latin-1
explicitly. We do not guess the encoding: a wrong guess silently corrupts names, a clear error
does not. UTF-16 files are not supported (save as "CSV UTF-8").

Rules: every row is validated (``normalise_email``); an address that appears twice in the file
is imported once and the later lines are reported; an address in ``Suppression`` (erased) or
whose subscriber is suppressed (bounced, complained, blocked) is skipped entirely; a
subscription that was unsubscribed is never re-activated. Every subscription that changes gets
a consent record (source import, the file name, the note, the admin user) and a SubscriberEvent.

Speed (docs/performance.md, "CSV import"): rows are parsed and validated in Python, one at a time
(``_parse``, ``normalise_email``: the single source of the rules); each chunk is then decided with
two look-ups (suppressions, existing addresses) and written with one staged, set-based
``INSERT ... SELECT`` per table (``subscribers.bulk``: COPY on PostgreSQL, executemany on SQLite),
in one transaction per chunk, so a chunk is either wholly imported or not at all and importing
the file again adds nothing twice.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mail.addresses import has_control_characters
from subscribers import bulk, tasks
from subscribers.attributes import MAX_NAME_LENGTH, normalise_name
from subscribers.models import (
    ImportJob,
    MailingList,
    Subscriber,
    SubscriberEvent,
    Subscription,
    Suppression,
    contains_nul,
    normalise_email,
)
from subscribers.tokens import redact

logger = logging.getLogger(__name__)

CHUNK_SIZE = 5000  # Rows per transaction: 14% faster than 1,000 on SQLite; the write lock is held well under a second.
MAX_NOTES = 1000  # Line-numbered problems kept for the report; all of them are counted.
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
ENCODINGS = {
    "utf-8": gettext_lazy("UTF-8 (also with a byte-order mark)"),
    "cp1252": gettext_lazy("Windows-1252 (older Excel on Windows)"),
    "latin-1": gettext_lazy("Latin-1 (ISO-8859-1)"),
}
# A cell larger than the csv module's default limit (128 KB) stopped the whole file; with this
# one an oversized cell is one row's error ("longer than ..."), as any other bad value is.
# (csv.field_size_limit is process-wide; raising it only lets longer cells be read.)
MAX_CELL_CHARS = 4 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL_CHARS))
CORE_FIELDS = ("email", "name", "language")
# Header spellings recognised when proposing a column map.
HEADER_GUESSES = {
    "email": {"email", "e-mail", "email address", "e-mail address", "mail", "address"},
    "name": {"name", "full name", "fullname", "first name"},
    "language": {"language", "lang", "locale"},
}
# The same kinds as the flows in services.py write, so the history reads the same. Rows are
# written in bulk (bulk_create), so an import sends no ``subscribed`` signal per subscriber.
# A new subscriber's uid (UUID version 4), made by the database in the set-based insert.
UUID_SQL = {
    "postgresql": "gen_random_uuid()",
    "sqlite": "lower(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) || "
    "substr('89ab', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || hex(randomblob(6)))",
}
EVENT_KIND = {
    Subscription.Status.SUBSCRIBED: SubscriberEvent.Kind.SUBSCRIBED,
    Subscription.Status.PENDING: SubscriberEvent.Kind.SUBSCRIBE_REQUESTED,
}


class ImportFileError(Exception):
    """The file as a whole cannot be read (encoding, no header, no email column, not text)."""


# Signatures of files that are not CSV text, with what to tell the operator.
_BINARY_SIGNATURES = {
    b"PK\x03\x04": gettext_lazy("an Excel workbook or another zip file: save it as CSV first"),
    b"\xd0\xcf\x11\xe0": gettext_lazy("an old Excel (.xls) file: save it as CSV first"),
    b"%PDF": gettext_lazy("a PDF"),
    b"\x89PNG": gettext_lazy("an image"),
    b"\xff\xd8\xff": gettext_lazy("an image"),
    b"GIF8": gettext_lazy("an image"),
}


def check_text_file(stream: BinaryIO) -> None:
    """Refuse anything but CSV text, from the content (never the name or the browser's type); rewinds.

    Binary files (a NUL byte, a known signature) and markup (HTML, SVG, XML: a first character
    of "<") are refused with ``ImportFileError``: stored uploads must never be a page or a script.
    """
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    if not head.strip():
        raise ImportFileError(_("The file is empty."))
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise ImportFileError(_("This is not a CSV file: it looks like %(what)s.") % {"what": what})
    if b"\x00" in head:
        raise ImportFileError(_("This is not a CSV text file (it holds binary data). UTF-16 files are not supported."))
    if head.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"<"):
        raise ImportFileError(_("This is not a CSV file: it looks like HTML or XML."))


@dataclass
class ImportResult:
    """Counts for one import. ``notes`` holds the first MAX_NOTES line-numbered problems."""

    processed_rows: int = 0
    created_count: int = 0  # New subscribers.
    updated_count: int = 0  # Existing subscribers given a new or changed subscription or data.
    skipped_count: int = 0  # Rows that changed nothing: duplicates, suppressed, unsubscribed, unchanged.
    error_count: int = 0  # Invalid rows.
    duplicate_count: int = 0
    suppressed_count: int = 0
    unsubscribed_count: int = 0
    notes: list[dict] = field(default_factory=list)
    pending_subscription_ids: list[int] = field(default_factory=list)

    def note(self, line: int, kind: str, message: str, value: str = "") -> None:
        if len(self.notes) < MAX_NOTES:
            entry = {"line": line, "kind": kind, "message": message}
            if value:
                entry["value"] = value[:200]
            self.notes.append(entry)

    def error(self, line: int, message: str, value: str = "") -> None:
        self.error_count += 1
        self.note(line, "error", message, value)


@dataclass
class ImportOptions:
    """What to do with the rows: target lists, column map, mode and the consent record."""

    lists: list[MailingList]
    # By position (a list: the target of each column, "" to ignore it; what the admin sends) or
    # by header name (a dict; the command line). Repeated header names need positions.
    column_map: list[str] | dict[str, str]
    mode: str = ImportJob.Mode.CONFIRM
    consent_note: str = ""
    source_name: str = ""
    actor: object = None  # The admin user, or None from the command line.
    job_id: int | None = None
    chunk_size: int = CHUNK_SIZE
    # Replace a name the subscriber already has (they may have typed it themselves): off unless
    # the operator chooses it. An empty name is always filled in.
    update_names: bool = False

    def __post_init__(self):
        if self.mode not in ImportJob.Mode.values:
            raise ValueError(f"Unknown import mode {self.mode!r}.")
        if self.mode == ImportJob.Mode.SUBSCRIBE and not self.consent_note.strip():
            raise ValueError(_("Subscribing directly needs a note saying where and how consent was obtained."))
        if not self.lists:
            raise ValueError(_("Choose at least one list."))
        if "email" not in column_targets(self.column_map):
            raise ValueError(_("Map one column to the email address."))

    @property
    def consent_detail(self) -> str:
        who = f" by {self.actor.get_username()}" if self.actor is not None else ""
        return redact(f"Import of {self.source_name}{who}: {self.consent_note}".strip())[:500]


@dataclass
class _Row:
    line: int
    email: str
    normalised: str
    name: str
    language: str
    attributes: dict


# --- Reading ----------------------------------------------------------------------------------


def _decoded_lines(stream: BinaryIO, encoding: str) -> Iterator[str]:
    """Yield the file's lines as text; a byte the encoding rejects raises with its line number."""
    codec = codecs.lookup(encoding).name
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8) and codec == "utf-8":
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield raw.decode(codec)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                _(
                    "Line %(line)s is not valid %(encoding)s (byte %(byte)s at column %(column)s). Save the file "
                    "as CSV UTF-8, or choose the encoding it was saved in (e.g. Windows-1252)."
                )
                % {
                    "line": number,
                    "encoding": ENCODINGS.get(encoding, encoding),
                    "byte": f"0x{raw[exc.start]:02x}",
                    "column": exc.start + 1,
                }
            ) from None


def detect_delimiter(stream: BinaryIO, encoding: str = "utf-8") -> str:
    """Guess the delimiter (one of ``, ; tab |``) from the start of ``stream``; rewinds it."""
    sample = stream.read(SNIFF_BYTES)
    stream.seek(0)
    text = sample.decode(encoding if encoding != "utf-8" else "utf-8-sig", errors="replace")
    if len(sample) == SNIFF_BYTES:
        text = text.rsplit("\n", 1)[0]  # Drop the partial last line.
    try:
        return csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # One column, or too little text: count the candidates on the header line instead.
        header = text.split("\n", 1)[0]
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _check_delimiter(delimiter: str) -> str:
    if delimiter not in DELIMITERS or len(delimiter) != 1:
        raise ImportFileError(
            _("Unsupported delimiter %(delimiter)r; use a comma, semicolon, tab or pipe.") % {"delimiter": delimiter}
        )
    return delimiter


def _check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ImportFileError(
            _("Unsupported encoding %(encoding)r; choose one of %(choices)s.")
            % {"encoding": encoding, "choices": ", ".join(ENCODINGS)}
        )
    return encoding


def read_rows(
    stream: BinaryIO, encoding: str = "utf-8", delimiter: str | None = None
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Open a CSV stream: returns its header and an iterator of (first line number, cells)."""
    _check_encoding(encoding)
    delimiter = _check_delimiter(delimiter) if delimiter else detect_delimiter(stream, encoding)
    reader = csv.reader(_decoded_lines(stream, encoding), delimiter=delimiter)
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise ImportFileError(_("The file is empty.")) from None
    except csv.Error as exc:
        raise ImportFileError(
            _("Line %(line)s could not be read as CSV: %(error)s.") % {"line": 1, "error": exc}
        ) from None
    if not any(header):
        raise ImportFileError(_("The first line must name the columns (e.g. email,name)."))

    def rows():
        last = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(
                    _("Line %(line)s could not be read as CSV: %(error)s.") % {"line": last + 1, "error": exc}
                ) from None
            start, last = last + 1, reader.line_num
            yield start, cells

    return header, rows()


def read_header(stream: BinaryIO, encoding: str = "utf-8", delimiter: str | None = None) -> tuple[list[str], str]:
    """The column names of a CSV stream and the delimiter in use; rewinds the stream."""
    delimiter = _check_delimiter(delimiter) if delimiter else detect_delimiter(stream, encoding)
    header, _rows = read_rows(stream, encoding, delimiter)
    stream.seek(0)
    return header, delimiter


def guess_targets(header: Iterable[str]) -> list[str]:
    """Propose a target per column, by position: the first column with a known spelling of
    email/name/language becomes that field, every other named column an attribute ("" ignores)."""
    targets = []
    taken = set()
    for column in header:
        key = column.strip().lower()
        target = next((f for f, names in HEADER_GUESSES.items() if key in names and f not in taken), None)
        if target:
            taken.add(target)
            targets.append(target)
        else:
            targets.append(attribute_key(column) if column else "")
    return targets


def guess_column_map(header: Iterable[str]) -> dict[str, str]:
    """Propose a column map by header name (see ``guess_targets``); a repeated name keeps its first guess."""
    header = list(header)
    mapping = {}
    for column, target in zip(header, guess_targets(header), strict=True):
        if column and column not in mapping:
            mapping[column] = target
    return mapping


def column_targets(column_map: list[str] | dict[str, str]) -> list[str]:
    """The fields a column map fills (positional list or by-name dict), for validation."""
    return list(column_map.values()) if isinstance(column_map, dict) else list(column_map)


def attribute_key(column: str) -> str:
    """A CSV column title as an attribute name: the editor's rule (subscribers.attributes), cut to its length."""
    return normalise_name(column)[:MAX_NAME_LENGTH]


def count_lines(stream: BinaryIO) -> int:
    """Data lines in the file (lines minus the header), counted in 1 MB blocks; rewinds."""
    lines = 0
    last = b"\n"
    while block := stream.read(1024 * 1024):
        lines += block.count(b"\n")
        last = block[-1:]
    stream.seek(0)
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


# --- Importing --------------------------------------------------------------------------------


def _parse(line: int, cells: list[str], indexes: dict, result: ImportResult) -> _Row | None:
    """One validated row, or None (an error is recorded) for a bad one; blank rows are ignored."""
    if not any(cell.strip() for cell in cells):
        return None

    def cell(index):
        return cells[index].strip() if index < len(cells) else ""

    raw_email = cell(indexes["email"])
    if not raw_email:
        result.error(line, _("No email address."))
        return None
    try:
        normalised = normalise_email(raw_email)
    except ValidationError:
        result.error(line, _("Not a valid email address."), raw_email)
        return None
    if len(raw_email) > 254 or len(normalised) > 254:
        result.error(line, _("The email address is longer than 254 characters."), raw_email[:60])
        return None
    # A spreadsheet cell may wrap a name over lines: joined into one line (the name becomes part
    # of the To: header); any other control character refuses the row, as the forms refuse it.
    name = " ".join(cell(indexes["name"]).split()) if "name" in indexes else ""
    if len(name) > 200:
        result.error(line, _("The name is longer than 200 characters."), name[:60])
        return None
    if has_control_characters(name):
        # The name becomes part of the To: header: refused here as the forms refuse it.
        result.error(line, _("The name contains a line break or another control character."), repr(name)[:60])
        return None
    language = cell(indexes["language"]) if "language" in indexes else ""
    if len(language) > 16 or has_control_characters(language):
        result.error(
            line,
            _("The language code is longer than 16 characters or holds a control character."),
            repr(language)[:60],
        )
        return None
    attributes = {key: cell(index) for key, index in indexes["attributes"].items() if cell(index)}
    if contains_nul(attributes):
        # PostgreSQL cannot store a NUL in text or JSON: the whole chunk failed on it.
        result.error(line, "A column holds a NUL character.")
        return None
    return _Row(line, raw_email, normalised, name, language, attributes)


class _Importer:
    """Applies the rules to one chunk of parsed rows at a time, then writes it set-based.

    The decisions (repeat, erased, suppressed, created meanwhile, merge, unsubscribed, upgrade)
    are taken here in Python, per row, from a few look-ups per chunk; the writes are one staged
    ``INSERT ... SELECT`` per table and chunk (``subscribers.bulk``: COPY on PostgreSQL,
    executemany on SQLite), in one transaction per chunk.
    """

    def __init__(self, options: ImportOptions, result: ImportResult):
        self.options = options
        self.result = result
        self.list_ids = [mailing_list.pk for mailing_list in options.lists]
        # Subscribers with a higher pk were created by this import: meeting one again means the
        # address is repeated in the file. This keeps duplicate detection independent of file size.
        self.max_pk_before = Subscriber.objects.aggregate(m=Max("pk"))["m"] or 0
        # Existing subscribers already met in the file (bounded by the database, not the file).
        self.seen_existing: set[int] = set()
        self.actor_id = options.actor.pk if options.actor is not None else None
        self.status = (
            Subscription.Status.SUBSCRIBED if options.mode == ImportJob.Mode.SUBSCRIBE else Subscription.Status.PENDING
        )
        # The event's detail as json.dumps writes it, with the line number between the two halves.
        before = json.dumps({"via": Subscription.Source.IMPORT, "file": options.source_name})
        after = json.dumps({"note": options.consent_note, "import_job": options.job_id})
        self.detail_head, self.detail_tail = before[:-1] + ', "line": ', ", " + after[1:]

    def process(self, rows: list[_Row]) -> None:
        result = self.result
        unique: dict[str, _Row] = {}
        for row in rows:
            if first := unique.get(row.normalised):
                self._duplicate(row, _("Repeats the address on line %(line)s.") % {"line": first.line})
            else:
                unique[row.normalised] = row
        if not unique:
            return

        erased = Suppression.objects.matching(unique)
        found = [pk for (pk,) in bulk.matching(Subscriber, "email_normalised", unique, ("id",))]
        existing = (
            {
                s.email_normalised: s
                for s in Subscriber.objects.filter(pk__in=found).only(
                    "pk", "email_normalised", "state", "name", "language", "attributes"
                )
            }
            if found
            else {}
        )
        now = timezone.now()
        to_create: list[_Row] = []
        to_update, targets, recent = [], {}, {}
        for normalised, row in unique.items():
            if normalised in erased:
                self._skip_suppressed(row, _("The address was erased and may not be added again."))
                continue
            subscriber = existing.get(normalised)
            if subscriber is None:
                to_create.append(row)
                continue
            if subscriber.pk in self.seen_existing:
                self._duplicate(row, _("Repeats an address from an earlier line."))
                continue
            if subscriber.is_suppressed:
                self.seen_existing.add(subscriber.pk)
                self._skip_suppressed(
                    row, _("The address is suppressed (%(state)s).") % {"state": subscriber.get_state_display().lower()}
                )
                continue
            if subscriber.pk > self.max_pk_before:
                # Created while this import runs: by an earlier line of the file (a duplicate) or,
                # rarely, by the form or another import at the same time. Subscribing again is
                # idempotent and tells the two apart: only the second changes anything.
                recent[subscriber.pk] = row
            else:
                self.seen_existing.add(subscriber.pk)
                if self._merge(subscriber, row):
                    subscriber.updated_at = now
                    to_update.append(subscriber)
            targets[subscriber.pk] = row

        with transaction.atomic():
            created_ids = self._create(to_create, targets, now)
            if to_update:
                Subscriber.objects.bulk_update(to_update, ["name", "language", "attributes", "updated_at"])
            changed = self._subscribe(targets, now, new_ids=created_ids)
        result.created_count += len(created_ids)
        for pk, row in recent.items():
            if pk in changed:
                result.updated_count += 1
            else:
                self._duplicate(row, _("Repeats an address from an earlier line."))
        existing_ids = set(targets) - created_ids - set(recent)
        updated = (changed & existing_ids) | {s.pk for s in to_update}
        result.updated_count += len(updated)
        result.skipped_count += len(existing_ids - updated)

    def _create(self, rows: list[_Row], targets: dict[int, _Row], now) -> set[int]:
        """Insert the new subscribers; adds them to ``targets`` and returns their ids.

        An address that signed up through the form (or another import) since the look-up wins the
        conflict: it is not created here but subscribed like any existing subscriber.
        """
        if not rows:
            return set()
        language = settings.LANGUAGE_CODE
        created = bulk.insert_rows(
            Subscriber,
            ("email", "email_normalised", "name", "language", "attributes"),
            (
                (row.email, row.normalised, row.name, row.language or language, json.dumps(row.attributes))
                for row in rows
            ),
            constants={"created_at": now, "updated_at": now},
            expressions={"uid": UUID_SQL},
            ignore_conflicts=True,
            returning=("email_normalised", "id"),
        )
        by_address = {row.normalised: row for row in rows}
        for normalised, pk in created:
            targets[pk] = by_address.pop(normalised)
        if by_address:
            for normalised, pk in Subscriber.objects.filter(email_normalised__in=list(by_address)).values_list(
                "email_normalised", "pk"
            ):
                targets[pk] = by_address[normalised]
        return {pk for _normalised, pk in created}

    def _merge(self, subscriber: Subscriber, row: _Row) -> bool:
        """Fill in the file's name, language and attributes; True when something changed.

        A name the subscriber already has is replaced only with ``options.update_names``.
        """
        changed = False
        if row.name and row.name != subscriber.name and (self.options.update_names or not subscriber.name):
            subscriber.name, changed = row.name, True
        if row.language and row.language != subscriber.language:
            subscriber.language, changed = row.language, True
        if row.attributes and any(subscriber.attributes.get(k) != v for k, v in row.attributes.items()):
            subscriber.attributes = {**subscriber.attributes, **row.attributes}
            changed = True
        return changed

    def _subscribe(self, targets: dict[int, _Row], now, new_ids: set[int]) -> set[int]:
        """Create or upgrade subscriptions for ``targets``; returns the subscriber ids changed."""
        if not targets:
            return set()
        options = self.options
        consent = {
            "consent_at": now,
            "consent_source": Subscription.Source.IMPORT,
            "consent_detail": options.consent_detail,
            "consent_text": "",
            "consent_text_hash": "",
            "consent_ip": None,
            "consent_user_agent": "",
        }
        current = {}
        old_ids = [pk for pk in targets if pk not in new_ids]
        if old_ids:
            current = {
                (sub_id, list_id): (pk, status)
                for pk, sub_id, list_id, status in Subscription.objects.filter(
                    subscriber_id__in=old_ids, list_id__in=self.list_ids
                ).values_list("pk", "subscriber_id", "list_id", "status")
            }
        new, upgrade, events, changed = [], [], [], set()
        head, tail = self.detail_head, self.detail_tail
        for subscriber_id, row in targets.items():
            for list_id in self.list_ids:
                found = current.get((subscriber_id, list_id))
                if found is None:
                    new.append((subscriber_id, list_id))
                elif found[1] == Subscription.Status.UNSUBSCRIBED:
                    self.result.unsubscribed_count += 1
                    self.result.note(row.line, "unsubscribed", _("Unsubscribed from this list: not re-subscribed."))
                    continue
                elif found[1] == Subscription.Status.PENDING and self.status == Subscription.Status.SUBSCRIBED:
                    upgrade.append(found[0])
                else:
                    continue
                changed.add(subscriber_id)
                events.append((subscriber_id, list_id, f"{head}{row.line}{tail}"))
        if new:
            inserted = bulk.insert_rows(
                Subscription,
                ("subscriber", "list"),
                new,
                constants={"status": self.status, "created_at": now, **consent},
                ignore_conflicts=True,
                returning=("id",) if self.status == Subscription.Status.PENDING else (),
            )
            self.result.pending_subscription_ids.extend(pk for (pk,) in inserted)
        if upgrade:
            Subscription.objects.filter(pk__in=upgrade, status=Subscription.Status.PENDING).update(
                status=Subscription.Status.SUBSCRIBED, **consent
            )
        if events:
            bulk.insert_rows(
                SubscriberEvent,
                ("subscriber", "list", "detail"),
                events,
                constants={"kind": EVENT_KIND[self.status], "actor": self.actor_id, "at": now},
            )
        return changed

    def _duplicate(self, row: _Row, message: str) -> None:
        self.result.duplicate_count += 1
        self.result.skipped_count += 1
        self.result.note(row.line, "duplicate", message, row.email)

    def _skip_suppressed(self, row: _Row, message: str) -> None:
        self.result.suppressed_count += 1
        self.result.skipped_count += 1
        self.result.note(row.line, "suppressed", message)


def _column_indexes(header: list[str], column_map: list[str] | dict[str, str]) -> dict:
    if isinstance(column_map, dict):
        targets = [column_map.get(column) or "" for column in header]
    elif len(column_map) == len(header):
        targets = column_map
    else:
        raise ImportFileError(
            _("The column map names %(mapped)s columns but the file has %(columns)s.")
            % {"mapped": len(column_map), "columns": len(header)}
        )
    indexes = {"attributes": {}}
    for index, target in enumerate(targets):
        target = (target or "").strip()
        if not target:
            continue
        if target in CORE_FIELDS:
            indexes.setdefault(target, index)
        else:
            indexes["attributes"][attribute_key(target)] = index
    if "email" not in indexes:
        raise ImportFileError(_("No column of the file is mapped to the email address."))
    return indexes


@dataclass
class _Chunk:
    """Up to ``chunk_size`` valid rows, with the lines read for them and their errors, in order."""

    rows: list[_Row] = field(default_factory=list)
    lines: int = 0
    errors: ImportResult = field(default_factory=ImportResult)


def _chunks(rows: Iterable[tuple[int, list[str]]], indexes: dict, chunk_size: int) -> Iterator[_Chunk]:
    """Parse and validate (``_parse``) the rows, cut into chunks exactly where the importer flushes."""
    chunk = _Chunk()
    for line, cells in rows:
        chunk.lines += 1
        row = _parse(line, cells, indexes, chunk.errors)
        if row is not None:
            chunk.rows.append(row)
        if len(chunk.rows) >= chunk_size:
            yield chunk
            chunk = _Chunk()
    yield chunk


_END = object()


def _read_ahead(chunks: Iterator[_Chunk], depth: int = 2) -> Iterator[_Chunk]:
    """``chunks``, read and parsed by a thread while the caller writes the one before.

    Parsing is Python, writing mostly waits for the database: overlapped, the import takes about
    the longer of the two instead of their sum. At most ``depth`` chunks wait (memory stays flat).
    The thread touches no database; it speaks the caller's language (error messages) and hands
    over any exception (a byte the encoding rejects) in order, after the chunks before it.
    """
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    language = translation.get_language()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read():
        with translation.override(language):
            try:
                for chunk in chunks:
                    if not put(chunk):
                        return
            except BaseException as exc:  # Handed to the caller, raised there.
                put(exc)
                return
            put(_END)

    reader = threading.Thread(target=read, name="import-reader", daemon=True)
    reader.start()
    try:
        while (item := waiting.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def import_csv(
    stream: BinaryIO,
    options: ImportOptions,
    *,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    progress: Callable[[ImportResult], None] | None = None,
    on_pending: Callable[[list[int]], None] | None = None,
) -> ImportResult:
    """Import a CSV from a binary, seekable ``stream`` into ``options.lists``.

    Returns the counts and the first line-numbered notes. ``progress`` is called after every
    chunk. In confirmation mode ``on_pending`` receives the ids of each chunk's new pending
    subscriptions once that chunk is committed (to send the confirmation emails). Raises
    ``ImportFileError`` when the file as a whole cannot be read; rows already committed stay.
    """
    result = ImportResult()
    header, rows = read_rows(stream, encoding, delimiter)
    indexes = _column_indexes(header, options.column_map)
    importer = _Importer(options, result)
    # closing(): a failed chunk stops the reader thread before the caller closes the file.
    with contextlib.closing(_read_ahead(_chunks(rows, indexes, options.chunk_size))) as chunks, bulk.bulk_cache():
        for chunk in chunks:
            result.processed_rows += chunk.lines
            result.error_count += chunk.errors.error_count
            result.notes.extend(chunk.errors.notes[: MAX_NOTES - len(result.notes)])
            importer.process(chunk.rows)
            if on_pending and result.pending_subscription_ids:
                ids = list(result.pending_subscription_ids)
                transaction.on_commit(lambda ids=ids: on_pending(ids))
            result.pending_subscription_ids.clear()
            if progress:
                progress(result)
    return result


# --- Jobs -------------------------------------------------------------------------------------


def send_confirmations(subscription_ids: list[int]) -> None:
    """Enqueue the double opt-in email (the flows' ``send_confirmation`` task) per subscriber."""
    by_subscriber: dict[int, list[int]] = {}
    for subscriber_id, list_id in Subscription.objects.filter(pk__in=subscription_ids).values_list(
        "subscriber_id", "list_id"
    ):
        by_subscriber.setdefault(subscriber_id, []).append(list_id)
    for subscriber_id, list_ids in by_subscriber.items():
        tasks.send_confirmation.enqueue(subscriber_id, list_ids)


def abandon_after() -> datetime.timedelta:
    return datetime.timedelta(hours=int(settings.BROADSHEET["IMPORT_ABANDON_HOURS"]))


def create_import_job(uploaded_file, user) -> ImportJob:
    """Store an uploaded CSV privately as an ImportJob awaiting its column map (nothing runs yet).

    Raises ``ImportFileError`` when the content is not CSV text. The caller schedules the sweep
    that deletes the file if nobody maps the columns in time (``import_tasks.schedule_sweep``).
    """
    check_text_file(uploaded_file)
    job = ImportJob(original_name=getattr(uploaded_file, "name", "upload.csv")[:255], created_by=user)
    job.file.save(job.original_name, uploaded_file, save=False)
    job.save()
    return job


def sweep_imports(now=None) -> int:
    """Delete abandoned uploads: jobs never mapped within ``IMPORT_ABANDON_HOURS`` (marked failed)
    and stray files no waiting or running job refers to. Returns the number of files deleted.

    Safe to run at any time and twice: a job being mapped or imported is never touched.
    """
    now = now or timezone.now()
    cutoff = now - abandon_after()
    deleted = 0
    for job in ImportJob.objects.abandoned(before=cutoff):
        job.abandon(at=now)
        deleted += 1
    storage = ImportJob._meta.get_field("file").storage
    in_use = set(
        ImportJob.objects.filter(status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]).values_list(
            "file", flat=True
        )
    )
    try:
        _dirs, files = storage.listdir("imports")
    except FileNotFoundError:
        files = []
    for name in files:
        path = f"imports/{name}"
        if path not in in_use and storage.get_modified_time(path) < cutoff:
            storage.delete(path)
            deleted += 1
    return deleted


def configure_import_job(
    job: ImportJob, *, lists, column_map, mode, consent_note="", encoding="utf-8", delimiter="", update_names=False
) -> ImportJob:
    """Set what to import where (``import_tasks.queue_import_job`` then enqueues the run).

    Raises ValueError for options the importer would refuse (no email column, no list,
    subscribing directly without a consent note, an unknown encoding or delimiter).
    """
    ImportOptions(lists=list(lists), column_map=column_map, mode=mode, consent_note=consent_note)
    _check_encoding(encoding)
    if delimiter:
        _check_delimiter(delimiter)
    job.column_map = column_map
    job.mode = mode
    job.consent_note = consent_note
    job.update_names = update_names
    job.save(update_fields=["column_map", "mode", "consent_note", "update_names"])
    job.lists.set(lists)
    return job


def run_import_job(job_id: int, *, encoding: str = "utf-8", delimiter: str = "") -> ImportJob | None:
    """Run one waiting ImportJob to the end; a job already started or finished is left alone."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None  # Run twice, or deleted: nothing to do.
    job = ImportJob.objects.get(pk=job_id)

    def save_progress(result: ImportResult):
        job.processed_rows = result.processed_rows
        job.created_count = result.created_count
        job.updated_count = result.updated_count
        job.skipped_count = result.skipped_count
        job.error_count = result.error_count
        job.errors = result.notes
        job.save(
            update_fields=[
                "processed_rows", "created_count", "updated_count", "skipped_count", "error_count", "errors"
            ]
        )  # fmt: skip

    try:
        with job.file.open("rb") as stream:
            job.total_rows = count_lines(stream)
            job.save(update_fields=["total_rows"])
            options = ImportOptions(
                lists=list(job.lists.all()),
                column_map=job.column_map,
                mode=job.mode,
                consent_note=job.consent_note,
                source_name=job.original_name,
                actor=job.created_by,
                job_id=job.pk,
                update_names=job.update_names,
            )
            import_csv(
                stream,
                options,
                encoding=encoding,
                delimiter=delimiter or None,
                progress=save_progress,
                on_pending=send_confirmations if job.mode == ImportJob.Mode.CONFIRM else None,
            )
    except (ImportFileError, ValueError) as exc:
        job.errors = [*job.errors[: MAX_NOTES - 1], {"line": None, "kind": "fatal", "message": str(exc)}]
        job.status = ImportJob.Status.FAILED
    except Exception:
        logger.exception("Import job %s failed", job_id)
        job.errors = [*job.errors[: MAX_NOTES - 1], {"line": None, "kind": "fatal", "message": _("Unexpected error.")}]
        job.status = ImportJob.Status.FAILED
    else:
        job.status = ImportJob.Status.DONE
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "errors", "finished_at"])
    # The upload is a copy of personal data that a GDPR erasure could not reach: keep only the
    # report. The name stays in the row (the field may not be empty) but the file is gone.
    job.delete_file()
    return job
