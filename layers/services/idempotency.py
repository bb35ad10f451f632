"""Idempotency keys: a write that a client may safely send again.

A client that timed out cannot know whether its report was stored. With an ``Idempotency-Key``
it sends the same request again and gets the first answer again, never a second event:

* :func:`idempotent_answer` claims the key, produces the answer and stores it with the key in
  **one transaction**, so a stored key always has its event and a rolled-back one leaves no
  trace (the retry then simply does the work);
* two requests racing with one key are serialised by the unique index: the second waits for the
  first's commit and then replays its answer;
* the same key with a different request is refused (:class:`~layers.errors.IdempotencyKeyReused`);
* keys are kept ``MINQING_IDEMPOTENCY_KEY_HOURS`` (≥ 24 h); an older key counts as new and
  :func:`idempotency_keys_purge` deletes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from layers.database.transactions import committed

from ..errors import IdempotencyKeyReused
from ..models import IdempotencyKey
from .bulk import execute, fetch


@dataclass(frozen=True)
class Answer:
    """An endpoint's answer: HTTP status, body (JSON data), the event it concerns, and whether it
    is the stored first answer given again."""

    status: int
    body: object
    event_id: int | None
    replayed: bool = False


#: What the endpoint does the first time: returns ``(status, body, event_id)``; raising rolls back
#: the claim of the key with everything else.
Producer = Callable[[], tuple[int, object, int | None]]


def _json(body: object) -> str:
    return json.dumps(body, ensure_ascii=False, cls=DjangoJSONEncoder)


def request_digest(payload: object) -> str:
    """SHA-256 (hex) of ``payload`` as canonical JSON (sorted keys, no spaces), so that the same
    request written with its keys in another order has the same digest.

    >>> request_digest({"b": 1, "a": "兰州"}) == request_digest({"a": "兰州", "b": 1})
    True
    >>> request_digest({"a": 1}) == request_digest({"a": 2})
    False
    """
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _expiry(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(hours=settings.MINQING_IDEMPOTENCY_KEY_HOURS)


# Claims the key for this transaction. A key held by a transaction that has not committed yet
# makes this statement wait for it (the unique index), so a racing retry never runs the work
# twice. An expired key is taken over (its row reset); a live one returns no row.
_CLAIM_SQL = """
INSERT INTO layers_idempotencykey (owner_id, endpoint, key, request_digest, created_at, response)
VALUES (%(owner)s, %(endpoint)s, %(key)s, %(digest)s, %(now)s, '')
ON CONFLICT (owner_id, endpoint, key) DO UPDATE
    SET request_digest = EXCLUDED.request_digest, created_at = EXCLUDED.created_at,
        status = NULL, response = '', event_id = NULL
    WHERE layers_idempotencykey.created_at < %(expired)s
RETURNING id
"""


def idempotent_answer(
    *, owner_id: int, endpoint: str, key: str | None, digest: str, produce: Producer, now: dt.datetime | None = None
) -> Answer:
    """``produce()``'s answer when the request carries no key (``key`` is ``None``). Otherwise
    the answer to a request carrying ``key``: the stored first answer (``replayed``) when the
    key is known with the same ``digest``, else ``produce()``'s, stored with the key in the same
    transaction. Returns only after that transaction committed (called, as in a request, outside
    any enclosing transaction: the project keeps ATOMIC_REQUESTS off), so a client told 201 holds
    an event that is stored. Raises :class:`~layers.errors.IdempotencyKeyReused` when the key is
    known with another digest, :class:`~layers.database.transactions.CommitUnknown` when the database went
    away during the commit (the answer may have been stored: a retry with the key finds out),
    and whatever ``produce`` raises (the key then stays free)."""
    if key is None:
        return Answer(*produce())
    now = now or timezone.now()
    with committed():
        claimed = fetch(
            _CLAIM_SQL,
            {
                "owner": owner_id,
                "endpoint": endpoint,
                "key": key,
                "digest": digest,
                "now": now,
                "expired": _expiry(now),
            },
        )
        if not claimed:
            stored = IdempotencyKey.objects.get(owner_id=owner_id, endpoint=endpoint, key=key)
            if stored.request_digest != digest:
                raise IdempotencyKeyReused(key)
            return Answer(stored.status, json.loads(stored.response), stored.event_id, replayed=True)
        status, body, event_id = produce()
        execute(
            "UPDATE layers_idempotencykey SET status = %s, response = %s, event_id = %s WHERE id = %s",
            [status, _json(body), event_id, claimed[0][0]],
        )
    return Answer(status, body, event_id)


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the keys older than ``MINQING_IDEMPOTENCY_KEY_HOURS``; returns how many."""
    return execute("DELETE FROM layers_idempotencykey WHERE created_at < %s", [_expiry(now or timezone.now())])
