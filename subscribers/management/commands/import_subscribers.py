"""manage.py import_subscribers FILE --list SLUG [...]: the admin's CSV import, with a progress bar."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from tqdm import tqdm

from subscribers.importing import (
    ENCODINGS,
    ImportFileError,
    ImportOptions,
    count_lines,
    guess_column_map,
    import_csv,
    read_header,
    send_confirmations,
)
from subscribers.models import ImportJob, MailingList


class Command(BaseCommand):
    help = "Import subscribers from a CSV file (streamed; columns mapped by their header names)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--list", dest="lists", action="append", required=True, help="List slug (repeatable).")
        parser.add_argument("--mode", choices=ImportJob.Mode.values, default=ImportJob.Mode.CONFIRM)
        parser.add_argument("--consent-note", default="", help="Where and how consent was obtained (subscribe mode).")
        parser.add_argument("--encoding", choices=list(ENCODINGS), default="utf-8")
        parser.add_argument("--delimiter", default="", help="Default: detected (, ; tab |). Use 'tab' for a tab.")
        parser.add_argument(
            "--column", action="append", default=[], metavar="HEADER=FIELD",
            help="Map a column (email, name, language, or an attribute name); default: guessed from the header.",
        )  # fmt: skip
        parser.add_argument(
            "--update-names", action="store_true", help="Replace names subscribers already have (default: keep them)."
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(
        self, *args, file, lists, mode, consent_note, encoding, delimiter, column, update_names, no_progress, **options
    ):
        found = list(MailingList.objects.filter(slug__in=lists))
        missing = set(lists) - {m.slug for m in found}
        if missing:
            raise CommandError(_("No list with slug %(slug)s.") % {"slug": ", ".join(sorted(missing))})
        delimiter = "\t" if delimiter == "tab" else delimiter
        try:
            with open(file, "rb") as stream:
                header, delimiter = read_header(stream, encoding, delimiter or None)
                column_map = guess_column_map(header)
                for item in column:
                    name, _sep, target = item.partition("=")
                    column_map[name] = target
                import_options = ImportOptions(
                    lists=found,
                    column_map=column_map,
                    mode=mode,
                    consent_note=consent_note,
                    source_name=str(file).rsplit("/", 1)[-1],
                    update_names=update_names,
                )
                total = None if no_progress else count_lines(stream)
                with tqdm(total=total, unit="rows", disable=no_progress, file=self.stderr) as bar:

                    def progress(result):
                        bar.update(result.processed_rows - bar.n)

                    result = import_csv(
                        stream,
                        import_options,
                        encoding=encoding,
                        delimiter=delimiter,
                        progress=progress,
                        on_pending=send_confirmations if mode == ImportJob.Mode.CONFIRM else None,
                    )
        except (ImportFileError, ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc

        for note in result.notes:
            self.stdout.write(
                (
                    _("Line %(line)s: %(kind)s: %(message)s")
                    % {"line": note["line"], "kind": note["kind"], "message": note["message"]}
                    + f" {note.get('value', '')}"
                ).rstrip()
            )
        if result.error_count + result.skipped_count > len(result.notes):
            self.stdout.write(_("(only the first %(count)s problems are listed)") % {"count": len(result.notes)})
        self.stdout.write(
            _(
                "%(rows)s rows: created %(created)s, updated %(updated)s, skipped %(skipped)s (duplicates "
                "%(duplicates)s, suppressed %(suppressed)s, unsubscribed %(unsubscribed)s), errors %(errors)s."
            )
            % {
                "rows": result.processed_rows,
                "created": result.created_count,
                "updated": result.updated_count,
                "skipped": result.skipped_count,
                "duplicates": result.duplicate_count,
                "suppressed": result.suppressed_count,
                "unsubscribed": result.unsubscribed_count,
                "errors": result.error_count,
            }
        )
