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

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

# Static files are answered by WhiteNoise's middleware inside Django (compressed copies from
# STATIC_ROOT, which scripts/run.sh fills with collectstatic), in development as in production.
django_application = get_wsgi_application()

from mapserver.tileserver import TileServer  # noqa: E402  (needs the apps loaded)

application = TileServer(fallback=WSGIMiddleware(django_application, workers=settings.MINQING_DJANGO_THREADS))
