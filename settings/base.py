"""Settings shared by every environment.

Every project knob is named ``MINQING_*`` and commented with its meaning, unit and default.
The database comes from ``DATABASE_URL``; without it, the project-local PostGIS cluster that
``scripts/db.sh`` runs under ``var/`` is used, so ``manage.py`` works from the repository root
with no extra environment.
"""

import datetime as dt
import os
import re
from pathlib import Path

import dj_database_url

from . import environment

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# Where real-data tests and benchmarks find the shared Lanzhou data (never copied into the repo).
# Default: ../shared/data beside the repository.
MINQING_SHARED_DATA = Path(os.environ.get("MINQING_SHARED_DATA", BASE_DIR.parent / "shared" / "data"))


# Which database role this process connects as (README "Database roles"): "app" for the served
# application (mapserver/asgi.py and wsgi.py set it), which reads and writes rows but owns
# nothing; "owner" for manage.py (migrations, imports, the demo, timers) and the tests.
# Default owner.
MINQING_DB_ROLE = environment.choice("MINQING_DB_ROLE", "owner", ("app", "owner"))
# The application's database role, which migrations grant row access to. Default minqing_app.
MINQING_DB_APP_ROLE = os.environ.get("MINQING_DB_APP_ROLE", "minqing_app")


def local_database_password(role: str) -> str:
    """The password scripts/db.sh made for a role of the project-local cluster ("app" or
    "owner"), or "" before the cluster exists."""
    path = VAR_DIR / "secrets" / f"db-{role}.password"
    return path.read_text().strip() if path.exists() else ""


def _database_from_environment() -> dict:
    # DATABASE_URL is the application's connection; MINQING_OWNER_DATABASE_URL the owner's, when
    # it differs (migrations and imports). Without either, the project-local cluster.
    url = os.environ.get("DATABASE_URL")
    if MINQING_DB_ROLE == "owner" and os.environ.get("MINQING_OWNER_DATABASE_URL"):
        url = os.environ["MINQING_OWNER_DATABASE_URL"]
    if url:
        # Health checks: a kept connection that the database dropped (a restart) is replaced
        # before the request uses it, instead of failing that request.
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
        config["ENGINE"] = "django.contrib.gis.db.backends.postgis"
        return config
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": os.environ.get("MINQING_PG_DATABASE", "minqing"),
        "USER": "minqing" if MINQING_DB_ROLE == "owner" else MINQING_DB_APP_ROLE,
        "PASSWORD": local_database_password(MINQING_DB_ROLE),
        # A Unix-socket directory as HOST: the cluster listens on no TCP port (scripts/db.sh).
        "HOST": str(VAR_DIR / "run"),
        "PORT": os.environ.get("MINQING_PG_PORT", "5439"),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


DATABASES = {"default": _database_from_environment()}
# Streaming replicas for the read-only surfaces (layers/database/reading.py, mapserver/routing.py): a URL
# reaching them (production: HAProxy's replica port, which drops a replica lagging beyond its
# bound), as the application's role. Unset: every read from DATABASE_URL. In tests the alias
# mirrors the default database.
if os.environ.get("MINQING_REPLICA_DATABASE_URL"):
    DATABASES["replica"] = dj_database_url.parse(
        os.environ["MINQING_REPLICA_DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    ) | {"ENGINE": "django.contrib.gis.db.backends.postgis", "TEST": {"MIRROR": "default"}}
DATABASE_ROUTERS = ["layers.database.reading.ReadRouter"]
# After a write, a client's reads go to the primary for this long, so that they see it whatever
# the replicas' lag (seconds). Default 10.
MINQING_READ_YOUR_WRITES_SECONDS = environment.number("MINQING_READ_YOUR_WRITES_SECONDS", "10")
# A replica that could not be reached is not tried again for this long; reads go to the primary
# meanwhile (seconds). Default 5.
MINQING_REPLICA_RETRY_SECONDS = environment.number("MINQING_REPLICA_RETRY_SECONDS", "5")
# Replay lag beyond which /readyz calls the replica not ready (bytes of WAL). HAProxy's check
# (scripts/stack) takes such a replica out of the read pool at the same bound. Default 16 MiB.
MINQING_REPLICA_MAX_LAG_BYTES = environment.integer("MINQING_REPLICA_MAX_LAG_BYTES", str(16 * 1024 * 1024))
# Addresses that may read /metrics (Prometheus on this host, or through the proxy's own address);
# anyone else gets a 404. Comma-separated. Default 127.0.0.1,::1.
MINQING_METRICS_ALLOWED = [a.strip() for a in os.environ.get("MINQING_METRICS_ALLOWED", "127.0.0.1,::1").split(",")]
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
    # Login lockout after repeated failures (mapserver/security.py's LockoutBackend).
    "axes",
]

MIDDLEWARE = [
    # Outermost: every request counted and timed by route (mapserver/metrics.py).
    "mapserver.metrics.MetricsMiddleware",
    # The client address and scheme from trusted proxies only (mapserver/security.py).
    "mapserver.security.ProxyHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Request body size limit and Content-Security-Policy (mapserver/security.py).
    "mapserver.security.HardeningMiddleware",
    # JSON answers in brotli or gzip as the client accepts (mapserver/compression.py); outside
    # the error renderer, so error bodies are compressed too.
    "mapserver.compression.CompressionMiddleware",
    # Static files (ours and the npm packages') in every mode, gzip-compressed copies where the
    # browser takes them: collectstatic writes a .gz beside each file (STORAGES below).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Cross-origin reads with a token from the origins in MINQING_CORS_ORIGINS (mapserver/cors.py);
    # inside the security middleware, so a preflight's answer carries the same edge headers.
    "mapserver.cors.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: the audit log names the request's user.
    "mapserver.security.AuditRequestMiddleware",
    # request.reader: the request's one access decision (roles, permissions, data scope).
    "mapserver.auth.ReaderMiddleware",
    # Which database the request's reads use (a replica for the read-only surfaces).
    "mapserver.routing.ReadRoutingMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mapserver.errors.ErrorMiddleware",
    # django-axes' login lockout, last as its documentation asks.
    "axes.middleware.AxesMiddleware",
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
                "django.template.context_processors.i18n",
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
# Where collectstatic gathers the static files for the front proxy to serve (production; the
# development server serves them itself). Default var/static.
STATIC_ROOT = Path(os.environ.get("MINQING_STATIC_ROOT", VAR_DIR / "static"))
# Static files are collected into STATIC_ROOT (scripts/setup.sh, scripts/run.sh and the browser
# tests run collectstatic) with a gzip copy of each text file, and served from there by WhiteNoise:
# a phone on a slow network gets leaflet.js in 42 KB instead of 147 KB. Names are not hashed, so
# templates need no manifest and a stale STATIC_ROOT only serves older files, never fails.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "mapserver.storage.CompressedStaticFiles"},
}
# Serve only what collectstatic put in STATIC_ROOT (with its .gz copies), never the sources
# through the finders (those have no compressed copies). Default False.
WHITENOISE_USE_FINDERS = os.environ.get("MINQING_STATIC_FROM_SOURCES", "") == "1"

# --- Front-end pages and languages ----------------------------------------------------------------
# Front-end packages come from npm (package.json + package-lock.json at the repository root,
# installed into node_modules/ by scripts/setup.sh) and are served as /static/vendor/<package>/…;
# only each package's dist folder is exposed, never its sources or node_modules as a whole.
# Where node_modules lives. Default: node_modules beside manage.py.
MINQING_NODE_MODULES = Path(os.environ.get("MINQING_NODE_MODULES", BASE_DIR / "node_modules"))
STATICFILES_DIRS = [
    ("vendor/leaflet", MINQING_NODE_MODULES / "leaflet" / "dist"),
    ("vendor/leaflet.vectorgrid", MINQING_NODE_MODULES / "leaflet.vectorgrid" / "dist"),
    ("vendor/echarts", MINQING_NODE_MODULES / "echarts" / "dist"),
]
# Message catalogs: msgids are English, locale/zh_Hans translates every one (the default
# language), locale/en repeats them (scripts/messages.sh). The .mo files are compiled by
# scripts/setup.sh, not committed.
LOCALE_PATHS = [BASE_DIR / "locale"]
# Pages send anonymous users to the login page and back to the page after it.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

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
    # Every operation's error answers (the one error tree's shapes) are declared once, by a hook
    # (mapserver/schema.py), after drf-spectacular's own enum post-processing.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "mapserver.schema.error_responses"],
    # Two enums named "status": GeoReport's two statuses and the events' closed loop.
    "ENUM_NAME_OVERRIDES": {
        "GeoReportStatusEnum": ["open", "closed"],
        "EventStatusEnum": "mapserver.schema.EVENT_STATUSES",
        "CategoryEnum": "mapserver.schema.CATEGORY_CODES",
    },
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

# Keys personal data was written under before the current one, while a rotation is under way:
# comma-separated, newest first, each 32 bytes of URL-safe base64 like the current key. Reads try
# the current key and then these (ciphertexts, lookup digests, the audit anchors' HMAC, residents'
# follow-up links); writes use the current key only. `manage.py rotate_personal_data_key` rewrites
# everything under the current key; then remove them (README, "Rotating the personal-data key").
# Default: none.
MINQING_PERSONAL_DATA_KEY_PREVIOUS = [
    key.strip() for key in os.environ.get("MINQING_PERSONAL_DATA_KEY_PREVIOUS", "").split(",") if key.strip()
]

# Rows per COPY batch in the bulk importers (rows). Bigger batches are faster and use more memory.
# Default 200,000.
MINQING_IMPORT_BATCH_ROWS = environment.integer("MINQING_IMPORT_BATCH_ROWS", "200000")

# Where importers write their rejection reports unless --report names a file. Default var/reports.
MINQING_REPORT_DIR = Path(os.environ.get("MINQING_REPORT_DIR", VAR_DIR / "reports"))

# Grid imports refuse gaps, overlaps and grids outside their parent that they would bring, inside
# their transaction; parts narrower than this (digitising slivers along shared edges) or smaller
# than its square are ignored, as by check_grids (metres). Default 1.
MINQING_TOPOLOGY_TOLERANCE_M = environment.number("MINQING_TOPOLOGY_TOLERANCE_M", "1.0")

# An invalid polygon is repaired (make_valid) only when the repair changes its area by at most
# this fraction of it; beyond, the row is rejected with the reason (a self-crossing "bow-tie"
# repaired into two triangles is not what the surveyor drew). Fraction, default 0.01 (1 %).
MINQING_REPAIR_MAX_AREA_CHANGE = environment.number("MINQING_REPAIR_MAX_AREA_CHANGE", "0.01")

# Uploads of the import page (/imports/) and the worker that runs them (run_import_jobs): files
# are kept under MINQING_IMPORT_DIR (default var/imports), one folder per job with its
# rejection report and map preview; an upload may be at most MINQING_IMPORT_MAX_BYTES (bytes,
# default 1 GiB: a city's address table as CSV is a few hundred MB). The worker looks for
# queued jobs every MINQING_IMPORT_POLL_SECONDS (default 1) and records a job's progress at
# most every MINQING_IMPORT_PROGRESS_SECONDS (default 1). A job whose worker died is run again
# until it has been started MINQING_IMPORT_ATTEMPTS times (default 2), then marked failed.
MINQING_IMPORT_DIR = Path(os.environ.get("MINQING_IMPORT_DIR", VAR_DIR / "imports"))
# The monthly situation reports (研判报告) that `generate_judgement_reports` writes from a timer:
# one PDF and one HTML file per area and month under MINQING_REPORT_DIR (default var/reports/
# judgement), named <area code>-<YYYY-MM>.pdf|html. A report already written is skipped.
MINQING_REPORT_DIR = Path(os.environ.get("MINQING_REPORT_DIR", VAR_DIR / "reports" / "judgement"))
# Months of cases a keyword library draft is replayed over unless the request says otherwise
# (default 12; at most 24).
MINQING_REPLAY_MONTHS = environment.integer("MINQING_REPLAY_MONTHS", "12")
MINQING_IMPORT_MAX_BYTES = environment.integer("MINQING_IMPORT_MAX_BYTES", str(1024**3))
MINQING_IMPORT_POLL_SECONDS = environment.number("MINQING_IMPORT_POLL_SECONDS", "1.0")
MINQING_IMPORT_PROGRESS_SECONDS = environment.number("MINQING_IMPORT_PROGRESS_SECONDS", "1.0")
MINQING_IMPORT_ATTEMPTS = environment.integer("MINQING_IMPORT_ATTEMPTS", "2")
# Exports built as files (GeoPackage, zipped Shapefile) are jobs run by the export worker
# (manage.py run_export_jobs, started by make run beside the server), never by a web worker:
# their files are kept under MINQING_EXPORT_DIR (default var/exports), one random folder per
# job, for MINQING_EXPORT_KEEP_HOURS after they are built (default 24). The worker looks for
# queued jobs every MINQING_EXPORT_POLL_SECONDS (default 1), reads and writes
# MINQING_EXPORT_BATCH rows at a time (default 20,000: its memory stays flat whatever the layer),
# and runs a job whose worker died again until it was started MINQING_EXPORT_ATTEMPTS times
# (default 2).
MINQING_EXPORT_DIR = Path(os.environ.get("MINQING_EXPORT_DIR", VAR_DIR / "exports"))
MINQING_EXPORT_KEEP_HOURS = environment.number("MINQING_EXPORT_KEEP_HOURS", "24")
MINQING_EXPORT_POLL_SECONDS = environment.number("MINQING_EXPORT_POLL_SECONDS", "1.0")
MINQING_EXPORT_BATCH = environment.integer("MINQING_EXPORT_BATCH", "20000")
MINQING_EXPORT_ATTEMPTS = environment.integer("MINQING_EXPORT_ATTEMPTS", "2")
# Features of each kind in an import's map preview at most (grids or boundaries, points, topology
# problems; half as many relinked rows); points beyond it are sampled evenly. Default 5,000.
MINQING_IMPORT_PREVIEW_FEATURES = environment.integer("MINQING_IMPORT_PREVIEW_FEATURES", "5000")

# The city the demo and the address matcher assume when a text names none: 12-digit code.
# Default 620100000000 (兰州市).
MINQING_CITY_CODE = os.environ.get("MINQING_CITY_CODE", "620100000000")

# Bounding box (lon_min, lat_min, lon_max, lat_max, WGS84 degrees) of the city; points outside
# are rejected by importers as "outside the city". Default: Lanzhou with a margin.
_LANZHOU = "102.3,35.5,104.6,37.3"
try:
    MINQING_CITY_BBOX = tuple(float(part) for part in os.environ.get("MINQING_CITY_BBOX", _LANZHOU).split(","))
except ValueError:
    MINQING_CITY_BBOX = ()
if (
    len(MINQING_CITY_BBOX) != 4
    or MINQING_CITY_BBOX[0] >= MINQING_CITY_BBOX[2]
    or MINQING_CITY_BBOX[1] >= MINQING_CITY_BBOX[3]
):
    environment.problem("MINQING_CITY_BBOX must be lon_min,lat_min,lon_max,lat_max with min < max")
    MINQING_CITY_BBOX = tuple(float(part) for part in _LANZHOU.split(","))

# The address matcher's index (layers/geocoding/index.py) is written here once per data version
# and opened memory-mapped by every process, so workers share it and a restarted worker does not
# rebuild it. About 0.4 GB per version at city scale (1.7 M addresses); older versions of the same
# database are removed when a new one is published. Default var/geocoder.
MINQING_GEOCODER_INDEX_DIR = Path(os.environ.get("MINQING_GEOCODER_INDEX_DIR", VAR_DIR / "geocoder"))

# A located point nearer than this to the edge of its small grid is flagged "ambiguous": given GPS
# and map-offset error it may belong to the neighbouring grid (metres). Default 30.
MINQING_LOCATE_AMBIGUOUS_M = environment.number("MINQING_LOCATE_AMBIGUOUS_M", "30")

# Duplicate reports: an event joins the case cluster of its category whose centre is within this
# distance (metres) of it and that was seen within the time window (hours) of it; otherwise it
# starts a new cluster. Defaults 100 m and 72 h.
MINQING_DUPLICATE_DISTANCE_M = environment.number("MINQING_DUPLICATE_DISTANCE_M", "100")
MINQING_DUPLICATE_WINDOW_HOURS = environment.number("MINQING_DUPLICATE_WINDOW_HOURS", "72")

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
MINQING_DATA_VERSION_SECONDS = environment.number("MINQING_DATA_VERSION_SECONDS", "1.0")

# Logs never carry credentials (an Open311 api_key in a logged URL): every record passes the
# redacting filter (mapserver/logs.py; uvicorn's access log too, scripts/uvicorn-logging.json).
# MINQING_LOG_FORMAT: "text" (default) or "json" (one JSON object per line, for a log shipper;
# scripts/serve.sh gives uvicorn's own logs the same form).
MINQING_LOG_FORMAT = environment.choice("MINQING_LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "mapserver.logs.RedactCredentials"}},
    "formatters": {"json": {"()": "mapserver.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact"],
            **({"formatter": "json"} if MINQING_LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# --- Durable intake -------------------------------------------------------------------------------
# How long an Idempotency-Key and its first answer are kept (hours): a retry with the same key
# within this time gets the first answer again. At least 24. Default 24.
# `manage.py purge_idempotency_keys` deletes older keys (run it daily from cron).
MINQING_IDEMPOTENCY_KEY_HOURS = environment.number("MINQING_IDEMPOTENCY_KEY_HOURS", "24", minimum=24, unit="hours")
# How long one process trusts its copy of the dispatch tables (keyword library, categories, SLA
# hours, the command center) before reading them again (seconds): an edit in the admin reaches
# intake within this time. 0 reads them for every event. Default 5.
MINQING_REFERENCE_SECONDS = environment.number("MINQING_REFERENCE_SECONDS", "5")
# Seconds a client is told to wait (Retry-After) before retrying after a 503 because the database
# could not be reached. Default 2.
MINQING_RETRY_AFTER_SECONDS = environment.integer("MINQING_RETRY_AFTER_SECONDS", "2", minimum=1)

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
        "OPTIONS": {"MAX_ENTRIES": environment.integer("MINQING_TILE_CACHE_ENTRIES", "20000")},
    },
}
# How long a cached tile is kept (seconds); 0 turns the tile cache off (benchmarks measure the
# SQL path that way). Default 3600. Staleness is bounded by the data version, not by this.
MINQING_TILE_CACHE_SECONDS = environment.integer("MINQING_TILE_CACHE_SECONDS", "3600")
# Browser cache lifetime of tiles (seconds): short for layers that change by the minute (those
# with filters, i.e. events), longer for reference layers. Defaults 60 and 3600.
MINQING_TILE_MAX_AGE_LIVE = environment.integer("MINQING_TILE_MAX_AGE_LIVE", "60")
MINQING_TILE_MAX_AGE_STATIC = environment.integer("MINQING_TILE_MAX_AGE_STATIC", "3600")
# How long a reader's role set (their group names) and data scope (layers/protection/scope.py) are remembered
# per process: a group, scope row or Grid.worker change reaches every surface within this many
# seconds. 0: read on every request.
MINQING_READER_ROLES_SECONDS = environment.number("MINQING_READER_ROLES_SECONDS", "5.0")
# Connections each process of the asynchronous tile server (mapserver/tileserver.py) keeps to
# PostgreSQL. Default 4.
MINQING_TILE_POOL_SIZE = environment.integer("MINQING_TILE_POOL_SIZE", "4")
# Longest a tile query may run before the tile server gives up with a 503 (seconds). Default 10.
MINQING_TILE_QUERY_SECONDS = environment.number("MINQING_TILE_QUERY_SECONDS", "10")
# Django requests one process of the ASGI entry point (mapserver/asgi.py) serves at once, each on a
# thread with its own database connection. Default 8.
MINQING_DJANGO_THREADS = environment.integer("MINQING_DJANGO_THREADS", "8")
# Django requests that may wait for a thread, per process, beyond those running; more at once are
# answered 503 with Retry-After at once instead of queueing without bound (mapserver/admission.py).
# Default 32.
MINQING_DJANGO_QUEUE = environment.integer("MINQING_DJANGO_QUEUE", "32")

# --- The grid worker's page (/grid/) --------------------------------------------------------------
# Uploaded files (event photos) live here; they are never served as public media, only through
# /api/grid/photos/<id> after the reader's scope is checked. Default var/media.
MEDIA_ROOT = Path(os.environ.get("MINQING_MEDIA_ROOT", VAR_DIR / "media"))
# Largest event photo accepted (bytes); a bigger one is refused with 413 before it is read.
# Default 10 MiB (10,485,760).
MINQING_PHOTO_MAX_BYTES = environment.integer("MINQING_PHOTO_MAX_BYTES", str(10 * 1024 * 1024))
# Worst GPS accuracy (metres, the fix's 68 % radius) accepted for a grid worker's report; a
# vaguer fix is refused and the worker asked to tap the map instead. Default 200.
MINQING_GPS_MAX_ACCURACY_M = environment.number("MINQING_GPS_MAX_ACCURACY_M", "200")

# --- The registry's own upkeep: tasks for grid workers (layers.services.registry_tasks) ----------
# Days after which a standard address no report matched and no worker confirmed is checked again.
# Default 365.
MINQING_REGISTRY_STALE_DAYS = environment.integer("MINQING_REGISTRY_STALE_DAYS", "365")
# Most open "not confirmed for a year" tasks per small grid at a time (the oldest first), so a
# grid of 500 households is asked a few a day, not all at once. Default 20.
MINQING_REGISTRY_STALE_TASKS_PER_GRID = environment.integer("MINQING_REGISTRY_STALE_TASKS_PER_GRID", "20")
# Days of reports whose unmatched or ambiguous address becomes a task. Default 90.
MINQING_REGISTRY_EVENT_DAYS = environment.integer("MINQING_REGISTRY_EVENT_DAYS", "90")
# A worker's correction that moves a point by at most this many metres, inside the same small grid,
# and keeps the road and door number, is applied at once; anything more waits for a data steward's
# approval, as do merges and new addresses. Default 30 (metres).
MINQING_REGISTRY_FREE_MOVE_M = environment.number("MINQING_REGISTRY_FREE_MOVE_M", "30")

# --- Security: audit log, personal data, hardening ------------------------------------------------
# See README "Security".
AUTHENTICATION_BACKENDS = ["mapserver.security.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]

# Where the audit log's chain head is kept outside the database (layers/protection/audit.py): appended by
# `manage.py anchor_audit_log` (run it from a timer, e.g. every 5 minutes) and by every successful
# `verify_audit_log`, which checks the log against every anchor here, so a truncated or rewritten
# log is found without an operator's --anchor. Keep it on another disk than the database and out
# of the database's backups. Empty: no anchors. Default var/audit/anchors.jsonl.
MINQING_AUDIT_ANCHOR_FILE = os.environ.get("MINQING_AUDIT_ANCHOR_FILE", str(VAR_DIR / "audit" / "anchors.jsonl"))

# Addresses (or networks, CIDR) of the reverse proxies in front of the site, comma-separated,
# e.g. "127.0.0.1" for nginx on the same host. Only a request whose connection comes from one of
# them has its X-Forwarded-For and X-Forwarded-Proto read (mapserver.security.ProxyHeadersMiddleware:
# the client is the right-most address in X-Forwarded-For that is not a proxy); from anyone else
# those headers are dropped, so they cannot be forged to dodge lockouts and rate limits or to
# fake HTTPS. The same client address serves the lockout, the rate limits and the audit log.
# Default: none (the connection's address is the client's).
MINQING_TRUSTED_PROXIES = [
    part.strip() for part in os.environ.get("MINQING_TRUSTED_PROXIES", "").split(",") if part.strip()
]
if any(part.isdigit() for part in MINQING_TRUSTED_PROXIES):
    environment.problem(
        "MINQING_TRUSTED_PROXIES lists the proxies' addresses or networks (e.g. 127.0.0.1 or 10.0.0.0/24), "
        f"not a count: got {','.join(MINQING_TRUSTED_PROXIES)!r}"
    )

# Login lockout (django-axes): this many failed logins for one username from one address within
# the cool-off locks that pair until the cool-off has passed since the last failure (429 with a
# message; `manage.py axes_reset_username <name>` unlocks at once). Defaults 5 failures, 15 minutes.
AXES_FAILURE_LIMIT = environment.integer("MINQING_LOGIN_FAILURE_LIMIT", "5")
AXES_COOLOFF_TIME = dt.timedelta(minutes=environment.number("MINQING_LOGIN_LOCKOUT_MINUTES", "15"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Failed logins from one address within the cool-off, over all usernames, that refuse every login
# from that address until the cool-off has passed (password spraying). Higher than the per-account
# limit: a command center's staff share one address behind NAT. Default 30.
MINQING_LOGIN_ADDRESS_FAILURE_LIMIT = environment.integer("MINQING_LOGIN_ADDRESS_FAILURE_LIMIT", "30")
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "mapserver.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "mapserver.security.client_ip"
# Successful logins are not logged by axes (the audit log records what matters); failures are.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

# Rate limits of the JSON API, Open311, OGC API and exports (DRF throttles; "N/s|min|hour|day"):
# per client address without a login ("anon"), per user ("user"), and per intake system (users in
# a group intake:<channel>, "intake"). Counted in the default cache, i.e. per process: with N
# worker processes a client may get up to N times the rate. Defaults 120/min, 1200/min, 60000/min.
MINQING_THROTTLE_RATES = {
    "anon": os.environ.get("MINQING_THROTTLE_ANON", "120/min"),
    "user": os.environ.get("MINQING_THROTTLE_USER", "1200/min"),
    "intake": os.environ.get("MINQING_THROTTLE_INTAKE", "60000/min"),
    # Residents' writes without an account (/report/: reports, photos, ratings), per client
    # address, on top of "anon". Default 30/hour: a few reports with their photos.
    "resident": os.environ.get("MINQING_THROTTLE_RESIDENT", "30/hour"),
    # OGC API item pages that continue a scan (the `next` link's `after`), per user, instead of
    # "user": a GIS client paging a whole layer at its own page size (GDAL's default is 10
    # features) must not be cut off mid-layer. Default 60000/min (a 27,735-event layer at 10 a page
    # is 2,774 pages); the first page of each scan still counts under "user".
    "ogc_paging": os.environ.get("MINQING_THROTTLE_OGC_PAGING", "60000/min"),
}
# OGC API items give numberMatched when the filtered rows can be counted up to this many (the
# count is kept per data version, scope and filters); above it numberMatched is left out, as
# counting would cost more than the page. Rows. Default 100000.
MINQING_OGC_COUNT_LIMIT = environment.integer("MINQING_OGC_COUNT_LIMIT", "100000")
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["mapserver.throttles.AnonymousRate", "mapserver.throttles.UserRate"]
# The throttles count by REMOTE_ADDR, which ProxyHeadersMiddleware has already set to the client.
REST_FRAMEWORK["NUM_PROXIES"] = 0

# Request sizes. Any body declared larger than MINQING_REQUEST_MAX_BYTES is refused (413) before
# it is read; it must stay above MINQING_PHOTO_MAX_BYTES. Default 20 MiB. Form and JSON bodies
# read whole into memory stop at DATA_UPLOAD_MAX_MEMORY_SIZE (413). Default 2.5 MiB.
MINQING_REQUEST_MAX_BYTES = environment.integer("MINQING_REQUEST_MAX_BYTES", str(20 * 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = environment.integer("MINQING_FORM_MAX_BYTES", str(2_621_440))
# Uploaded files above this size are spooled to a temporary file, not held in memory (bytes).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Most fields in one form or query string, and files in one multipart body.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 10
if MINQING_REQUEST_MAX_BYTES < MINQING_PHOTO_MAX_BYTES:
    environment.problem(
        f"MINQING_REQUEST_MAX_BYTES ({MINQING_REQUEST_MAX_BYTES}) must be at least MINQING_PHOTO_MAX_BYTES "
        f"({MINQING_PHOTO_MAX_BYTES})"
    )

# Archives the importers open (zipped Shapefiles, XLSX workbooks): refused, naming the file,
# when their members add up to more than MINQING_ARCHIVE_MAX_BYTES uncompressed (default 4 GiB),
# when one member of more than 1 MiB expands more than MINQING_ARCHIVE_MAX_RATIO times (a zip
# bomb; real Shapefiles and workbooks stay well under; default 200), when they hold more than
# MINQING_ARCHIVE_MAX_MEMBERS members (default 10,000), or when a member name is absolute or
# climbs out with "..".
MINQING_ARCHIVE_MAX_BYTES = environment.integer("MINQING_ARCHIVE_MAX_BYTES", str(4 * 1024**3))
MINQING_ARCHIVE_MAX_RATIO = environment.number("MINQING_ARCHIVE_MAX_RATIO", "200")
MINQING_ARCHIVE_MAX_MEMBERS = environment.integer("MINQING_ARCHIVE_MAX_MEMBERS", "10000")

# Security headers. Django's SecurityMiddleware sends nosniff, the Referrer-Policy and the
# Cross-Origin-Opener-Policy; XFrameOptionsMiddleware refuses framing; HSTS is set in prod.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The Content-Security-Policy of every response, directive → sources (mapserver/security.py adds
# the hosts of XYZ basemaps to img-src, and a per-response nonce to script-src for the one page
# that asks for it: django-leaflet's admin map widget). No inline script anywhere else: pages pass
# data with json_script or data- attributes. Styles may be inline (Leaflet, ECharts and the admin
# set style attributes).
MINQING_CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:", "blob:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "worker-src": ["'self'"],
    "manifest-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Browser features pages may use: location and camera for the grid worker's tablet, nothing else.
# Empty: no header.
MINQING_PERMISSIONS_POLICY = "geolocation=(self), camera=(self), microphone=(), payment=(), usb=()"

# Cookies: not readable by script (the session), sent on same-site navigation only. A session
# lasts a working shift (hours). Default 12. Production adds Secure (settings/prod.py).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(environment.number("MINQING_SESSION_HOURS", "12") * 3600)

# Most rows one export with personal fields may hold (exports with ?purpose= by a holder of
# layers.export_personal_data): narrow the filters beyond this. Default 50,000.
MINQING_PERSONAL_EXPORT_MAX_ROWS = environment.integer("MINQING_PERSONAL_EXPORT_MAX_ROWS", "50000")

# --- The residents' side (小兰帮办: /report/, /public/) ---------------------------------------------
# See README "Residents". Reports a resident may send with one phone number within the window
# (counted in the database across every server process; 429 beyond). Defaults 5 reports, 24 hours.
MINQING_RESIDENT_PHONE_REPORTS = environment.integer("MINQING_RESIDENT_PHONE_REPORTS", "5")
MINQING_RESIDENT_PHONE_WINDOW_HOURS = environment.number("MINQING_RESIDENT_PHONE_WINDOW_HOURS", "24")
# Longest description a resident may write (characters). Default 2,000.
MINQING_RESIDENT_DESCRIPTION_MAX = environment.integer("MINQING_RESIDENT_DESCRIPTION_MAX", "2000")
# Photos a resident may attach to one report, and for how long after sending it (hours). Each is
# checked like the grid worker's (JPEG/PNG/WebP, at most MINQING_PHOTO_MAX_BYTES). Defaults 3, 24.
MINQING_RESIDENT_PHOTOS = environment.integer("MINQING_RESIDENT_PHOTOS", "3")
MINQING_RESIDENT_PHOTO_HOURS = environment.number("MINQING_RESIDENT_PHOTO_HOURS", "24")
# Days after a resolution within which the resident may reopen the case as not solved. Default 7.
MINQING_RESIDENT_REOPEN_DAYS = environment.number("MINQING_RESIDENT_REOPEN_DAYS", "7")
# Whether the follow-up page names the grid worker who handles the case (their full name, else
# their username); otherwise it names the department, the level and the grid only. Default off.
MINQING_RESIDENT_SHOW_HANDLER_NAMES = os.environ.get("MINQING_RESIDENT_SHOW_HANDLER_NAMES", "") == "1"
# The public map's k-anonymity threshold: a count below it is never published on its own. A small
# grid with fewer cases is merged into its community, then its street, then the city's remainder
# (published as "fewer than k"); streets, categories and times follow the same rule. Default 5.
MINQING_PUBLIC_MIN_COUNT = environment.integer("MINQING_PUBLIC_MIN_COUNT", "5", minimum=2)
# Origins (scheme://host[:port]) that may embed the public map's embeddable view (/public/embed/)
# in a frame, comma-separated, e.g. the media center's site. Every other page refuses framing.
# Default: none (the embeddable view can then be framed by this site only).
MINQING_PUBLIC_EMBED_ORIGINS = [
    part.strip() for part in os.environ.get("MINQING_PUBLIC_EMBED_ORIGINS", "").split(",") if part.strip()
]
for _origin in MINQING_PUBLIC_EMBED_ORIGINS:
    if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", _origin):
        environment.problem(
            f"MINQING_PUBLIC_EMBED_ORIGINS lists origins such as https://news.example.cn, got {_origin!r}"
        )
# Origins (scheme://host[:port]) whose pages may call the API, the OGC API, Open311, exports and
# the tiles from a browser (CORS, mapserver/cors.py), comma-separated, e.g. the media center's
# MapLibre page or an analyst's notebook server. They authenticate with a token in the
# Authorization header (never cookies: credentials are not allowed cross-origin), and the
# preflight (OPTIONS) is answered for them. "*" allows any origin. Default: none.
MINQING_CORS_ORIGINS = [
    part.strip().rstrip("/") for part in os.environ.get("MINQING_CORS_ORIGINS", "").split(",") if part.strip()
]
for _origin in MINQING_CORS_ORIGINS:
    if _origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", _origin):
        environment.problem(f"MINQING_CORS_ORIGINS lists origins such as https://news.example.cn, got {_origin!r}")
# How long a browser may remember a CORS preflight's answer (seconds). Default 600.
MINQING_CORS_MAX_AGE = environment.integer("MINQING_CORS_MAX_AGE", "600")
# How long browsers and shared caches may keep the public map's answers and feeds (seconds).
# Default 60.
MINQING_PUBLIC_MAX_AGE = environment.integer("MINQING_PUBLIC_MAX_AGE", "60")

# Every problem found above, reported at once (settings/environment.py).
environment.check()
