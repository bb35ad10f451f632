"""Tests: as development, with faster password hashing and warnings from our code as errors."""

from .dev import *  # noqa: F401,F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests that write and then read a layer expect the new data version at once.
MINQING_DATA_VERSION_SECONDS = 0.0
# Tests change a reader's groups and ask again at once.
MINQING_READER_ROLES_SECONDS = 0.0

# --- audit log ------------------------------------------------------------------------------------
# The audit log refuses TRUNCATE unless the session sets minqing.audit_truncate (migration
# 0009_audit_log); test connections do, so that transactional tests can flush the database.
_db_options = DATABASES["default"].setdefault("OPTIONS", {})  # noqa: F405
_db_options["options"] = f"{_db_options.get('options', '')} -c minqing.audit_truncate=on".strip()
# Every test flushes the log it wrote, so anchors would only carry one test's head into the next:
# the tests that check anchors give a file of their own.
MINQING_AUDIT_ANCHOR_FILE = ""

# Rate limits high enough that no test trips them by accident (the throttle tests set low ones).
MINQING_THROTTLE_RATES = {
    "anon": "100000/min",
    "user": "100000/min",
    "intake": "100000/min",
    "resident": "100000/min",
    "ogc_paging": "100000/min",
}

# --- durable intake -------------------------------------------------------------------------------
# Tests edit keyword rules, categories and SLA hours and dispatch at once.
MINQING_REFERENCE_SECONDS = 0.0
