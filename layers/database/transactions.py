"""A transaction whose commit may be lost on the wire.

When the connection to PostgreSQL breaks while COMMIT is under way (a restart, a failover), the
client cannot know whether the commit happened: the server may have made it durable and died
before saying so. A write endpoint must then not answer a plain "unavailable, retry": the report
may be stored. :func:`committed` is ``transaction.atomic()`` that tells that case apart and
raises :class:`CommitUnknown`, whose answer tells the client its report may have been stored and
how to get it without storing it twice (the same Idempotency-Key, or channel and external id).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils.translation import gettext as _

from layers.errors import DomainError


class CommitUnknown(DomainError):
    """503: the connection was lost while the write committed; it may have been stored."""

    status = 503
    code = "commit_unknown"

    def __init__(self) -> None:
        super().__init__(
            _(
                "the database went away while saving: the report may have been stored; send it again with the "
                "same Idempotency-Key, or the same channel and external_id, to get the stored one, never a second"
            )
        )


@contextlib.contextmanager
def committed(*, savepoint: bool = True) -> Iterator[None]:
    """``transaction.atomic(savepoint=…)`` that, when it is the outermost block (the one that
    commits), raises :class:`CommitUnknown` if the connection is lost during the commit itself.
    A loss before the commit is the usual error: the transaction is rolled back, nothing was
    stored. Nested in another block it is a plain atomic block."""
    outermost = not connection.in_atomic_block
    block = transaction.atomic(savepoint=savepoint)
    block.__enter__()
    try:
        yield
    except BaseException:
        block.__exit__(*sys.exc_info())
        raise
    try:
        block.__exit__(None, None, None)
    except (OperationalError, InterfaceError) as error:
        if outermost:
            raise CommitUnknown() from error
        raise
