"""Where reads go: the primary, or a streaming replica.

With ``MINQING_REPLICA_DATABASE_URL`` set, the database alias ``replica`` reaches the replicas
(through HAProxy, which takes a replica out while it lags beyond its bound: README "Production").
The HTTP edge (:class:`mapserver.routing.ReadRoutingMiddleware`) decides once per request whether
its reads may go there — a read-only surface (tiles, OGC API, exports, heat, dashboards,
statistics), and no write by the same client in the last ``MINQING_READ_YOUR_WRITES_SECONDS`` —
and says so with :func:`reads_from`. Read selectors then use :func:`reading` instead of
``django.db.connection``, and the ORM follows :class:`ReadRouter`; everything else (writes, the
audit log, data versions, the reader's own access) stays on the primary.

A replica that cannot be reached is skipped for ``MINQING_REPLICA_RETRY_SECONDS``: the reads go
to the primary meanwhile, and the request is not failed for it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("minqing.reading")

#: The alias the replicas are configured under (settings/base.py).
REPLICA = "replica"

_alias: contextvars.ContextVar[str] = contextvars.ContextVar("minqing_read_alias", default=DEFAULT_DB_ALIAS)
#: Until when (monotonic seconds) the replica counts as unreachable in this process.
_replica_down_until = 0.0


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextlib.contextmanager
def reads_from(alias: str) -> Iterator[None]:
    """Within the block, :func:`reading` and the ORM's reads use ``alias``."""
    token = _alias.set(alias)
    try:
        yield
    finally:
        _alias.reset(token)


def read_alias() -> str:
    """The alias reads use now: the block's choice, unless the replica is marked unreachable."""
    alias = _alias.get()
    if alias == REPLICA and (not replica_configured() or time.monotonic() < _replica_down_until):
        return DEFAULT_DB_ALIAS
    return alias


def reading() -> BaseDatabaseWrapper:
    """The connection read-only work should use (``connection.cursor()`` for a read selector).
    Connecting to a replica that is away marks it so and answers with the primary."""
    global _replica_down_until
    alias = read_alias()
    if alias == REPLICA:
        try:
            connections[REPLICA].ensure_connection()
        except OperationalError as error:
            _replica_down_until = time.monotonic() + settings.MINQING_REPLICA_RETRY_SECONDS
            logger.warning("replica unreachable, reading from the primary for %ss: %s",
                           settings.MINQING_REPLICA_RETRY_SECONDS, error)  # fmt: skip
            return connections[DEFAULT_DB_ALIAS]
    return connections[alias]


class ReadRouter:
    """Django's database router: ORM reads where :func:`reading` goes, writes to the primary,
    migrations only through the primary (the replica is the same database)."""

    def db_for_read(self, model, **hints) -> str:
        return reading().alias

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS
