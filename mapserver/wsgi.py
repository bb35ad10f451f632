"""WSGI entry point (gunicorn or ``manage.py runserver``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
# The served application connects as the database role that owns nothing (README "Database roles").
os.environ.setdefault("MINQING_DB_ROLE", "app")
application = get_wsgi_application()
