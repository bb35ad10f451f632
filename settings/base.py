"""Settings shared by every environment.

Every project knob is named ``MINQING_*`` and commented with its meaning, unit and default.
The database comes from ``DATABASE_URL``; without it, the project-local PostGIS cluster that
``scripts/db.sh`` runs under ``var/`` is used, so ``manage.py`` works from the repository root
with no extra environment.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# Where real-data tests and benchmarks find the shared Lanzhou data (never copied into the repo).
# Default: ../shared/data beside the repository.
MINQING_SHARED_DATA = Path(os.environ.get("MINQING_SHARED_DATA", BASE_DIR.parent / "shared" / "data"))


def _database_from_environment() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        config = dj_database_url.parse(url, conn_max_age=60)
        config["ENGINE"] = "django.contrib.gis.db.backends.postgis"
        return config
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": os.environ.get("MINQING_PG_DATABASE", "minqing"),
        "USER": "minqing",
        # A Unix-socket directory as HOST: the cluster listens on no TCP port (scripts/db.sh).
        "HOST": str(VAR_DIR / "run"),
        "PORT": os.environ.get("MINQING_PG_PORT", "5439"),
        "CONN_MAX_AGE": 60,
    }


DATABASES = {"default": _database_from_environment()}
# Name of the throwaway database pytest creates; distinct names let several suites run at once.
# Default test_minqing.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("MINQING_TEST_DATABASE", "test_minqing")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "drf_spectacular",
    "leaflet",
    "layers",
    "importers",
    "mapserver",
    "basemaps",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mapserver.errors.ErrorMiddleware",
]

ROOT_URLCONF = "mapserver.urls"
WSGI_APPLICATION = "mapserver.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "mapserver.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Minqing Map API",
    "DESCRIPTION": "民情地图: locate points in grids, geocode Chinese addresses, take in and follow citizen events.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

# The demo city's map opens here: Lanzhou, 城关区 (lat, lon), zoom 12.
LEAFLET_CONFIG = {
    "DEFAULT_CENTER": (36.06, 103.83),
    "DEFAULT_ZOOM": 12,
    "MIN_ZOOM": 3,
    "MAX_ZOOM": 19,
    # No internet at run time: the admin maps draw on the project's own offline basemap (district,
    # street, community and grid outlines rendered from PostGIS by basemaps/).
    "TILES": [("离线底图 Offline", "/basemaps/offline/{z}/{x}/{y}.png", {"attribution": "民情地图", "maxZoom": 19})],
    "RESET_VIEW": False,
}

# Key for personal data at rest (ID numbers, phones): 32 bytes, URL-safe base64. Encrypts with
# AES-GCM and keys the HMAC used for exact lookup. Required in production; development and tests
# derive a fixed key so that the demo database stays readable across runs.
MINQING_PERSONAL_DATA_KEY = os.environ.get("MINQING_PERSONAL_DATA_KEY", "")

# Rows per COPY batch in the bulk importers (rows). Bigger batches are faster and use more memory.
# Default 200,000.
MINQING_IMPORT_BATCH_ROWS = int(os.environ.get("MINQING_IMPORT_BATCH_ROWS", "200000"))

# Where importers write their rejection reports unless --report names a file. Default var/reports.
MINQING_REPORT_DIR = Path(os.environ.get("MINQING_REPORT_DIR", VAR_DIR / "reports"))

# The city the demo and the address matcher assume when a text names none: 12-digit code.
# Default 620100000000 (兰州市).
MINQING_CITY_CODE = os.environ.get("MINQING_CITY_CODE", "620100000000")

# Bounding box (lon_min, lat_min, lon_max, lat_max, WGS84 degrees) of the city; points outside
# are rejected by importers as "outside the city". Default: Lanzhou with a margin.
MINQING_CITY_BBOX = tuple(
    float(part) for part in os.environ.get("MINQING_CITY_BBOX", "102.3,35.5,104.6,37.3").split(",")
)
if (
    len(MINQING_CITY_BBOX) != 4
    or MINQING_CITY_BBOX[0] >= MINQING_CITY_BBOX[2]
    or MINQING_CITY_BBOX[1] >= MINQING_CITY_BBOX[3]
):
    raise ImproperlyConfigured("MINQING_CITY_BBOX must be lon_min,lat_min,lon_max,lat_max with min < max")

# A located point nearer than this to the edge of its small grid is flagged "ambiguous": given GPS
# and map-offset error it may belong to the neighbouring grid (metres). Default 30.
MINQING_LOCATE_AMBIGUOUS_M = float(os.environ.get("MINQING_LOCATE_AMBIGUOUS_M", "30"))

# Duplicate reports: an event joins the case cluster of its category whose centre is within this
# distance (metres) of it and that was seen within the time window (hours) of it; otherwise it
# starts a new cluster. Defaults 100 m and 72 h.
MINQING_DUPLICATE_DISTANCE_M = float(os.environ.get("MINQING_DUPLICATE_DISTANCE_M", "100"))
MINQING_DUPLICATE_WINDOW_HOURS = float(os.environ.get("MINQING_DUPLICATE_WINDOW_HOURS", "72"))

# Basemaps offered to the map client, in order (basemaps/sources.py): dicts with name
# ([a-z0-9_-]), kind (offline | xyz | mbtiles | geotiff), title, attribution, minzoom/maxzoom
# (0-22), and url (xyz: a template with {z}, {x}, {y}, fetched by the client, never by the server)
# or path (mbtiles, geotiff: a local file). A system check rejects bad entries at start-up.
# Default: the offline basemap drawn from our own boundaries (no internet needed).
MINQING_BASEMAPS = [
    {"name": "offline", "kind": "offline", "title": "离线底图 Offline outlines", "attribution": "民情地图"},
]

# Debian 12 ships GDAL 3.6; the check asks for 3.9 only to block network access from crafted
# spatial references, which our importers never pass to GDAL unchecked (allow-listed CRSs).
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# How long one process trusts a layer's data version before reading the table statistics again
# (seconds). Tile and page caches key on it; PostgreSQL itself flushes those statistics about
# once a second. Default 1.0; the test settings use 0.
MINQING_DATA_VERSION_SECONDS = float(os.environ.get("MINQING_DATA_VERSION_SECONDS", "1.0"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# Caches. "default" is per process (local memory); "tiles" holds encoded vector tiles and layer
# extents, keyed by layer, z/x/y, filters, the layer's data version and the reader's role set, so
# a write to a layer's table makes its old entries unreachable. Local memory: each gunicorn worker
# keeps its own; a shared (file or Redis) cache can replace it without code changes.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "minqing-default"},
    "tiles": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "minqing-tiles",
        # Entries kept per process (tiles of a few KiB each). Default 20,000.
        "OPTIONS": {"MAX_ENTRIES": int(os.environ.get("MINQING_TILE_CACHE_ENTRIES", "20000"))},
    },
}
# How long a cached tile is kept (seconds); 0 turns the tile cache off (benchmarks measure the
# SQL path that way). Default 3600. Staleness is bounded by the data version, not by this.
MINQING_TILE_CACHE_SECONDS = int(os.environ.get("MINQING_TILE_CACHE_SECONDS", "3600"))
# Browser cache lifetime of tiles (seconds): short for layers that change by the minute (those
# with filters, i.e. events), longer for reference layers. Defaults 60 and 3600.
MINQING_TILE_MAX_AGE_LIVE = int(os.environ.get("MINQING_TILE_MAX_AGE_LIVE", "60"))
MINQING_TILE_MAX_AGE_STATIC = int(os.environ.get("MINQING_TILE_MAX_AGE_STATIC", "3600"))
# How long a reader's role set (their group names) is remembered per process for the hot map
# paths (tiles): a group change reaches them within this many seconds. 0: read on every request.
MINQING_READER_ROLES_SECONDS = float(os.environ.get("MINQING_READER_ROLES_SECONDS", "5.0"))
