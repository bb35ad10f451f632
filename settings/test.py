"""Tests: as development, with faster password hashing and warnings from our code as errors."""

from .dev import *  # noqa: F401,F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
