"""Reads. Keyword-only, typed; heavy reads are SQL. One module per subject (the catalog's features,
tiles, heat, hot spots and grid topology among them): this one holds the
registry counts of the home page; `events` the event list and detail."""

from __future__ import annotations

from django.db import connection
from django.utils.translation import gettext as _

from ..models import Address, Building, Grid, Person, Region, Unit


def registry_counts() -> list[tuple[str, int]]:
    """Row counts for the home page, estimated from the planner's statistics for the big tables
    (an exact count(*) over millions of persons would cost seconds on every visit)."""
    small = [
        (_("Districts"), Region.objects.filter(level=Region.Level.DISTRICT).count()),
        (_("Streets"), Region.objects.filter(level=Region.Level.STREET).count()),
        (_("Communities"), Region.objects.filter(level=Region.Level.COMMUNITY).count()),
        (_("Small grids"), Grid.objects.filter(level=Grid.Level.SMALL).count()),
    ]
    big = [
        (_("Standard addresses"), Address),
        (_("Buildings"), Building),
        (_("Actual population"), Person),
        (_("Actual units"), Unit),
    ]
    return small + [(label, estimated_count(model)) for label, model in big]


def estimated_count(model) -> int:
    """Exact below 100,000 rows, the planner's estimate above."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        estimate = cursor.fetchone()[0]
    if estimate is None or estimate < 100_000:
        return model.objects.count()
    return int(estimate)
