"""Today's importer, frozen: the oracle the set-based importer is compared against, row for row.

This is ``subscribers.importing._Importer`` as it was at efa0461 (ORM ``bulk_create`` per chunk,
before the staged, set-based writes), kept verbatim apart from its imports so that
``test_import_equivalence.py`` can run it and the current importer over the same hostile file and
compare every subscriber, subscription, consent record, event and the job's counts and report.
It is test code only: never import it from the application.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from subscribers.importing import EVENT_KIND, ImportOptions, ImportResult, _Row
from subscribers.models import ImportJob, Subscriber, SubscriberEvent, Subscription, Suppression


class ReferenceImporter:
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
        existing = {
            s.email_normalised: s
            for s in Subscriber.objects.filter(email_normalised__in=list(unique)).only(
                "pk", "email_normalised", "state", "name", "language", "attributes"
            )
        }
        now = timezone.now()
        to_create, to_update, targets, recent = [], [], {}, {}
        for normalised, row in unique.items():
            if normalised in erased:
                self._skip_suppressed(row, _("The address was erased and may not be added again."))
                continue
            subscriber = existing.get(normalised)
            if subscriber is None:
                to_create.append(
                    Subscriber(
                        email=row.email,
                        email_normalised=normalised,
                        name=row.name,
                        language=row.language or settings.LANGUAGE_CODE,
                        attributes=row.attributes,
                        created_at=now,
                    )
                )
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

        created_ids = set()
        with transaction.atomic():
            if to_create:
                # ignore_conflicts: an address that signed up through the form a moment ago wins.
                Subscriber.objects.bulk_create(to_create, ignore_conflicts=True)
                created = Subscriber.objects.filter(
                    email_normalised__in=[s.email_normalised for s in to_create], pk__gt=self.max_pk_before
                ).values_list("email_normalised", "pk")
                for normalised, pk in created:
                    targets[pk] = unique[normalised]
                    created_ids.add(pk)
                result.created_count += len(created_ids)
            if to_update:
                Subscriber.objects.bulk_update(to_update, ["name", "language", "attributes", "updated_at"])
            changed = self._subscribe(targets, now, new_ids=created_ids)
        for pk, row in recent.items():
            if pk in changed:
                result.updated_count += 1
            else:
                self._duplicate(row, _("Repeats an address from an earlier line."))
        existing_ids = set(targets) - created_ids - set(recent)
        updated = (changed & existing_ids) | {s.pk for s in to_update}
        result.updated_count += len(updated)
        result.skipped_count += len(existing_ids - updated)

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
        for subscriber_id, row in targets.items():
            for list_id in self.list_ids:
                found = current.get((subscriber_id, list_id))
                if found is None:
                    new.append(
                        Subscription(subscriber_id=subscriber_id, list_id=list_id, status=self.status, **consent)
                    )
                elif found[1] == Subscription.Status.UNSUBSCRIBED:
                    self.result.unsubscribed_count += 1
                    self.result.note(row.line, "unsubscribed", _("Unsubscribed from this list: not re-subscribed."))
                    continue
                elif found[1] == Subscription.Status.PENDING and self.status == Subscription.Status.SUBSCRIBED:
                    upgrade.append(found[0])
                else:
                    continue
                changed.add(subscriber_id)
                events.append(
                    SubscriberEvent(
                        subscriber_id=subscriber_id,
                        list_id=list_id,
                        kind=EVENT_KIND[self.status],
                        detail={
                            "via": Subscription.Source.IMPORT,
                            "file": options.source_name,
                            "line": row.line,
                            "note": options.consent_note,
                            "import_job": options.job_id,
                        },
                        actor_id=self.actor_id,
                        at=now,
                    )
                )
        if new:
            Subscription.objects.bulk_create(new, ignore_conflicts=True)
        if upgrade:
            Subscription.objects.filter(pk__in=upgrade, status=Subscription.Status.PENDING).update(
                status=Subscription.Status.SUBSCRIBED, **consent
            )
        if events:
            SubscriberEvent.objects.bulk_create(events)
        if self.status == Subscription.Status.PENDING and new:
            self.result.pending_subscription_ids.extend(
                Subscription.objects.filter(
                    subscriber_id__in={s.subscriber_id for s in new},
                    list_id__in=self.list_ids,
                    status=Subscription.Status.PENDING,
                    consent_at=now,
                ).values_list("pk", flat=True)
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
