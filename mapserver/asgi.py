"""ASGI entry point: what ``make run`` and production serve (``uvicorn mapserver.asgi:application``).

Vector tiles are answered by the asynchronous tile server (:mod:`mapserver.tileserver`); every
other request goes to Django's WSGI application in asgiref's worker thread. Django stays on WSGI
semantics on purpose: its streamed exports iterate a server-side cursor chunk by chunk, which an
ASGI Django would first collect into memory, and its views and ORM are synchronous anyway. One
process then serves Django requests one at a time (like a sync worker) while tiles are answered
concurrently on the event loop; run several processes (``--workers``) for more.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")

from asgiref.wsgi import WsgiToAsgi  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

django_application = get_wsgi_application()
if settings.DEBUG:
    # What runserver does for development: static files from the apps and node packages.
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    django_application = StaticFilesHandler(django_application)

from mapserver.tileserver import TileServer  # noqa: E402  (needs the apps loaded)

application = TileServer(fallback=WsgiToAsgi(django_application))
