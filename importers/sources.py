"""The one module that opens input files.

Tables (CSV, XLSX) become pandas frames of strings with the file's own row numbers; vector
files (GeoJSON, Shapefile, GeoPackage) become GeoDataFrames in the CRS they declare. Everything
downstream takes frames, never paths. Problems with a whole file raise :class:`SourceError`
naming the file. Archives (zipped Shapefiles, XLSX workbooks) are checked before they are opened
(:func:`check_archive`: no zip bombs, no member names that climb out).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
from django.conf import settings
from pyarrow import compute as pa_compute
from pyarrow import csv as pa_csv

#: Column holding the 1-based row number in the source file (the header is row 1).
ROW = "_row"

#: Encodings tried in order when none is given. GB18030 is the superset of GBK/GB2312 that
#: Chinese government exports use; UTF-8 with a BOM is what Excel writes.
ENCODINGS = ("utf-8-sig", "gb18030")


class SourceError(Exception):
    """A whole file cannot be used: unreadable, wrong encoding, empty, missing columns."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{Path(path).name}: {message}")
        self.path = Path(path)
        self.message = message


def check_encoding(encoding: str | None) -> str | None:
    """An encoding named on the command line, checked before any file is read."""
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError as error:
            raise ValueError(f"--encoding: unknown encoding {encoding!r}") from error
    return encoding


def read_table(path: Path | str, *, encoding: str | None = None, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV or XLSX file into a frame of stripped strings ('' for blanks) plus :data:`ROW`."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        frame = _read_xlsx(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        frame = _read_csv(path, encoding)
    else:
        raise SourceError(path, f"unsupported table format {suffix or '(none)'}; expected .csv or .xlsx")
    if frame.empty:
        raise SourceError(path, "the file has a header but no data rows")
    return require_columns(path, frame, required)


def require_columns(path: Path | str, frame: pd.DataFrame, required: tuple[str, ...]) -> pd.DataFrame:
    """Raise :class:`SourceError` naming the columns of ``required`` the frame lacks."""
    missing = [column for column in required if column not in frame.columns]
    if missing:
        header = ", ".join(c for c in frame.columns if c != ROW)
        raise SourceError(path, f"missing column(s) {', '.join(missing)}; the header has {header}")
    return frame


def _decode(path: Path, raw: bytes, encoding: str | None) -> str:
    candidates = (encoding,) if encoding else ENCODINGS
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except UnicodeDecodeError as error:
            last = error
        except LookupError as error:
            raise SourceError(path, f"unknown encoding {encoding!r}") from error
    line = raw[: last.start].count(b"\n") + 1
    tried = " or ".join(candidates)
    raise SourceError(
        path, f"line {line}: bytes are not valid {tried}; re-save the file as UTF-8 or GBK or pass --encoding"
    )


def _read_csv(path: Path, encoding: str | None) -> pd.DataFrame:
    raw = path.read_bytes()
    if not raw.strip():
        raise SourceError(path, "the file is empty")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise SourceError(path, "the file is UTF-16; re-save it as UTF-8 or GBK")
    text = _decode(path, raw, encoding)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=delimiter), [])
    # Arrow's multi-threaded C++ reader, every column as text, is several times pandas' parser on
    # a million rows. The columns come back as plain Python strings so that missing values behave
    # as everywhere else in pandas (None compares unequal), not as Arrow's propagating nulls.
    bad_line: list = []

    def on_invalid_row(row) -> str:
        bad_line.append(row)
        return "error"

    try:
        table = pa_csv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            # Blank lines are kept (as empty rows, dropped in _tidy) so row numbers stay those of the file.
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, invalid_row_handler=on_invalid_row, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        if bad_line:
            row = bad_line[0]
            # Reading on several threads, Arrow does not know the line; find it on this slow path.
            line = row.number or _first_ragged_line(text, delimiter, row.expected_columns)
            raise SourceError(
                path, f"line {line}: expected {row.expected_columns} fields, found {row.actual_columns}"
            ) from error
        if "Empty CSV file" in str(error):
            raise SourceError(path, "the file is empty") from error
        raise SourceError(path, f"not a well-formed CSV ({error})") from error
    # Trimmed in Arrow's C++ kernels: pandas' per-cell strip costs seconds on a million rows.
    trimmed = pa.table([pa_compute.utf8_trim_whitespace(column) for column in table.columns], names=table.column_names)
    return _tidy(path, trimmed.to_pandas(), trimmed=True)


def _first_ragged_line(text: str, delimiter: str, expected: int) -> int | None:
    """The file line of the first record whose field count is not ``expected``."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for record in reader:
        if record and len(record) != expected:
            return reader.line_num
    return None


def _read_xlsx(path: Path) -> pd.DataFrame:
    if zipfile.is_zipfile(path):  # a workbook is a zip archive; anything else fails just below
        check_archive(path)
    try:
        frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
    except Exception as error:  # openpyxl raises many types for a damaged workbook
        raise SourceError(path, f"not a readable XLSX workbook ({type(error).__name__}: {error})") from error
    return _tidy(path, frame)


def _tidy(path: Path, frame: pd.DataFrame, *, trimmed: bool = False) -> pd.DataFrame:
    frame.columns = [str(column).strip().lstrip("\ufeff") for column in frame.columns]
    duplicated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if duplicated:
        raise SourceError(path, f"duplicate column(s) {', '.join(duplicated)} in the header")
    if not trimmed:
        frame = frame.apply(lambda column: column.str.strip())
    frame[ROW] = range(2, len(frame) + 2)
    # Numbered first, then dropped: rows with no value at all (blank lines, emptied spreadsheet
    # rows) hold nothing to import or reject.
    frame = frame.loc[(frame.drop(columns=ROW) != "").any(axis=1)]
    return frame.reset_index(drop=True)


def read_features(path: Path | str, *, layer: str | None = None, assume_crs: str | None = None):
    """Read a vector file into a GeoDataFrame with :data:`ROW` numbering features from 1.

    The CRS is the one the file declares; a file that declares none needs ``assume_crs``
    (GeoJSON is WGS84 by RFC 7946, so it never does).
    """
    import geopandas as gpd
    import pyogrio
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    path = Path(path)
    if not path.exists():
        raise SourceError(path, "no such file")
    if path.stat().st_size == 0:
        raise SourceError(path, "the file is empty")
    if path.suffix.lower() == ".zip":
        check_archive(path)
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio")
    except pyogrio.errors.DataSourceError as error:
        raise SourceError(path, f"not a readable GeoJSON, Shapefile or GeoPackage ({error})") from error
    except pyogrio.errors.DataLayerError as error:
        raise SourceError(path, f"cannot read layer {layer!r} ({error})") from error
    if frame.empty:
        raise SourceError(path, "the file has no features")
    if frame.crs is None:
        if path.suffix.lower() in (".geojson", ".json"):
            frame = frame.set_crs(4326)
        elif assume_crs:
            frame = frame.set_crs(assume_crs)
        else:
            raise SourceError(path, "the file declares no CRS; pass --source-crs (for example EPSG:4490)")
    try:
        CRS.from_user_input(frame.crs).to_epsg()
    except CRSError as error:
        raise SourceError(path, f"unknown CRS {frame.crs} ({error})") from error
    frame[ROW] = range(1, len(frame) + 1)
    return frame


# --- archives -------------------------------------------------------------------------------------

#: Members at most this large (bytes) are not judged by their compression ratio: tiny text files
#: compress far better than data and harm nobody.
RATIO_FLOOR_BYTES = 1024 * 1024
_DRIVE = re.compile(r"[A-Za-z]:")


def _member_escapes(name: str) -> bool:
    """Whether a member name is absolute or climbs out of the folder it is unpacked into.

    >>> names = ("grids/a.shp", "../a.shp", "/etc/passwd", "a/../../b", "C:/x.shp", "a\\\\..\\\\..\\\\b", "a..b.shp")
    >>> [_member_escapes(name) for name in names]
    [False, True, True, True, True, True, False]
    """
    parts = name.replace("\\", "/")
    if parts.startswith("/") or _DRIVE.match(parts):
        return True
    depth = 0
    for part in parts.split("/"):
        depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
        if depth < 0:
            return True
    return False


def check_archive(path: Path | str) -> None:
    """Refuse, naming the file, a zip archive (a zipped Shapefile, an XLSX workbook) that is not
    safe to open: a member name that is absolute or climbs out with "..", more than
    ``MINQING_ARCHIVE_MAX_MEMBERS`` members, more than ``MINQING_ARCHIVE_MAX_BYTES`` once
    uncompressed, or a member over 1 MiB that expands more than ``MINQING_ARCHIVE_MAX_RATIO``
    times (a zip bomb). Judged from the archive's directory, before anything is unpacked; the
    readers then stop at each member's declared size (Python's zipfile and GDAL's /vsizip/ check
    it), so a directory that lies does not get past them either."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise SourceError(path, f"not a readable zip archive ({error})") from error
    most = settings.MINQING_ARCHIVE_MAX_MEMBERS
    if len(members) > most:
        raise SourceError(path, f"the archive holds {len(members):,} members; at most {most:,} are accepted")
    ratio, total = settings.MINQING_ARCHIVE_MAX_RATIO, 0
    for member in members:
        if _member_escapes(member.filename):
            raise SourceError(
                path, f"member {member.filename[:100]!r} has an absolute path or climbs out with '..'; refused"
            )
        total += member.file_size
        if member.file_size > RATIO_FLOOR_BYTES and member.file_size > ratio * max(member.compress_size, 1):
            raise SourceError(
                path,
                f"member {member.filename[:100]!r} expands from {member.compress_size:,} to {member.file_size:,} "
                f"bytes (more than {ratio:g} times): refused as a possible zip bomb",
            )
    limit = settings.MINQING_ARCHIVE_MAX_BYTES
    if total > limit:
        raise SourceError(path, f"the archive expands to {total:,} bytes; at most {limit:,} are accepted")


# --- uploads and job outputs ----------------------------------------------------------------------


def store_upload(chunks, path: Path) -> str:
    """Write an upload's chunks to ``path`` (a new file); return the SHA-256 of its bytes."""
    import hashlib

    digest = hashlib.sha256()
    with Path(path).open("xb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def write_json(path: Path, value: object) -> None:
    Path(path).write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


def open_output(path: Path):
    """A job's output file (rejection report, map preview) opened for sending."""
    return Path(path).open("rb")
