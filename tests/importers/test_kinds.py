"""The table of importers: every importer is in it once, under its kind, and every import
command finds its importer there (no import needed for its side effects)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import load_command_class

from importers.base import Importer
from importers.kinds import IMPORTERS

COMMANDS = sorted(
    path.stem for path in (Path(__file__).parents[2] / "importers/management/commands").glob("import_*.py")
)


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found)) if found else found


def test_every_importer_is_in_the_table_once_under_its_kind():
    concrete = {cls for cls in _subclasses(Importer) if cls.kind}
    assert {IMPORTERS[cls.kind] for cls in concrete} == concrete  # two of one kind would hide one
    assert sorted(IMPORTERS) == sorted(cls.kind for cls in concrete)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_import_command_finds_its_importer(name):
    command = load_command_class("importers", name)
    assert command.kind in IMPORTERS, name
