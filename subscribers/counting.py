"""Counts for listings that may hold a million rows: PostgreSQL's estimate when it is large.

An exact ``COUNT(*)`` reads every row it counts (on PostgreSQL, about a second for a million
subscribers on a busy machine), and a listing only needs it for "N subscribers" and the page
links. Where the planner expects at least ``EXACT_BELOW`` rows, the listing shows its estimate
(``EXPLAIN``: the table's statistics, kept by autovacuum; within a few per cent on a plain table),
labelled as such; below that, and on other databases, the count is exact. Places where an editor
relies on the exact figure (the send form's "can receive", the campaign's recipients) do not use
this: they count (subscribers.audience).
"""

import json

from django.db import connections
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from wagtail.admin.paginator import WagtailPaginator

EXACT_BELOW = 100_000


def planned_rows(queryset) -> int | None:
    """The number of rows PostgreSQL's planner expects ``queryset`` to return (None elsewhere)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def estimated_count(queryset) -> tuple[int, bool]:
    """(count, is_estimate): the planner's estimate when it is at least EXACT_BELOW, else exact."""
    planned = planned_rows(queryset)
    if planned is not None and planned >= EXACT_BELOW:
        return planned, True
    return queryset.count(), False


class EstimatedCountPaginator(WagtailPaginator):
    """Wagtail's listing paginator with ``estimated_count`` (the label says "about")."""

    @cached_property
    def _counted(self) -> tuple[int, bool]:
        return estimated_count(self.object_list)

    @cached_property
    def count(self) -> int:
        return self._counted[0]

    @cached_property
    def items_count_label(self):
        count, estimated = self._counted
        if not estimated:
            return super().items_count_label
        return _("about %(count)s %(items)s") % {"count": f"{count:,}", "items": self.verbose_name_plural}
