"""Row checks shared by the importers: vectorised over a frame, each rejecting into a report."""

from __future__ import annotations

import pandas as pd
from django.conf import settings

from layers.crs import to_wgs84

from .report import ImportReport
from .sources import ROW


def rename_aliases(frame: pd.DataFrame, aliases: dict[str, str]) -> pd.DataFrame:
    """Accept the Chinese headers of government exports as well as our English ones."""
    return frame.rename(columns={k: v for k, v in aliases.items() if k in frame.columns and v not in frame.columns})


def require_values(frame: pd.DataFrame, report: ImportReport, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame = report.reject_where(frame, frame[column] == "", column, "required, but empty")
    return frame


def unique_keys(frame: pd.DataFrame, report: ImportReport, column: str) -> pd.DataFrame:
    """Reject every repeat of a key after its first row, naming that first row."""
    repeated = frame[column].duplicated(keep="first") & (frame[column] != "")
    if repeated.any():
        first_row = frame.drop_duplicates(column, keep="first").set_index(column)[ROW]
        for row, value in zip(frame.loc[repeated, ROW], frame.loc[repeated, column], strict=True):
            report.reject(row, column, value, f"duplicate {column}, first seen on row {first_row[value]}")
    return frame.loc[~repeated]


def coordinates(frame: pd.DataFrame, report: ImportReport, *, crs: str = "wgs84", optional: bool = False) -> pd.DataFrame:
    """Parse ``lon``/``lat``, convert them from ``crs`` to WGS84 and keep those inside the city.

    With ``optional`` rows without any coordinates pass (their point comes from elsewhere).
    A pair that lands in the city only when swapped is reported as swapped.
    """
    frame = frame.copy()
    blank = (frame["lon"] == "") & (frame["lat"] == "")
    if optional:
        located = frame.loc[~blank]
    else:
        located = frame
    for column in ("lon", "lat"):
        numbers = pd.to_numeric(located[column], errors="coerce")
        located = report.reject_where(located, numbers.isna(), column, "not a number")
    lon = located["lon"].astype(float).to_numpy()
    lat = located["lat"].astype(float).to_numpy()
    lon_min, lat_min, lon_max, lat_max = settings.MINQING_CITY_BBOX
    inside = (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)
    swapped = ~inside & (lat >= lon_min) & (lat <= lon_max) & (lon >= lat_min) & (lon <= lat_max)
    located = report.reject_where(located, swapped, "lon", "longitude and latitude look swapped")
    keep = ~swapped
    outside = ~inside[keep]
    located = report.reject_where(
        located, outside, "lon", f"point is outside the city ({lon_min},{lat_min} – {lon_max},{lat_max})"
    )
    lon, lat = to_wgs84(located["lon"].astype(float).to_numpy(), located["lat"].astype(float).to_numpy(), crs)
    located = located.assign(lon=lon, lat=lat)
    if optional:
        unlocated = frame.loc[blank].assign(lon=float("nan"), lat=float("nan"))
        return pd.concat([located, unlocated]).sort_values(ROW)
    return located
