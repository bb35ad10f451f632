"""A city-scale year of events in the benchmark database, made once.

The city bench database (``generate_demo_city --scale city``: 1.7 M addresses, 3.9 M residents)
holds no events; the clustered events tiles, the tiles beside tipg, the monthly report and the
registry's task generation need a busy city's year. :func:`ensure_event_year` draws it with the
demo generator itself (:func:`importers.demo_events.demo_events_build`: addresses weighted by
residents, so the dense old town gets most, hot-spot communities, seasons, channels, every path
through the closed loop) at :data:`CITY_RATE` events per 1,000 residents a year — Lanzhou's own
rate is ~230 (about 1 M events for 4.4 M people), the bench city's 3.9 M residents at 150 give
~580,000 events — and stores it with :func:`importers.demo_events.demo_events_write` (COPY into
staging tables, one ``INSERT … SELECT`` per table, the polygon-driven links, the clusters).

The year ends at 00:00 (Asia/Shanghai) on the first day of the month it is generated in, so the
month before that is a whole month of events (the one the report benchmark draws).
"""

from __future__ import annotations

import datetime as dt
import time

from django.utils import timezone

#: Events per 1,000 residents per year for the city bench year.
CITY_RATE = 150.0
SEED = 1


def year_end(now: dt.datetime | None = None) -> dt.datetime:
    """00:00 local on the first day of ``now``'s month."""
    local = timezone.localtime(now or timezone.now())
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def ensure_event_year(*, rate: float = CITY_RATE, seed: int = SEED) -> dict:
    """Generate the year of events once (nothing when demo events are already stored); returns
    what is stored: event and transition counts, the last report and the year's end (00:00 of
    the first day of the month after the last report)."""
    from importers.demo_events import demo_events_build, demo_events_exist, demo_events_write
    from layers.services.bulk import fetch

    if not demo_events_exist():
        end = year_end()
        print(
            f"bench: generating a year of events to {end:%Y-%m-%d} at {rate:g} per 1,000 residents (once)", flush=True
        )
        started = time.monotonic()
        demo = demo_events_build(seed=seed, end=end, rate=rate)
        built = time.monotonic()
        counts = demo_events_write(demo=demo)
        print(
            f"bench: {counts['events']:,} events, {counts['transitions']:,} transitions, {counts['linked']:,} "
            f"linked; built in {built - started:.0f} s, written in {time.monotonic() - built:.0f} s",
            flush=True,
        )
    ((events, transitions, last),) = fetch(
        "SELECT (SELECT count(*) FROM layers_event), (SELECT count(*) FROM layers_eventtransition), "
        "(SELECT max(reported_at) FROM layers_event)"
    )
    # The year's end: the first of the month after its last report.
    end = year_end(last + dt.timedelta(days=1)) if last else year_end()
    if last and end <= last:
        end = year_end(end + dt.timedelta(days=32))
    return {"events": events, "transitions": transitions, "last_report": last, "end": end}
