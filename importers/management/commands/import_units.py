"""``import_units PATH [--commit] [--strict] [--report CSV] [--encoding gbk] [--crs gcj02]``."""

from importers import registry  # noqa: F401  (registers the importer)
from importers.commands import TableImportCommand


class Command(TableImportCommand):
    help = "Import units from CSV or XLSX (UTF-8 or GBK); dry run unless --commit."
    kind = "units"
