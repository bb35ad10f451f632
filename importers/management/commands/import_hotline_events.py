"""``import_hotline_events PATH [--commit] [--strict] [--report CSV] [--encoding gbk] [--crs gcj02]``."""

from importers import hotline  # noqa: F401  (registers the importer)
from importers.commands import TableImportCommand


class Command(TableImportCommand):
    help = (
        "Import a 12345-hotline export (CSV or XLSX, Chinese headers) as events on the hotline channel; "
        "dry run unless --commit. Re-importing a file adds nothing (tickets already stored count as existing)."
    )
    kind = "hotline_events"
