"""Start-up checks of the served application.

:func:`database_role_problems` tells whether the database role the application connects as is
the least-privileged one (README "Database roles"): not a superuser, owning none of the tables.
``manage.py check --deploy --database default`` reports it (``minqing.E101``, with the
application's settings: ``MINQING_DB_ROLE=app``), and the production ASGI entry point refuses to
serve with such a role (:func:`refuse_privileged_role`).

:func:`personal_data_keys_check` checks the personal-data key and the previous keys of a
rotation (``minqing.E102``) with every management command, and the ASGI entry point refuses to
start with a bad one, rather than failing at the first request that reads personal data.
"""

from __future__ import annotations

import logging

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

logger = logging.getLogger("minqing.checks")

_ROLE_SQL = """
SELECT current_user, r.rolsuper,
       EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid AND c.relname = 'layers_auditentry')
FROM pg_roles r WHERE r.rolname = current_user
"""


def database_role_problems(alias: str = "default") -> list[str]:
    """What is wrong with the role ``alias`` connects as, for serving requests (empty: nothing)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_ROLE_SQL)
        name, superuser, owner = cursor.fetchone()
    problems = []
    if superuser:
        problems.append(f"the database role {name!r} is a superuser")
    if owner:
        problems.append(f"the database role {name!r} owns the tables (it could rewrite the audit log)")
    return problems


@checks.register(checks.Tags.database, deploy=True)
def served_role_check(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    if not databases or "default" not in databases:
        return []
    from django.conf import settings

    if settings.MINQING_DB_ROLE != "app":
        return []
    return [
        checks.Error(problem, hint="connect as the application's role (README 'Database roles')", id="minqing.E101")
        for problem in database_role_problems()
    ]


@checks.register()
def personal_data_keys_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``MINQING_PERSONAL_DATA_KEY`` and ``MINQING_PERSONAL_DATA_KEY_PREVIOUS`` well formed (an
    unset current key is left to the settings: production refuses it, development sets one)."""
    from django.conf import settings

    from layers.protection import personal

    if not settings.MINQING_PERSONAL_DATA_KEY and not getattr(settings, personal.PREVIOUS, None):
        return []
    try:
        personal.key_labels()
    except ImproperlyConfigured as error:
        return [checks.Error(str(error), hint="README 'Rotating the personal-data key'", id="minqing.E102")]
    return []


def refuse_privileged_role() -> None:
    """Raise :class:`ImproperlyConfigured` when the served application would connect as a
    superuser or the tables' owner. A database that cannot be reached now is not a reason to
    refuse: requests answer 503 until it is back, and the next start checks again."""
    try:
        problems = database_role_problems()
    except DatabaseError as error:
        logger.warning("start-up: the database role could not be checked (%s)", error)
        return
    finally:
        connections["default"].close()
    if problems:
        raise ImproperlyConfigured(f"refusing to serve: {'; '.join(problems)} (README 'Database roles')")
