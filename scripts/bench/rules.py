"""rules_replay: a year of cases at city scale replayed against a draft keyword library, vs the
one-case-at-a-time router over the same cases.

The data: one million events of the last year (Lanzhou's ~1 M a year) inserted once into the
synthetic benchmark database by one ``INSERT … SELECT generate_series`` (categories and
description templates of the demo year, each description made unique by a serial, so no
distinct-text shortcut helps us), and hand re-routings in the transition log: a third of the
neighbours' leak disputes to mediation, one case in a hundred elsewhere.

Ours: :func:`layers.selectors.replay.cases_read` (one COPY into Arrow) then
:func:`layers.selectors.replay.library_replay` (the live library and the draft decided over
every case with Arrow and numpy, the flows, examples with traces, precision and recall). The
peer: the same cases read with a cursor and decided one at a time by
:func:`layers.services.dispatch.route_decide` — the rule the live dispatch applies to each new
event — under the live library and under the draft (it computes the two routings only, none of
the summary). Unit: cases per second of wall time, higher is better.
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import connection
from django.utils import timezone

from .harness import Result, benchmark, median_seconds

CASES = 1_000_000
PREFIX = "BENCH-RULES-"
#: The issue's budget: one year of the city's cases in 10 s.
BUDGET_SECONDS = 10.0


def _ensure_cases(now: dt.datetime) -> int:
    """Insert the year of synthetic cases once (kept between runs); returns how many there are."""
    from importers.demo_events import CATEGORIES

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM layers_event WHERE external_id LIKE %s", [PREFIX + "%"])
        (present,) = cursor.fetchone()
        if present >= CASES:
            return present
        print(f"bench: inserting {CASES:,} synthetic cases for rules_replay (once)", flush=True)
        codes = [code for code, _, _ in CATEGORIES]
        templates = [texts for _, _, texts in CATEGORIES]
        cursor.execute(
            """
            WITH kinds AS (
                SELECT k.ord - 1 AS i, c.id AS category_id, k.texts
                FROM unnest(%(codes)s::text[], %(texts)s::text[]) WITH ORDINALITY AS k(code, texts, ord)
                JOIN layers_category c ON c.code = k.code
            )
            INSERT INTO layers_event (
                channel, external_id, category_id, description, reporter_name_cipher, reporter_name_masked,
                reporter_phone_digest, reporter_phone_cipher, reporter_phone_masked, address_text, geocode_method,
                geocode_precision, needs_location, status, responsible_level, joint_handling, escalation_level, reported_at,
                received_at, reopen_count, dispatch_trace, version, district_code)
            SELECT 'hotline', %(prefix)s || n, k.category_id,
                   split_part(k.texts, '|', 1 + (n / 7) %% (1 + length(k.texts) - length(replace(k.texts, '|', ''))))
                       || '，工单' || n,
                   '', '', '', '', '', '', 'none', '', false, 'closed', 'community', false, 0,
                   %(now)s - make_interval(secs => (n %% 31536000)), %(now)s - make_interval(secs => (n %% 31536000)),
                   0, '{}'::jsonb, 1, ''
            FROM generate_series(1, %(cases)s) AS n
            JOIN kinds k ON k.i = n %% %(kinds)s
            """,
            {
                "codes": codes,
                "texts": ["|".join(t) for t in templates],
                "prefix": PREFIX,
                "now": now,
                "cases": CASES,
                "kinds": len(codes),
            },
        )
        # Hand re-routings: a third of the neighbours' leaks go to mediation (justice), as the
        # draft would send them, and one case in a hundred elsewhere (ecology), as it would not.
        cursor.execute(
            """INSERT INTO layers_eventtransition (event_id, from_status, to_status, action, actor_label, at, reason, data)
               SELECT e.id, 'returned', 'assigned', 'assign', 'bench-staff', e.received_at + interval '1 hour', '',
                      jsonb_build_object('department', CASE WHEN c.code = 'dispute.neighbour'
                                                            AND e.description LIKE '%%漏水%%' THEN 'justice'
                                                            ELSE 'ecology' END)
               FROM layers_event e JOIN layers_category c ON c.id = e.category_id
               WHERE e.external_id LIKE %s
                 AND ((c.code = 'dispute.neighbour' AND e.description LIKE '%%漏水%%' AND e.id %% 3 = 0)
                      OR e.id %% 100 = 0)""",
            [PREFIX + "%"],
        )
        cursor.execute("ANALYZE layers_event")
        cursor.execute("ANALYZE layers_eventtransition")
        cursor.execute("SELECT count(*) FROM layers_event WHERE external_id LIKE %s", [PREFIX + "%"])
        return cursor.fetchone()[0]


def _draft(rules: list[dict]) -> list[dict]:
    """The change the demo's replay shows: 漏水 kept to water-supply cases, and one new rule."""
    changed = [dict(r, category="municipal.water") if r["keyword"] == "漏水" else dict(r) for r in rules]
    return changed + [{"keyword": "楼道", "department": "fire", "priority": 15, "category": "hazard", "active": True}]


@benchmark("rules_replay", data="synthetic")
def rules_replay(*, repeats: int, rows: int) -> list[Result]:
    from layers.selectors.replay import cases_read, library_replay
    from layers.services.dispatch import reference, route_decide
    from layers.services.rules import live_rules, rule_specs

    now = timezone.now()
    count = _ensure_cases(now)
    since = now - dt.timedelta(days=366)
    live, draft = rule_specs(live_rules()), rule_specs(_draft(live_rules()))
    defaults = reference().defaults
    summary: dict = {}

    def ours() -> None:
        cases = cases_read(since=since, until=now)
        summary.update(library_replay(cases=cases, live=live, draft=draft, defaults=defaults, with_description=False))
        summary["n"] = len(cases)

    ours()  # warm: buffers, plans
    seconds = median_seconds(ours, repeats=repeats)

    def peer() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT e.description, c.code FROM layers_event e JOIN layers_category c ON c.id = e.category_id
                   WHERE e.received_at >= %s AND e.received_at < %s ORDER BY e.id""",
                [since, now],
            )
            rows_read = cursor.fetchall()
        changed = 0
        for description, code in rows_read:
            before = route_decide(description=description, category_code=code, rules=live, defaults=defaults)
            after = route_decide(description=description, category_code=code, rules=draft, defaults=defaults)
            changed += before.department != after.department
        summary["peer_changed"] = changed

    started = time.perf_counter()
    peer()
    peer_seconds = time.perf_counter() - started
    n = summary["n"]
    scale = f"{n:,} cases of one year ({count:,} synthetic), {len(draft)} rules, 2 libraries"
    note = (
        f"ours {seconds:.2f} s (COPY + replay + summary), peer {peer_seconds:.1f} s (one run); "
        f"{summary['changed']:,} cases routed differently (peer counts {summary['peer_changed']:,}, same decision rule); "
        f"precision {summary['manual']['precision']}, recall {summary['manual']['recall']} "
        f"against {summary['manual']['rerouted']:,} hand re-routings"
    )
    return [
        Result(
            "rules_replay",
            "cases/s",
            n / seconds,
            "route_decide one case at a time",
            n / peer_seconds,
            5.0,
            scale,
            note,
        ),
        Result(
            "rules_replay_budget",
            "cases/s",
            n / seconds,
            f"budget: a year in {BUDGET_SECONDS:g} s",
            CASES / BUDGET_SECONDS,
            1.0,
            scale,
            f"ours {seconds:.2f} s for the year",
        ),
    ]
