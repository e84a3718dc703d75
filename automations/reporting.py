"""Figures for the automations admin: per automation (the listing, annotated in one query) and
per step (the report: entered, sent, opened, clicked, unsubscribed, waiting)."""

from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from automations.models import Automation, Enrollment, Step
from automations.scheduler import waiting_for
from campaigns.models import Campaign


def _campaign_total(field: str, **match) -> Subquery:
    totals = (
        Campaign.objects.filter(**match).order_by().values(next(iter(match))).annotate(total=Sum(field)).values("total")
    )
    return Coalesce(Subquery(totals, output_field=IntegerField()), 0)


def with_figures(automations: QuerySet[Automation]) -> QuerySet[Automation]:
    """``enrolled``, ``in_progress`` and ``sent`` on each automation, as subqueries (no query per row)."""
    return automations.annotate(
        enrolled=Count("enrollments", distinct=True),
        in_progress=Count("enrollments", filter=Q(enrollments__state=Enrollment.State.ACTIVE), distinct=True),
        sent=_campaign_total("sent", automation_run__step__automation=OuterRef("pk")),
        opened=_campaign_total("unique_opens", automation_run__step__automation=OuterRef("pk")),
    )


@dataclass
class StepFigures:
    step: Step
    entered: int  # reached this step (queued)
    sent: int
    opened: int
    clicked: int
    unsubscribed: int
    waiting: int  # still in the automation and the audience, before this step


def step_report(automation: Automation) -> list[StepFigures]:
    steps = list(automation.steps.select_related("page", "automation__segment").order_by("sort_order", "pk"))
    sums = {
        row["automation_run__step"]: row
        for row in Campaign.objects.filter(automation_run__step__automation=automation)
        .values("automation_run__step")
        .annotate(
            sent_total=Sum("sent"),
            opened=Sum("unique_opens"),
            clicked=Sum("unique_clicks"),
            left=Sum("unsubscribed"),
        )
    }
    entered = dict(automation.steps.annotate(n=Count("sends")).values_list("pk", "n"))
    report = []
    for step in steps:
        row = sums.get(step.pk, {})
        report.append(
            StepFigures(
                step=step,
                entered=entered.get(step.pk, 0),
                sent=row.get("sent_total") or 0,
                opened=row.get("opened") or 0,
                clicked=row.get("clicked") or 0,
                unsubscribed=row.get("left") or 0,
                waiting=waiting_for(step, steps).count(),
            )
        )
    return report
