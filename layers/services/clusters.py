"""Cross-channel duplicates: reports of one problem grouped into one case cluster.

Two ways in, one meaning ("same category, near in space, near in time"):

* :func:`event_cluster_assign`, at intake: the event joins the nearest cluster of its category
  whose centre lies within ``MINQING_DUPLICATE_DISTANCE_M`` and that was seen within
  ``MINQING_DUPLICATE_WINDOW_HOURS`` of the event's report time, else starts a new one. The
  cluster's centre, first/last seen and count are recomputed from its events.
* :func:`clusters_rebuild`, after a bulk load: every cluster is redrawn in SQL. Events are put in
  time buckets one window wide (by report time) and, per category and bucket,
  ``ST_ClusterDBSCAN`` with ``minpoints`` 1 links events within the distance of each other.
  Two approximations, both cheap and documented: reports either side of a bucket edge never
  share a cluster, and linking is single-link (a chain of reports each 80 m apart becomes one
  cluster longer than 100 m), where intake compares with the cluster's centre.

Clusters use the exact category (``hazard.fire``), so a report still filed under the bare family
(``hazard``) is not merged with its typed neighbours until it is triaged into a subtype.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.db import connection, transaction

from ..models import Event, EventCluster
from .bulk import execute, fetch

#: First key of the advisory lock that serialises intake clustering per category.
_LOCK_NAMESPACE = 7_311

_NEAREST_SQL = """
SELECT c.id
FROM layers_eventcluster c
WHERE c.category_id = %(category)s
  AND c.last_seen >= %(at)s - %(window)s AND c.first_seen <= %(at)s + %(window)s
  AND c.centroid && ST_Expand(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %(degrees)s)
  AND ST_DWithin(c.centroid::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography, %(metres)s)
ORDER BY ST_Distance(c.centroid::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography), c.id
LIMIT 1
"""

# Aggregates of a cluster from its events (the cluster_id index makes this a small read);
# a cluster left without events is deleted.
_REFRESH_SQL = """
UPDATE layers_eventcluster c
SET centroid = s.centroid, first_seen = s.first_seen, last_seen = s.last_seen, event_count = s.n
FROM (
    SELECT cluster_id, ST_SetSRID(ST_Centroid(ST_Collect(location)), 4326) AS centroid,
           min(reported_at) AS first_seen, max(reported_at) AS last_seen, count(*) AS n
    FROM layers_event WHERE cluster_id = ANY(%(ids)s) AND location IS NOT NULL
    GROUP BY cluster_id
) s
WHERE c.id = s.cluster_id
"""
_DROP_EMPTY_SQL = """
DELETE FROM layers_eventcluster c
WHERE c.id = ANY(%(ids)s) AND NOT EXISTS (SELECT 1 FROM layers_event e WHERE e.cluster_id = c.id)
"""


def _degrees_for(metres: float, lat: float) -> float:
    # A bbox margin in degrees that holds ``metres`` in every direction: a degree of longitude is
    # the shorter one (cos lat), so it sets the margin.
    return metres / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))


def _refresh(cluster_ids: list[int], *, left: int | None) -> None:
    """Recompute ``cluster_ids`` from their events; drop ``left`` (a cluster the event moved
    out of) if nothing remains in it."""
    execute(_REFRESH_SQL, {"ids": cluster_ids})
    if left is not None:
        execute(_DROP_EMPTY_SQL, {"ids": [left]})


_NEW_CLUSTER_SQL = """
INSERT INTO layers_eventcluster (category_id, centroid, first_seen, last_seen, event_count)
VALUES (%(category)s, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), %(at)s, %(at)s, 1)
RETURNING id
"""


def _nearest_or_new(event: Event) -> tuple[int, bool]:
    """The id of the cluster ``event`` (located) belongs to, and whether it existed before: the
    nearest matching one, else a new one made of the event alone. Takes the category's lock for
    the rest of the transaction: two reports of one fire arriving together must not start two
    clusters."""
    lon, lat = event.location.x, event.location.y
    metres = settings.MINQING_DUPLICATE_DISTANCE_M
    window = dt.timedelta(hours=settings.MINQING_DUPLICATE_WINDOW_HOURS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, event.category_id])
    found = fetch(
        _NEAREST_SQL,
        {
            "category": event.category_id,
            "at": event.reported_at,
            "window": window,
            "lon": lon,
            "lat": lat,
            "metres": metres,
            "degrees": _degrees_for(metres, lat),
        },
    )
    if found:
        return found[0][0], True
    (row,) = fetch(_NEW_CLUSTER_SQL, {"category": event.category_id, "lon": lon, "lat": lat, "at": event.reported_at})
    return row[0], False


def event_cluster_assign(*, event: Event) -> EventCluster | None:
    """Put a stored, located event into the nearest matching cluster or a new one, and return
    it; an event without a point gets no cluster (``None``)."""
    previous = event.cluster_id
    if event.location is None:
        return None
    # Inside the caller's transaction when there is one: no savepoint is needed, the cluster
    # lock lasts until that transaction ends either way.
    with transaction.atomic(savepoint=False):
        cluster_id, found = _nearest_or_new(event)
        event.cluster_id = cluster_id
        Event.objects.filter(pk=event.pk).update(cluster_id=cluster_id)
        moved_out = previous if previous not in (None, cluster_id) else None
        if found or moved_out:
            _refresh([cluster_id] if moved_out is None else [cluster_id, moved_out], left=moved_out)
    return EventCluster.objects.get(pk=cluster_id)


def event_cluster_choose(*, event: Event) -> bool:
    """For intake: set the cluster of ``event`` (located, not yet stored) before it is inserted,
    so that the new row is written once, with its cluster (an UPDATE right after the INSERT
    would write a second row version through every index). Call it inside the transaction that
    inserts the event. Returns whether an existing cluster was chosen: its aggregates must then
    be refreshed once the event is stored (:func:`event_cluster_refresh`)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_cluster_choose must run inside the transaction that inserts the event")
    event.cluster_id, found = _nearest_or_new(event)
    return found


def event_cluster_refresh(*, cluster_id: int) -> None:
    """Recompute a cluster's centre, first/last seen and count from its stored events."""
    _refresh([cluster_id], left=None)


def clusters_rebuild(*, distance_m: float | None = None, window_hours: float | None = None) -> int:
    """Redraw every cluster from the located events in set-based SQL (see the module docstring);
    returns the number of clusters. Meant for after a bulk load; runs in one transaction.

    Cost: about 7 s per 200,000 events on the development machine, most of it the one UPDATE
    that writes every event's new cluster id (a new row version through every index)."""
    metres = settings.MINQING_DUPLICATE_DISTANCE_M if distance_m is None else distance_m
    hours = settings.MINQING_DUPLICATE_WINDOW_HOURS if window_hours is None else window_hours
    lon0, lat0, lon1, lat1 = settings.MINQING_CITY_BBOX
    # DBSCAN needs a planar distance: Web Mercator stretches by 1/cos(latitude), so the radius is
    # scaled at the city's mid-latitude (within ~2 % across Lanzhou's extent).
    eps = metres / math.cos(math.radians((lat0 + lat1) / 2))
    with transaction.atomic():
        # The events' foreign key is checked at commit (deferred), when every located event
        # points at a new cluster; unlocated events never have one.
        execute("DELETE FROM layers_eventcluster")
        execute("DROP TABLE IF EXISTS event_cluster_label")
        execute(
            """
            CREATE TEMPORARY TABLE event_cluster_label ON COMMIT DROP AS
            SELECT b.id, b.category_id, b.bucket, b.location, b.reported_at,
                   ST_ClusterDBSCAN(ST_Transform(b.location, 3857), eps => %(eps)s, minpoints => 1)
                       OVER (PARTITION BY b.category_id, b.bucket) AS label
            FROM (
                SELECT id, category_id, location, reported_at,
                       floor(extract(epoch FROM reported_at) / %(window_s)s)::bigint AS bucket
                FROM layers_event WHERE location IS NOT NULL
            ) b
            """,
            {"eps": eps, "window_s": hours * 3600.0},
        )
        execute("DROP TABLE IF EXISTS event_cluster_new")
        execute(
            """
            CREATE TEMPORARY TABLE event_cluster_new ON COMMIT DROP AS
            SELECT nextval(pg_get_serial_sequence('layers_eventcluster', 'id')) AS id, g.*
            FROM (
                SELECT category_id, bucket, label,
                       ST_SetSRID(ST_Centroid(ST_Collect(location)), 4326) AS centroid,
                       min(reported_at) AS first_seen, max(reported_at) AS last_seen, count(*) AS n
                FROM event_cluster_label GROUP BY category_id, bucket, label
            ) g
            """
        )
        created = execute(
            """
            INSERT INTO layers_eventcluster (id, category_id, centroid, first_seen, last_seen, event_count)
            SELECT id, category_id, centroid, first_seen, last_seen, n FROM event_cluster_new
            """
        )
        execute(
            """
            UPDATE layers_event e SET cluster_id = n.id
            FROM event_cluster_label l
            JOIN event_cluster_new n USING (category_id, bucket, label)
            WHERE e.id = l.id
            """
        )
    return created
