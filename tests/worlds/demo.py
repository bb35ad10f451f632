"""The demo city at its tiny scale with a year of events: the generators `make run` uses, for tests
that need a whole city (reports, registry tasks, the grid worker's day)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.management import call_command

from layers.models import Grid
from layers.services.registry_tasks import registry_tasks_generate
from layers.services.users import demo_users_ensure
from layers.taxonomy import taxonomy_seed

#: The end of the generated year in the registry-work tests (the city's time zone).
END = dt.datetime(2025, 6, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@dataclass
class DemoYear:
    users: dict = field(default_factory=dict)
    #: The demo grid worker's small grid, when the demo logins were made.
    grid: Grid | None = None


def demo_year(
    *,
    events_seed: int = 1,
    end: dt.datetime | None = None,
    days: int | None = None,
    logins: bool = False,
    tasks_at: dt.datetime | None = None,
) -> DemoYear:
    """The tiny demo city, the seed taxonomy (a transactional test before may have flushed the
    migration's rows), and events (``days`` up to ``end``, by default the generator's own year);
    with ``logins`` the demo logins (the grid worker gets the first small grid); with
    ``tasks_at`` the registry tasks generated at that moment."""
    call_command("generate_demo_city", "--scale", "tiny", "--seed", "1", verbosity=0)
    taxonomy_seed()
    window = [*(["--days", str(days)] if days else []), *(["--end", end.isoformat()] if end else [])]
    call_command("generate_demo_events", "--seed", str(events_seed), *window, stdout=io.StringIO(), verbosity=0)
    if not logins:
        return DemoYear()
    demo_users_ensure()
    if tasks_at is not None:
        registry_tasks_generate(now=tasks_at)
    users = {user.username: user for user in get_user_model().objects.all()}
    return DemoYear(users=users, grid=Grid.objects.get(worker=users["gridworker"]))
