"""ASGI entry point: what ``make run`` and production serve (``uvicorn mapserver.asgi:application``).

Vector tiles are answered by the asynchronous tile server (:mod:`mapserver.tileserver`); every
other request goes to Django's WSGI application on a pool of threads (a2wsgi), as gunicorn's
threaded workers would run it. Django stays on WSGI semantics on purpose: its streamed exports
iterate a server-side cursor chunk by chunk (a2wsgi forwards them through a bounded queue, so
memory stays flat), which an ASGI Django would first collect into memory; its views and ORM are
synchronous anyway. ``MINQING_DJANGO_THREADS`` Django requests run at once per process while
tiles are answered on the event loop; run several processes (``--workers``) for more.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
# The served application connects as the database role that owns nothing (README "Database roles").
os.environ.setdefault("MINQING_DB_ROLE", "app")

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

# Static files are answered by WhiteNoise's middleware inside Django (compressed copies from
# STATIC_ROOT, which scripts/run.sh fills with collectstatic), in development as in production.
django_application = get_wsgi_application()
# A bad personal-data key or previous key stops the start, with the setting's exact message.
from layers.protection.personal import key_labels  # noqa: E402

key_labels()
if not settings.DEBUG and settings.MINQING_DB_ROLE == "app":
    from concurrent.futures import ThreadPoolExecutor

    from mapserver.checks import refuse_privileged_role

    # On a thread: uvicorn imports the application inside its event loop, where Django refuses
    # to run a query.
    with ThreadPoolExecutor(max_workers=1) as startup:
        startup.submit(refuse_privileged_role).result()

from mapserver.admission import Admission  # noqa: E402  (needs the apps loaded)
from mapserver.tileserver import TileServer  # noqa: E402

# Django on a thread pool, behind a bounded queue: beyond the threads and MINQING_DJANGO_QUEUE
# waiting requests, a 503 with Retry-After at once (mapserver/admission.py).
django_pool = WSGIMiddleware(django_application, workers=settings.MINQING_DJANGO_THREADS)
application = TileServer(
    fallback=Admission(django_pool, limit=settings.MINQING_DJANGO_THREADS + settings.MINQING_DJANGO_QUEUE)
)
