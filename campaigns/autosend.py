"""Issues that send themselves (issue 12): per list, each new issue on publish (after a review
delay) or a weekly digest. Both make ordinary campaigns through campaigns.services, so the ledger,
report, pause and cancel are the ones every campaign has.

Never the same issue to a list twice: an issue (all its translations: one ``translation_key``) is
recorded once per list in ``IssueSend`` (a unique constraint), and an issue a person already
scheduled or sent to the list is skipped. Each rule's work runs with its row locked, so two
publishes at once, or a publish during a digest, are taken one after the other.

Digests run at the rule's weekday and time in the site's time zone (``TIME_ZONE``), as a task
enqueued with ``run_after`` that enqueues the next one: no cron line.
"""

import datetime
import logging

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.text import slugify
from django.utils.translation import gettext as _
from wagtail.models import Locale

from campaigns import audit, background, services
from campaigns.models import AutoSendRule, Campaign, Digest, DigestPage, IssueSend, NewsletterIssuePage

logger = logging.getLogger(__name__)

RULE_PERMISSION = "campaigns.change_autosendrule"
# A campaign a person scheduled or sent: its issue is not sent to its lists again automatically.
HAND_SENT = (Campaign.Status.SCHEDULED, Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SENT)


def _sent_by_hand(mailing_list, keys):
    """The translation keys among ``keys`` (a queryset or list) that a campaign to ``mailing_list``
    scheduled or sent (a person's, or an earlier automatic one)."""
    return Campaign.objects.filter(lists=mailing_list, status__in=HAND_SENT, page__translation_key__in=keys)


def _first_published(page) -> datetime.datetime | None:
    """When the issue (any of its translations) was first published."""
    return NewsletterIssuePage.objects.filter(
        translation_key=page.translation_key, first_published_at__isnull=False
    ).aggregate(first=Min("first_published_at"))["first"]


def _record_problem(rule_id: int, message: str) -> None:
    logger.warning("Automatic send for rule %s: %s", rule_id, message)
    AutoSendRule.objects.filter(pk=rule_id).update(last_error=message[:2000])


# --- On publish -------------------------------------------------------------------------------


def wants_published_issues() -> bool:
    """Is any list waiting for issues on publish (so a publish has something to enqueue)?"""
    return AutoSendRule.objects.active().filter(mode=AutoSendRule.Mode.ON_PUBLISH).exists()


def issue_published(page_id: int) -> dict[str, str]:
    """Schedule ``page_id`` (just published) for every list that sends issues on publish.

    Returns ``{list slug: what happened}``. Safe to run twice: the second run finds the issue
    recorded for each list. Runs in a task (campaigns.tasks.autosend_published_task), never in the
    editor's publish request.
    """
    page = NewsletterIssuePage.objects.filter(pk=page_id).first()
    if page is None or not page.live or page.specific_class is not NewsletterIssuePage:
        return {}
    outcome = {}
    for rule_id in AutoSendRule.objects.active().filter(mode=AutoSendRule.Mode.ON_PUBLISH).values_list("pk", flat=True):
        rule, result = _send_on_publish(rule_id, page)
        if rule is not None:
            outcome[rule.mailing_list.slug] = result
    return outcome


def _send_on_publish(rule_id: int, page) -> tuple[AutoSendRule | None, str]:
    with transaction.atomic():
        rule = AutoSendRule.objects.select_for_update().select_related("mailing_list").filter(pk=rule_id).first()
        if rule is None or rule.paused or rule.mode != AutoSendRule.Mode.ON_PUBLISH:
            return rule, "paused"
        first_published = _first_published(page)
        if first_published is None or first_published < rule.active_since:
            return rule, "published before the rule"
        key = page.translation_key
        if IssueSend.objects.filter(mailing_list=rule.mailing_list, issue_key=key).exists():
            return rule, "already sent"
        if _sent_by_hand(rule.mailing_list, [key]).exists():
            return rule, "sent by hand"
        at = (page.last_published_at or timezone.now()) + datetime.timedelta(minutes=rule.review_delay)
        try:
            with transaction.atomic():
                campaign = services.create_campaign(page, [rule.mailing_list])
                IssueSend.objects.create(
                    mailing_list=rule.mailing_list,
                    issue_key=key,
                    issue=page,
                    campaign=campaign,
                    kind=IssueSend.Kind.ON_PUBLISH,
                )
                services.start_campaign(campaign.pk, at=at)
        except services.CampaignError as error:
            _record_problem(rule.pk, str(error))
            return rule, f"failed: {error}"
        except IntegrityError:  # recorded meanwhile by another path (the constraint's backstop)
            return rule, "already sent"
        AutoSendRule.objects.filter(pk=rule.pk).update(last_error="")
        when = f"{timezone.localtime(at):%Y-%m-%d %H:%M %Z}"
        audit.log_action(campaign, audit.AUTOSEND, None, list=rule.mailing_list.name, scheduled_at=when)
    return rule, "scheduled"


def upcoming_sends(page) -> list[tuple[str, datetime.datetime]]:
    """For the editor who just published ``page``: ``(list name, when)`` for each list that gets it
    automatically and has not yet: the campaign a rule scheduled, or the one it is about to
    schedule (the task may not have run yet)."""
    if page.specific_class is not NewsletterIssuePage or not page.live:
        return []
    first_published = _first_published(page)
    upcoming = []
    rules = AutoSendRule.objects.active().filter(mode=AutoSendRule.Mode.ON_PUBLISH).select_related("mailing_list")
    for rule in rules:
        recorded = (
            IssueSend.objects.filter(mailing_list=rule.mailing_list, issue_key=page.translation_key)
            .select_related("campaign")
            .first()
        )
        if recorded is not None:
            campaign = recorded.campaign
            if campaign is not None and campaign.status == Campaign.Status.SCHEDULED:
                upcoming.append((rule.mailing_list.name, campaign.scheduled_at))
        elif (
            first_published is not None
            and first_published >= rule.active_since
            and not _sent_by_hand(rule.mailing_list, [page.translation_key]).exists()
        ):
            published = page.last_published_at or timezone.now()
            upcoming.append((rule.mailing_list.name, published + datetime.timedelta(minutes=rule.review_delay)))
    return upcoming


# --- Digests ----------------------------------------------------------------------------------


def next_digest_at(rule: AutoSendRule, after: datetime.datetime) -> datetime.datetime:
    """The first slot strictly after ``after``: the rule's weekday and time in the site's time zone."""
    zone = timezone.get_default_timezone()
    local = timezone.localtime(after, zone)
    day = local.date() + datetime.timedelta(days=(rule.digest_weekday - local.weekday()) % 7)
    slot = datetime.datetime.combine(day, rule.digest_time, tzinfo=zone)
    if slot <= after:
        slot = datetime.datetime.combine(day + datetime.timedelta(days=7), rule.digest_time, tzinfo=zone)
    return slot


def schedule_digest(rule: AutoSendRule, *, after: datetime.datetime | None = None) -> datetime.datetime | None:
    """Set the rule's next digest slot and enqueue its task (after commit); None for a rule that
    makes no digests now (on publish, or paused). Tasks for an earlier slot become no-ops."""
    slot = None
    if rule.mode == AutoSendRule.Mode.DIGEST and not rule.paused:
        slot = next_digest_at(rule, after or timezone.now())
        transaction.on_commit(lambda: background.enqueue_digest(rule.pk, slot))
    rule.next_digest_at = slot
    AutoSendRule.objects.filter(pk=rule.pk).update(next_digest_at=slot)
    return slot


def rule_saved(rule: AutoSendRule) -> None:
    """After the admin saved ``rule``: (re)schedule its digest."""
    schedule_digest(rule)


def _list_locale(mailing_list) -> Locale:
    """The language a list's digest is in: the list's own, else the site's default."""
    if mailing_list.language:
        locale = Locale.objects.filter(language_code=mailing_list.language).first()
        if locale is not None:
            return locale
    return Locale.get_default()


def digest_issues(rule: AutoSendRule) -> list[NewsletterIssuePage]:
    """The issues the next digest of ``rule`` holds, oldest first: published (first, in any
    language) since the rule became active, and neither sent to its list by a rule nor scheduled
    or sent to it by hand. Each issue once, in the list's language when translated into it."""
    mailing_list = rule.mailing_list
    recorded = IssueSend.objects.filter(mailing_list=mailing_list).values("issue_key")
    candidates = (
        NewsletterIssuePage.objects.for_language(_list_locale(mailing_list))
        .exclude(translation_key__in=recorded)
        .order_by("first_published_at", "pk")
    )
    by_hand = set(
        _sent_by_hand(mailing_list, candidates.values("translation_key")).values_list(
            "page__translation_key", flat=True
        )
    )
    started = {
        row["translation_key"]: row["first"]
        for row in NewsletterIssuePage.objects.filter(translation_key__in=candidates.values("translation_key"))
        .values("translation_key")
        .annotate(first=Min("first_published_at"))
    }
    return [
        issue
        for issue in candidates.select_related("hero_image")
        if issue.translation_key not in by_hand
        and (started.get(issue.translation_key) or issue.first_published_at) >= rule.active_since
    ]


def teaser(issue) -> str:
    """An issue's teaser in a digest: its preheader, else its search description."""
    return issue.preheader or issue.search_description


def build_digest_page(rule: AutoSendRule, issues, due_at: datetime.datetime) -> DigestPage:
    """A published DigestPage under the newest issue's archive: one story (image, title, teaser,
    link) per issue, in the archive's language."""
    parent = issues[-1].get_parent()
    language = parent.locale.language_code
    day = timezone.localtime(due_at).date()
    with translation.override(language):
        names = {"list": rule.mailing_list.name, "date": date_format(day, "DATE_FORMAT")}
        title = _("%(list)s digest, %(date)s") % names
    slug = slugify(f"{rule.mailing_list.slug}-digest-{day:%Y-%m-%d}")[:200]
    if parent.get_children().filter(slug=slug).exists():
        slug = f"{slug}-{int(due_at.timestamp())}"
    page = DigestPage(
        title=title,
        slug=slug,
        subject=title[:200],
        preheader=" · ".join(issue.title for issue in issues)[:200],
        issue_date=day,
        body=[
            (
                "story",
                {
                    "image": issue.hero_image,
                    "alt_text": issue.hero_alt_text,
                    "title": issue.title,
                    "summary": teaser(issue),
                    "page": issue,
                    "link_url": "",
                },
            )
            for issue in issues
        ],
    )
    parent.add_child(instance=page)
    page.save_revision().publish()
    return page


# What run_digest says when it made no digest for the slot.
NOT_RUN = ("not a digest rule now", "stale", "not due")


def run_digest(rule_id: int, due_at: datetime.datetime) -> str:
    """Make the digest of ``rule_id`` for its slot ``due_at`` and enqueue the next slot's task.

    Idempotent: the slot is recorded once (``Digest`` is unique per rule and slot) with the rule's
    row locked, so a task run twice, or two workers at once, make one digest. A slot that is not
    the rule's current one (the rule was edited, paused or resumed since) does nothing. With no
    new issue nothing is sent and the empty digest is recorded.
    """
    with transaction.atomic():
        rule = AutoSendRule.objects.select_for_update().select_related("mailing_list").filter(pk=rule_id).first()
        if rule is None or rule.paused or rule.mode != AutoSendRule.Mode.DIGEST:
            return "not a digest rule now"
        if rule.next_digest_at != due_at or Digest.objects.filter(rule=rule, due_at=due_at).exists():
            return "stale"
        if due_at > timezone.now():
            return "not due"
        issues = digest_issues(rule)
        digest = Digest.objects.create(rule=rule, due_at=due_at, issues=len(issues))
        result = "nothing new"
        if issues:
            result = _send_digest(rule, digest, issues)
        schedule_digest(rule, after=max(due_at, timezone.now()))
    return result


def _send_digest(rule: AutoSendRule, digest: Digest, issues) -> str:
    try:
        with transaction.atomic():
            page = build_digest_page(rule, issues, digest.due_at)
            campaign = services.create_campaign(page, [rule.mailing_list])
            IssueSend.objects.bulk_create(
                IssueSend(
                    mailing_list=rule.mailing_list,
                    issue_key=issue.translation_key,
                    issue=issue,
                    campaign=campaign,
                    kind=IssueSend.Kind.DIGEST,
                )
                for issue in issues
            )
            services.start_campaign(campaign.pk)
    except services.CampaignError as error:
        # Nothing recorded for the issues: the next digest holds them.
        Digest.objects.filter(pk=digest.pk).update(error=str(error)[:2000])
        _record_problem(rule.pk, str(error))
        return f"failed: {error}"
    Digest.objects.filter(pk=digest.pk).update(page=page, campaign=campaign)
    AutoSendRule.objects.filter(pk=rule.pk).update(last_error="")
    return "sent"


def run_due_digests(now: datetime.datetime | None = None) -> list[int]:
    """Run every digest whose slot has passed (its task was lost, or no worker ran at the time);
    returns the ids of the rules that made one."""
    now = now or timezone.now()
    ran = []
    due = AutoSendRule.objects.active().filter(mode=AutoSendRule.Mode.DIGEST, next_digest_at__lte=now)
    for rule_id, due_at in due.values_list("pk", "next_digest_at"):
        if run_digest(rule_id, due_at) not in NOT_RUN:
            ran.append(rule_id)
    return ran


def restart_digests() -> int:
    """When a worker starts (``manage.py worker``): make the digests whose slot passed while none
    ran, and enqueue each active digest rule's next slot again, so a lost task (a flushed Redis)
    cannot stop a chain. A task enqueued twice for one slot makes one digest. Returns how many
    rules are scheduled."""
    run_due_digests()
    scheduled = 0
    with transaction.atomic():
        for rule in AutoSendRule.objects.active().filter(mode=AutoSendRule.Mode.DIGEST):
            if rule.next_digest_at is None:
                schedule_digest(rule)
            else:
                slot = rule.next_digest_at
                transaction.on_commit(lambda rule_id=rule.pk, slot=slot: background.enqueue_digest(rule_id, slot))
            scheduled += 1
    return scheduled


# --- Pause and resume -------------------------------------------------------------------------


def _check_permission(user) -> None:
    if user is not None and not user.has_perm(RULE_PERMISSION):
        raise PermissionDenied(_("You do not have permission to change automatic sends."))


def scheduled_campaigns(rule: AutoSendRule):
    """The campaigns ``rule`` scheduled that have not started yet (pausing the rule leaves them)."""
    return Campaign.objects.filter(
        autosends__mailing_list=rule.mailing_list_id, status=Campaign.Status.SCHEDULED
    ).distinct()


def pause_rule(rule_id: int, user=None) -> bool:
    """Stop a list's automatic sends (campaigns already scheduled stay: cancel them on their page).
    Returns False if it was paused already."""
    _check_permission(user)
    with transaction.atomic():
        changed = AutoSendRule.objects.filter(pk=rule_id, paused=False).update(paused=True, next_digest_at=None)
        if changed:
            audit.log_action(AutoSendRule.objects.get(pk=rule_id), audit.AUTOSEND_PAUSE, user)
    return bool(changed)


def resume_rule(rule_id: int, user=None) -> bool:
    """Start a paused rule again: issues published from now on are sent on publish; a digest holds
    what was published meanwhile. Returns False if it was not paused."""
    _check_permission(user)
    with transaction.atomic():
        changed = AutoSendRule.objects.filter(pk=rule_id, paused=True).update(paused=False)
        if changed:
            rule = AutoSendRule.objects.get(pk=rule_id)
            schedule_digest(rule)
            audit.log_action(rule, audit.AUTOSEND_RESUME, user)
    return bool(changed)
