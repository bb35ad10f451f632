"""Answers remembered in this process for a few seconds.

The hot map paths (tiles above all) ask the same small questions on every request: which groups
does this user hold, has this layer's data changed. Asking PostgreSQL costs as much as a cached
tile, so the answers are kept here for a setting's worth of seconds; the synchronous Django views
and the asynchronous tile server share one :class:`Remembered` per question, so both see the same
staleness bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value")

#: Entries kept per question before the oldest half is dropped (users, tokens, layers: small sets).
MAX_ENTRIES = 10_000


class Remembered(Generic[Value]):
    """A per-key value that counts as known for ``seconds()`` after it was stored.

    ``seconds`` is a callable so that settings overridden in tests take effect at once; a value
    of 0 or less turns remembering off (``get`` always misses, ``put`` stores nothing).

    >>> answers = Remembered(lambda: 60.0)
    >>> answers.get(("roles", 1)) is None
    True
    >>> answers.put(("roles", 1), ("analyst",))
    >>> answers.get(("roles", 1))
    ('analyst',)
    >>> off = Remembered(lambda: 0)
    >>> off.put("k", 1); off.get("k") is None
    True
    """

    def __init__(self, seconds: Callable[[], float]) -> None:
        self._seconds = seconds
        self._values: dict[Hashable, tuple[float, Value]] = {}

    def get(self, key: Hashable, default: Value | None = None) -> Value | None:
        seconds = self._seconds()
        remembered = self._values.get(key)
        if seconds <= 0 or remembered is None or time.monotonic() - remembered[0] >= seconds:
            return default
        return remembered[1]

    def put(self, key: Hashable, value: Value) -> None:
        if self._seconds() <= 0:
            return
        if len(self._values) >= MAX_ENTRIES:
            # Drop the older half: cheaper than an LRU on every hit, and the sets are small.
            for stale in sorted(self._values, key=lambda k: self._values[k][0])[: MAX_ENTRIES // 2]:
                del self._values[stale]
        self._values[key] = (time.monotonic(), value)

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)
