"""Production: every secret from the environment, secure cookies and headers.

Required: ``DJANGO_SECRET_KEY`` (50+ random characters), ``DJANGO_ALLOWED_HOSTS`` (comma-separated
host names), ``MINQING_PERSONAL_DATA_KEY`` (32 bytes, URL-safe base64: ``python -c "import os,
base64; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"``). Optional:
``DJANGO_CSRF_TRUSTED_ORIGINS`` (comma-separated ``https://host`` origins that may post forms, when
they differ from the site's own), ``MINQING_TRUSTED_PROXIES`` (see settings/base.py).
``DJANGO_SETTINGS_MODULE=settings.prod manage.py check --deploy`` is clean with these set
(tests/mapserver/test_hardening.py runs it).
"""

import os

from . import environment

# Stated before the base is read, so that its check reports them with its own problems.
SECRET_KEY = environment.required("DJANGO_SECRET_KEY", " in production")
ALLOWED_HOSTS = environment.required("DJANGO_ALLOWED_HOSTS", " in production").split(",")
environment.required("MINQING_PERSONAL_DATA_KEY", " in production (32 bytes, URL-safe base64)")

from .base import *  # noqa: E402,F401,F403
from .base import MINQING_TRUSTED_PROXIES  # noqa: E402

DEBUG = False
# Origins (scheme and host) allowed to send forms besides the site itself. Default: none.
CSRF_TRUSTED_ORIGINS = [origin for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin]

# Cookies only over HTTPS; the session cookie is also HttpOnly and SameSite=Lax (settings/base.py).
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# Plain HTTP is redirected to HTTPS, and browsers are told to use HTTPS only for a year.
SECURE_SSL_REDIRECT = True
# Health checks and the metrics scraper talk to the application's own port, in plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS-terminating proxy (MINQING_TRUSTED_PROXIES) the request is secure when the proxy
# says so; the header is dropped from anyone else (mapserver.security.ProxyHeadersMiddleware), and
# the proxy must set, not pass through, X-Forwarded-Proto.
if MINQING_TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
