"""Row checks shared by the importers, vectorised over a frame, each failing rows in a
:class:`~importers.rowchecks.RowChecks`."""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Model

from layers.geocoding.crs import to_wgs84

from .rowchecks import RowChecks
from .sources import ROW


def rename_aliases(frame: pd.DataFrame, aliases: dict[str, str]) -> pd.DataFrame:
    """Accept the Chinese headers of government exports as well as our English ones."""
    return frame.rename(columns={k: v for k, v in aliases.items() if k in frame.columns and v not in frame.columns})


def require_values(checks: RowChecks, *columns: str) -> None:
    for column in columns:
        checks.fail(checks.frame[column] == "", column, "required, but empty")


def max_lengths(checks: RowChecks, model: type[Model], fields: dict[str, str]) -> None:
    """Fail values longer than the model field behind their column (``fields``: column → field)
    allows; PostgreSQL would otherwise refuse the whole batch instead of the one row."""
    for column, field in fields.items():
        limit = model._meta.get_field(field).max_length
        checks.fail(checks.frame[column].str.len() > limit, column, f"longer than {limit} characters")


def unique_keys(checks: RowChecks, column: str) -> None:
    """Fail every repeat of a key after its first row, naming that first row."""
    keys = checks.frame[column]
    repeated = keys.duplicated(keep="first") & (keys != "")
    if repeated.any():
        first_row = checks.frame.loc[~keys.duplicated(keep="first")].set_index(column)[ROW]
        reasons = keys[repeated].map(lambda key: f"duplicate {column}, first seen on row {first_row[key]}")
        checks.fail(repeated, column, reasons.reindex(keys.index))


def check_coordinates(checks: RowChecks, *, optional: bool = False) -> None:
    """``lon``/``lat`` must be numbers inside the city; a pair that is inside only when swapped is
    reported as swapped. With ``optional`` a row with both blank passes (its point comes from
    elsewhere)."""
    frame = checks.frame
    considered = ~((frame["lon"] == "") & (frame["lat"] == "")) if optional else pd.Series(True, index=frame.index)
    # As float64: on Arrow-backed text, to_numeric gives NaN for "abc", and an Arrow NaN is not NA.
    lon = pd.to_numeric(frame["lon"], errors="coerce").astype("float64")
    lat = pd.to_numeric(frame["lat"], errors="coerce").astype("float64")
    checks.fail(considered & lon.isna(), "lon", "not a number")
    checks.fail(considered & lat.isna(), "lat", "not a number")
    lon_min, lat_min, lon_max, lat_max = settings.MINQING_CITY_BBOX
    inside = lon.between(lon_min, lon_max) & lat.between(lat_min, lat_max)
    swapped = lat.between(lon_min, lon_max) & lon.between(lat_min, lat_max)
    checks.fail(considered & swapped, "lon", "longitude and latitude look swapped")
    checks.fail(considered & ~inside, "lon", f"point is outside the city ({lon_min},{lat_min} – {lon_max},{lat_max})")


def in_wgs84(frame: pd.DataFrame, crs: str) -> pd.DataFrame:
    """``lon``/``lat`` as floats converted from ``crs`` to WGS84 (blanks become NaN)."""
    lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype=float)
    lon, lat = to_wgs84(lon, lat, crs)
    return frame.assign(lon=np.asarray(lon), lat=np.asarray(lat))
