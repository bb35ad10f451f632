"""Small named registry tables for the import tests, written into ``tmp_path`` by each test.

Points are named by where they fall in the grids of :func:`tests.worlds.factories.grid_tree` (the
community square south-west corner ``ORIGIN``, split at ``HALF`` into WEST and EAST small grids).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
from django.core.management import call_command

from layers.protection.checksums import credit_code_check_char, id_number_check_char
from tests.worlds.factories import ORIGIN, SIZE

HALF = ORIGIN[0] + SIZE / 2
#: (lon, lat) in WGS84, as strings the way a CSV holds them.
IN_WEST = (f"{ORIGIN[0] + SIZE / 4:.6f}", f"{ORIGIN[1] + SIZE / 2:.6f}")
IN_EAST = (f"{ORIGIN[0] + SIZE * 3 / 4:.6f}", f"{ORIGIN[1] + SIZE / 2:.6f}")
#: Inside the city box but in no grid.
NO_GRID = ("103.900000", "36.100000")

ADDRESS_HEADER = ["code", "lon", "lat", "road", "door_number", "full_text"]
PERSON_HEADER = ["name", "id_number", "residence", "phone", "care_tags", "address_code"]
UNIT_HEADER = ["credit_code", "name", "kind", "address_code", "lon", "lat"]


def id_number(first17: str) -> str:
    """A valid 18-character ID number from its first 17 digits."""
    return first17 + id_number_check_char(first17)


def credit_code(first17: str) -> str:
    """A valid unified social credit code from its first 17 characters."""
    return first17 + credit_code_check_char(first17)


#: Valid ID numbers: a woman born 1980-01-01 and a man born 1995-07-15 in 城关区.
ID_F = id_number("62010219800101002")
ID_M = id_number("62010219950715003")
CREDIT_A = credit_code("91620102MA7ABCDE0")
CREDIT_B = credit_code("12620102438000123")


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    pd.DataFrame(rows, columns=header).to_excel(path, index=False, engine="openpyxl")
    return path


def address_row(
    code: str, point: tuple[str, str] = IN_WEST, *, road: str = "庆阳路", door: str = "1号", full_text: str = ""
) -> list[str]:
    return [code, point[0], point[1], road, door, full_text]


def run_command(command: str, path: Path, *options: str) -> list[str]:
    """Run ``command`` on ``path`` with the rejection report in the file's folder; return its output lines."""
    out = io.StringIO()
    call_command(command, str(path), "--report", str(path.parent / "r.csv"), *options, stdout=out, verbosity=0)
    return out.getvalue().splitlines()


def rejection_csv(path: Path) -> list[list[str]]:
    """The rows of a rejection report, header included."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))
