"""Development: the project-local cluster, debug pages, a fixed development key."""

from .base import *  # noqa: F401,F403
from .base import MINQING_PERSONAL_DATA_KEY as _KEY

DEBUG = True
SECRET_KEY = "dev-only-secret-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
# A fixed development key keeps the demo's encrypted personal data readable across runs.
MINQING_PERSONAL_DATA_KEY = _KEY or "ZGV2LW9ubHkta2V5LWZvci1taW5xaW5nLW1hcC0wMDA="
