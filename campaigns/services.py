"""Campaign workflows: create, start (now or scheduled), pause, resume, cancel, retry, test send.

Views, commands and tasks call these; the per-batch sending lives in campaigns.sending.
"""

import logging
import uuid
from email.utils import formatdate

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.db.models import Value
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from campaigns import audit, background, editions
from campaigns.click_tracking import rewrite_links
from campaigns.issue_email import render_issue
from campaigns.models import Campaign, Delivery, NewsletterIssuePage
from campaigns.sending import recover_stale_deliveries
from campaigns.sending.headers import (
    MessageContent,
    Recipient,
    build_content,
    feedback_id_header,
    recipient_values,
    site_domain,
)
from campaigns.sending.transports import SENT, Outgoing, get_transport
from mail import mergetags
from mail.addresses import HeaderValueError
from mail.models import NewsletterSettings, newsletter_settings
from mail.senders import sender_for
from subscribers.audience import Audience
from subscribers.links import RecipientLinks
from subscribers.models import MailingList

SEND_PERMISSION = "campaigns.send_campaign"

logger = logging.getLogger(__name__)


class CampaignError(Exception):
    """A campaign cannot do what was asked (the message says why, for a person to read)."""


# --- Creating ---------------------------------------------------------------------------------


def _newsletter_settings(page) -> NewsletterSettings:
    return newsletter_settings(page.get_site() if page is not None else None)


def create_campaign(
    page, lists, *, user=None, subject=None, from_email=None, reply_to=None, mailer="", segment=None
) -> Campaign:
    """A draft campaign of ``page`` to ``lists`` (MailingLists or ids), narrowed by ``segment`` if given.

    Sender and reply-to default to the first list's overrides, then the site's NewsletterSettings.
    ``mailer`` (a MAILERS name) overrides the lists' mailer (campaigns.sending.mailers.mailer_for).
    """
    lists = list(lists)
    list_objects = [item if isinstance(item, MailingList) else MailingList.objects.get(pk=item) for item in lists]
    first = list_objects[0] if list_objects else None
    sender = sender_for(first, page.get_site() if page is not None else None)
    if from_email is None:
        from_email = sender.from_email
    if reply_to is None:
        reply_to = sender.reply_to
    campaign = Campaign.objects.create(
        page=page,
        subject_override=subject or "",
        from_email=from_email,
        reply_to=reply_to,
        mailer=mailer or "",
        segment=segment,
        created_by=user if getattr(user, "pk", None) else None,
    )
    campaign.lists.set(list_objects)
    return campaign


# --- Starting ---------------------------------------------------------------------------------


# Delivery column <- Subscriber column or constant: every NOT NULL column without a database default.
SNAPSHOT_COLUMNS = [
    ("campaign_id", "snap_campaign"),
    ("subscriber_id", "pk"),
    ("email", "email"),
    ("name", "name"),
    ("subscriber_uid", "uid"),
    ("language", "snap_language"),
    ("status", "snap_status"),
    ("attempts", "snap_zero"),
    ("claimed_by", "snap_blank"),
    ("last_error", "snap_blank"),
    ("esp_message_id", "snap_blank"),
    ("open_count", "snap_zero"),
    ("click_count", "snap_zero"),
    ("bounce_type", "snap_blank"),
]


def snapshot_recipients(campaign: Campaign, recipients=None) -> int:
    """Insert one queued Delivery per sendable subscriber of the campaign's lists; returns the count.

    One INSERT ... SELECT in the database: no row passes through Python, so a million recipients
    take seconds. The campaign's Audience already yields each subscriber once however many
    target lists they are on, and excludes unsubscribed, pending and suppressed addresses. Call it
    inside the start transaction. ``recipients`` (a Subscriber queryset, each subscriber once,
    none already in the campaign) replaces the audience: an automation's due subscribers.
    """
    if recipients is None:
        recipients = Audience.of(campaign).subscribers()
    columns = SNAPSHOT_COLUMNS
    # An A/B test's readers each get a variant (Campaign.variant_expression); others none (NULL).
    variant = campaign.variant_expression()
    if variant is not None:
        recipients, columns = recipients.annotate(snap_variant=variant), [*columns, ("variant", "snap_variant")]
    source = (
        recipients.order_by()
        .annotate(
            snap_campaign=Value(campaign.pk),
            snap_status=Value(Delivery.Status.QUEUED),
            snap_zero=Value(0),
            snap_blank=Value(""),
            # The edition each recipient gets (campaigns.editions): render_editions ran before.
            snap_language=editions.delivery_language(
                campaign,
                editions.issue_language(campaign.page),
                list(campaign.editions.values_list("language", flat=True)),
            ),
        )
        .values_list(*[select for _, select in columns])
    )
    select_sql, params = source.query.sql_with_params()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    column_sql = ", ".join(connection.ops.quote_name(column) for column, _ in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({column_sql}) {select_sql}", params)
        return cursor.rowcount


# Snapshots at least this large refresh the planner's statistics of the delivery table.
ANALYZE_AFTER_ROWS = 10_000


def analyze_deliveries(rows: int) -> bool:
    """ANALYZE the delivery table on PostgreSQL after a snapshot of ``rows``; True if it ran.

    Autovacuum only re-analyzes some time after a large insert; meanwhile the planner believed
    a freshly snapshotted campaign had a handful of queued rows (6 estimated for 786,000 in the
    bench) and chose plans that walk them all. Run after the start has committed, so the ANALYZE's
    lock is not held for the rest of the start transaction (it sees only committed rows).
    """
    if connection.vendor != "postgresql" or rows < ANALYZE_AFTER_ROWS:
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(Delivery._meta.db_table)}")
    return True


def _nobody(campaign: Campaign) -> str:
    if campaign.segment_id:
        return _("Nobody on these lists matches the segment “%(segment)s”.") % {"segment": campaign.segment}
    return _("Nobody on these lists can receive it (no confirmed, active subscribers).")


def _check_can_start(campaign: Campaign, user=None) -> None:
    if user is not None and not user.has_perm(SEND_PERMISSION):
        raise PermissionDenied(_("You do not have permission to send campaigns."))
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        raise CampaignError(
            _("This campaign is %(status)s: it cannot be sent again.")
            % {"status": campaign.get_status_display().lower()}
        )
    page = campaign.page
    if not page.live or page.live_revision_id is None:
        raise CampaignError(_("The issue is not published: publish it before sending."))
    site_settings = _newsletter_settings(page)
    if site_settings is None or not site_settings.can_send:
        raise CampaignError(_("Set a postal address in the newsletter settings before sending (CAN-SPAM)."))
    if not campaign.lists.exists():
        raise CampaignError(_("Choose at least one list."))
    if not Audience.of(campaign).exists():
        raise CampaignError(_nobody(campaign))


def merge_tag_errors(page, *, subject: str = "") -> list[str]:
    """The merge tags of ``page``'s published revision (and of ``subject``, the campaign's own
    subject if it has one) that cannot be sent: unknown, split by formatting, in a link's host.
    In the active language; [] when every tag is fine (the send form lists them)."""
    with translation.override(editions.issue_language(page)):
        rendered = render_issue(page.live_revision.as_object() if page.live_revision_id else page)
    return _tag_errors(rendered, subject)


def _tag_errors(rendered, subject: str = "") -> list[str]:
    """The rendered issue's problems (its subject is in its body too) and the campaign subject's."""
    return list(dict.fromkeys([*rendered.errors, *mergetags.errors(subject)]))


def _refuse_tag_errors(problems: list[str]) -> None:
    if problems:
        raise CampaignError(_("Fix the merge tags before sending: %(problems)s") % {"problems": " ".join(problems)})


def _begin(campaign_id: int, *, user=None, scheduled: bool = False, enqueue: bool = True, recipients=None) -> Campaign:
    """Snapshot, render and go: one transaction; batch tasks are enqueued after it commits."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        _check_can_start(campaign, user)
        if scheduled and campaign.status != Campaign.Status.SCHEDULED:
            raise CampaignError(_("This campaign is not scheduled."))
        page = campaign.page
        revision = page.live_revision
        # Render what is published now, from the revision we record: later edits change neither.
        # In the issue's language (the layout's words too), whatever language the editor uses.
        with translation.override(editions.issue_language(page)):
            rendered = render_issue(revision.as_object(), lists=campaign.lists.order_by("name"))
        # A merge tag that cannot be filled is never sent raw: the campaign does not start.
        _refuse_tag_errors(_tag_errors(rendered, campaign.subject_override))
        campaign.page_revision = revision
        campaign.subject = campaign.subject_override or rendered.subject
        try:
            build_content(campaign)  # every campaign-wide header value checked before anything is queued
        except HeaderValueError as error:
            raise CampaignError(_("This campaign cannot be sent: %(error)s.") % {"error": error}) from None
        # Own click/open tracking (off by default) is added once here, like everything else.
        campaign.html = rewrite_links(rendered.html, campaign.pk)
        campaign.text = rendered.text

        # One edition per live translation of the issue, rendered once here like the above.
        def render_edition(issue):
            edition = render_issue(issue, lists=campaign.lists.order_by("name"))
            _refuse_tag_errors(_tag_errors(edition))
            return edition.subject, rewrite_links(edition.html, campaign.pk), edition.text

        editions.render_editions(campaign, page, render_edition)
        campaign.status = Campaign.Status.SENDING
        campaign.started_at = timezone.now()
        if user is not None and getattr(user, "pk", None):
            campaign.started_by = user
        campaign.recipients = snapshot_recipients(campaign, recipients)
        if not campaign.recipients:
            raise CampaignError(_nobody(campaign))
        campaign.save()
        # Registered first, so it runs before the batch tasks are enqueued.
        transaction.on_commit(lambda: analyze_deliveries(campaign.recipients))
        if enqueue:
            transaction.on_commit(lambda: background.enqueue_batches(campaign.pk, campaign.recipients))
    return campaign


def start_campaign(campaign_id: int, *, user=None, at=None, enqueue: bool = True, recipients=None) -> Campaign:
    """Send a draft campaign now, or at ``at`` (an aware datetime) if that is in the future.

    Raises PermissionDenied without the "Can send campaigns" permission and CampaignError when the
    campaign was already started, the issue is not live, no postal address is configured, or the
    audience is empty. A scheduled start is a start_campaign_task enqueued with run_after.
    ``enqueue=False`` starts without enqueueing batch tasks (the caller drives send_batch itself).
    ``recipients`` (a Subscriber queryset) replaces the lists' audience in the snapshot (now only).
    """
    if at is not None and at > timezone.now():
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
            _check_can_start(campaign, user)
            # Checked again when it starts (the issue may be republished meanwhile).
            _refuse_tag_errors(merge_tag_errors(campaign.page, subject=campaign.subject_override))
            campaign.status = Campaign.Status.SCHEDULED
            campaign.scheduled_at = at
            if user is not None and getattr(user, "pk", None):
                campaign.started_by = user
            campaign.save(update_fields=["status", "scheduled_at", "started_by"])
            transaction.on_commit(lambda: background.enqueue_start(campaign.pk, at))
        return campaign
    return _begin(campaign_id, user=user, enqueue=enqueue, recipients=recipients)


def add_recipients(campaign_id: int, recipients) -> int:
    """Snapshot ``recipients`` (a Subscriber queryset, none already in the campaign) into a started
    campaign and send them with the same render, headers and ledger; returns how many were added.

    For a campaign that keeps receiving recipients (an automation's step): a sent campaign is
    reopened, a paused one keeps them queued until it is resumed, a cancelled or failed one takes
    none (0). Call it inside the caller's transaction; batch tasks are enqueued after it commits.
    A sent campaign that still has queued rows (the engine finished it while a snapshot was being
    added) is reopened, also when ``recipients`` is None (nobody to add).
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status not in Campaign.REOPENABLE:
            return 0
        added = snapshot_recipients(campaign, recipients) if recipients is not None else 0
        # A campaign the engine finished while rows were being added to it is reopened too.
        stranded = campaign.status == Campaign.Status.SENT and campaign.deliveries.unfinished().exists()
        if added or stranded:
            Campaign.objects.filter(pk=campaign_id).reopen(added)
            if campaign.status != Campaign.Status.PAUSED:
                transaction.on_commit(lambda: background.enqueue_batches(campaign_id))
    return added


def start_scheduled_campaign(campaign_id: int) -> str:
    """Start a scheduled campaign if its time has come. Returns what happened (for the task result)."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SCHEDULED:
        return "not scheduled"
    if campaign.scheduled_at and campaign.scheduled_at > timezone.now():
        return "not due"
    try:
        _begin(campaign_id, user=None, scheduled=True)
    except CampaignError as error:
        Campaign.objects.filter(pk=campaign_id).fail_to_start(str(error))
        return f"failed: {error}"
    return "started"


def start_due_campaigns() -> list[int]:
    """Start every scheduled campaign whose time has passed (a safety net for missed tasks)."""
    started = []
    for campaign_id in Campaign.objects.due().values_list("pk", flat=True):
        if start_scheduled_campaign(campaign_id) == "started":
            started.append(campaign_id)
    return started


# --- Controlling ------------------------------------------------------------------------------


def check_send_permission(user) -> None:
    """PermissionDenied unless ``user`` (None: the system, a task) may send campaigns."""
    if user is not None and not user.has_perm(SEND_PERMISSION):
        raise PermissionDenied(_("You do not have permission to send campaigns."))


def _refused(campaign_id: int, message: str) -> CampaignError:
    """``message`` (translated, with ``%(status)s``) filled with the campaign's status as it is now."""
    campaign = Campaign.objects.get(pk=campaign_id)
    return CampaignError(message % {"status": campaign.get_status_display().lower()})


def pause_campaign(campaign_id: int, user=None) -> Campaign:
    """Stop sending after the current chunk; queued rows wait for resume_campaign()."""
    check_send_permission(user)
    campaign = Campaign.objects.get(pk=campaign_id)
    if not campaign.pause():
        raise _refused(campaign_id, _("A %(status)s campaign cannot be paused."))
    return campaign


def resume_campaign(campaign_id: int, user=None, *, enqueue: bool = True) -> Campaign:
    """Continue a paused campaign (also settles rows of workers that died meanwhile, and forgets a
    relay outage or refused login that paused it: a person says it is fixed)."""
    check_send_permission(user)
    campaign = Campaign.objects.get(pk=campaign_id)
    if not campaign.resume():
        raise _refused(campaign_id, _("A %(status)s campaign cannot be resumed."))
    recover_stale_deliveries(campaign_id)
    if enqueue:
        transaction.on_commit(lambda: background.enqueue_batches(campaign_id))
    return campaign


def cancel_campaign(campaign_id: int, user=None) -> Campaign:
    """Stop for good: queued rows become skipped (claimed ones as soon as their worker notices)."""
    check_send_permission(user)
    campaign = Campaign.objects.get(pk=campaign_id)
    if not campaign.cancel():
        raise _refused(campaign_id, _("A %(status)s campaign cannot be cancelled."))
    return campaign


def retry_failed(campaign_id: int, *, include_unknown: bool = False) -> int:
    """Queue the campaign's failed deliveries again; returns how many.

    Deliveries whose outcome is unknown (in flight when a worker died or a link was cut) may have
    arrived, so they are only retried with ``include_unknown=True``, an explicit decision.
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status not in (Campaign.Status.SENDING, Campaign.Status.PAUSED, Campaign.Status.SENT):
            raise CampaignError(
                _("A %(status)s campaign cannot be retried.") % {"status": campaign.get_status_display().lower()}
            )
        statuses = [Delivery.Status.FAILED, Delivery.Status.UNKNOWN] if include_unknown else [Delivery.Status.FAILED]
        count = Delivery.objects.filter(campaign_id=campaign_id, status__in=statuses).retry()
        if count:
            paused = campaign.status == Campaign.Status.PAUSED
            Campaign.objects.filter(pk=campaign_id).reopen_for_retry(count, paused=paused)
            if not paused:
                transaction.on_commit(lambda: background.enqueue_batches(campaign_id, count))
    return count


def send_campaign_paused_notice(campaign_id: int) -> bool:
    """Tell the staff that the engine paused ``campaign_id`` (its relay): an entry in Wagtail's
    history (with the reason) and an email to NOTIFY_STAFF with a link to the campaign page.

    The email goes through the default mailer, which may be the relay that failed: a failure to
    send it is logged as an error (the campaign page and the history show the pause anyway).
    Returns True if the email went.
    """
    campaign = Campaign.objects.select_related("page").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.PAUSED:
        return False
    audit.log_action(campaign, audit.PAUSE, None, reason=campaign.last_error)
    recipients = list(settings.BROADSHEET["NOTIFY_STAFF"])
    if not recipients:
        logger.error("Campaign %s paused (no NOTIFY_STAFF to tell): %s", campaign_id, campaign.last_error)
        return False
    url = settings.WAGTAILADMIN_BASE_URL.rstrip("/") + reverse("campaigns_admin:detail", args=[campaign.pk])
    # Staff notices speak the site's language, whichever request or worker paused the campaign.
    with translation.override(settings.LANGUAGE_CODE):
        names = {"title": campaign.page.title, "sent": campaign.sent, "recipients": campaign.recipients}
        body = (
            _('The campaign "%(title)s" was paused by the sending engine:') % names
            + f"\n\n{campaign.last_error}\n\n"
            + _("Sent so far: %(sent)s of %(recipients)s. Resume it once the problem is fixed:") % names
            + f"\n{url}\n"
        )
        subject = _("Campaign paused: %(title)s") % names
    message = EmailMessage(
        subject[:200].replace("\n", " "),
        body,
        settings.DEFAULT_FROM_EMAIL,
        recipients,
        headers={"Auto-Submitted": "auto-generated"},
    )
    try:
        message.send()
    except Exception:
        logger.exception("Campaign %s paused; the staff notice could not be sent: %s", campaign_id, campaign.last_error)
        return False
    return True


# --- Test sends -------------------------------------------------------------------------------


def send_test(page_or_campaign, addresses, *, subscriber=None) -> int:
    """Send the issue to ``addresses`` marked "[TEST] ", never touching the ledger; returns how many went.

    A Campaign that has started sends its stored render; otherwise the page's latest revision
    (draft included) is rendered. Personal values come from ``subscriber`` or a sample reader.
    """
    if isinstance(page_or_campaign, Campaign):
        campaign = page_or_campaign
        page = campaign.page
    else:
        page = page_or_campaign
        campaign = Campaign(
            page=page, from_email=sender_for(None, page.get_site()).from_email, created_at=timezone.now()
        )
    if isinstance(page, NewsletterIssuePage) and not campaign.html:
        rendered = render_issue(page.get_latest_revision_as_object())
        # The editor sees the same refusal a send would meet, instead of a test with holes in it.
        _refuse_tag_errors(_tag_errors(rendered, campaign.subject_override))
        campaign.subject = campaign.subject_override or rendered.subject
        campaign.html, campaign.text = rendered.html, rendered.text
        campaign.reply_to = campaign.reply_to or sender_for(None, page.get_site()).reply_to
    if campaign.pk:
        content = build_content(campaign, subject_prefix="[TEST] ")
    else:
        domain = site_domain()
        content = MessageContent(
            campaign_id=0,
            subject=campaign.subject,
            html=campaign.html,
            text=campaign.text,
            from_email=campaign.from_email,
            reply_to=campaign.reply_to,
            list_id=f'"Test" <test.{domain}>',
            feedback_id=feedback_id_header(0, "test"),
            list_ids=(),
            domain=domain,
            message_id_prefix=f"test.{timezone.now():%Y%m%d%H%M%S}.{uuid.uuid4().hex[:8]}",
            unsubscribe_mailbox=settings.BROADSHEET["UNSUBSCRIBE_MAILBOX"],
            subject_prefix="[TEST] ",
        )
    links = RecipientLinks(content.list_ids)
    transport = get_transport(content, test=True)
    name = subscriber.name if subscriber is not None else page.sample_recipient()["name"]
    uid = subscriber.uid if subscriber is not None else uuid.UUID(int=0)
    attributes = subscriber.attributes if subscriber is not None else {}
    items = []
    for index, address in enumerate(addresses):
        recipient = Recipient(delivery_id=-(index + 1), email=address, name=name, uid=uid, attributes=attributes)
        values = recipient_values(content, links, recipient)
        values["email"] = subscriber.email if subscriber is not None else address
        values["message_id"] = f"<{content.message_id_prefix}.test{index}.{uuid.uuid4().hex[:8]}@{content.domain}>"
        items.append(Outgoing(recipient, values))
    with transport:
        outcomes = transport.send(items, date=formatdate(usegmt=True))
    return sum(1 for outcome in outcomes if outcome.status == SENT)
