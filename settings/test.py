"""Tests: as development, with faster password hashing and warnings from our code as errors."""

from .dev import *  # noqa: F401,F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests that write and then read a layer expect the new data version at once.
MINQING_DATA_VERSION_SECONDS = 0.0
# Tests change a reader's groups and ask again at once.
MINQING_READER_ROLES_SECONDS = 0.0
