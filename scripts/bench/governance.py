"""The monthly report and the registry's task generation at city scale, against their budgets.
Both read the bench city's year of events (:mod:`scripts.bench.events`).

report_city: the monthly report (研判) of the whole city for the last whole month of the year:
:func:`layers.services.judgement.judgement_report_build` (every figure in SQL, the maps drawn)
and its PDF (WeasyPrint), as the scheduled report makes them, in process, in Chinese. Budget:
30 s (the issue's). The figures' SQL alone is timed too and given in the note.

registry_tasks: :func:`layers.services.registry_tasks.registry_tasks_generate` (its two
``INSERT … SELECT``: reports of the last 90 days whose address matched no or several standard
addresses, and standard addresses no report matched and no worker confirmed for a year, at most
20 open per grid) at the year's end, on an empty task table — the heaviest run, every grid
filling its quota — inside a transaction rolled back after each timing so every run is the first.
The steady-state run (a second one right after, which finds the tasks made and makes none) is
timed in the same transaction and given in the note. Budget: 30 s. The command runs from an
hourly timer beside the live service on the same two cores; 30 s of one core is under 1 % of that
hour, cannot overlap the next run, and keeps the transaction (which holds the new tasks' index
entries, nothing readers wait on) short.
"""

from __future__ import annotations

import time

from django.db import connection, transaction
from django.utils import translation

from .events import ensure_event_year
from .harness import Result, benchmark

REPORT_BUDGET_SECONDS = 30.0
TASKS_BUDGET_SECONDS = 30.0


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


@benchmark("report_city")
def report_city(*, repeats: int, rows: int) -> list[Result]:
    from layers.models import Region
    from layers.protection.scope import CITY
    from layers.selectors.judgement import judgement_figures, month_add, month_start, report_area_get
    from layers.services.judgement import judgement_report_build

    stored = ensure_event_year()
    end = stored["end"]
    month = month_add(end.date(), -1)
    area = report_area_get(code=Region.objects.get(level=Region.Level.CITY).code, reader_scope=CITY)
    whole, sql, pdf_sizes = [], [], []
    with translation.override("zh-hans"):
        for _ in range(repeats):
            started = time.perf_counter()
            judgement_figures(area=area, month=month, now=end)
            sql.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = judgement_report_build(area=area, month=month)
            pdf = report.pdf()
            whole.append(time.perf_counter() - started)
            pdf_sizes.append(len(pdf))
    seconds = _median(whole)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM layers_event WHERE received_at >= %s AND received_at < %s",
            [month_start(month), end],
        )
        (events,) = cursor.fetchone()
    scale = (
        f"the city ({area.name}), {month:%Y-%m}, {stored['events']:,} events a year "
        f"({connection.settings_dict['NAME']}), median of {repeats}"
    )
    note = (
        f"report + PDF {seconds:.1f} s (runs {', '.join(f'{s:.1f}' for s in whole)} s), of which the figures' SQL "
        f"{_median(sql):.2f} s; PDF {pdf_sizes[-1] / 1024:.0f} KB" + f"; {events:,} cases received that month"
    )
    print(f"bench: report_city: {note}", flush=True)
    return [
        Result("report_city", "1/s", 1 / seconds, f"budget {REPORT_BUDGET_SECONDS:g} s",
               1 / REPORT_BUDGET_SECONDS, 1.0, scale, note),
    ]  # fmt: skip


@benchmark("registry_tasks")
def registry_tasks(*, repeats: int, rows: int) -> list[Result]:
    from layers.services.registry_tasks import registry_tasks_generate

    stored = ensure_event_year()
    now = stored["end"]
    first, second, made = [], [], {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM layers_registrytask")
        (existing,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM layers_address")
        (addresses,) = cursor.fetchone()
    if existing:
        raise RuntimeError(f"the bench database holds {existing:,} registry tasks; the benchmark wants none")
    for _ in range(repeats):
        with transaction.atomic():
            started = time.perf_counter()
            made = registry_tasks_generate(now=now)
            first.append(time.perf_counter() - started)
            started = time.perf_counter()
            again = registry_tasks_generate(now=now)
            second.append(time.perf_counter() - started)
            if any(again.values()):
                raise RuntimeError(f"a second run made tasks: {again}")
            transaction.set_rollback(True)
    seconds = _median(first)
    scale = (
        f"{addresses:,} addresses, {stored['events']:,} events ({connection.settings_dict['NAME']}), "
        f"at {now:%Y-%m-%d}, median of {repeats}, each rolled back"
    )
    note = (
        f"first run {seconds:.1f} s ({made.get('events', 0):,} report tasks, {made.get('stale', 0):,} stale-address "
        f"tasks); the run after it (makes none) {_median(second):.1f} s"
    )
    print(f"bench: registry_tasks: {note}", flush=True)
    return [
        Result("registry_tasks", "1/s", 1 / seconds, f"budget {TASKS_BUDGET_SECONDS:g} s",
               1 / TASKS_BUDGET_SECONDS, 1.0, scale, note),
    ]  # fmt: skip
