"""Every importer, under the kind its command (``import_<kind>``), the import jobs and the import
page name it by. A new importer is added here, and only here."""

from __future__ import annotations

from .base import Importer
from .boundaries import BoundariesImporter
from .divisions import DivisionsImporter
from .grids import GridImporter
from .hotline import HotlineImporter
from .registry import AddressImporter, PersonImporter, UnitImporter

IMPORTERS: dict[str, type[Importer]] = {
    importer.kind: importer
    for importer in (
        DivisionsImporter,
        BoundariesImporter,
        GridImporter,
        AddressImporter,
        PersonImporter,
        UnitImporter,
        HotlineImporter,
    )
}
