"""Every project setting the code reads is defined (and so commented) in settings/base.py: the
test settings may override one, but must not be the only place it exists (a setting missing from
base made `manage.py verify_audit_log` fail outside the tests)."""

from __future__ import annotations

import re
from pathlib import Path

from settings import base

ROOT = Path(__file__).resolve().parents[1]
READ = re.compile(r"settings\.(MINQING_[A-Z0-9_]+)")


def test_every_setting_the_code_reads_is_defined_in_base():
    read = set()
    for package in ("layers", "mapserver", "importers", "basemaps", "scripts"):
        for path in (ROOT / package).rglob("*.py"):
            read |= set(READ.findall(path.read_text(encoding="utf-8")))
    assert len(read) > 30  # the scan finds the code's settings
    missing = sorted(name for name in read if not hasattr(base, name))
    assert missing == []
