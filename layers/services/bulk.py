"""COPY pipelines: frames into temporary staging tables, in batches.

Loading goes COPY → temporary (unlogged) staging table → one ``INSERT … SELECT`` that computes
geometry, links and keys on the way in; an UPDATE over the loaded table afterwards would cost
several times the load itself (reference/performance-anchors.md §7).

Nothing here takes a lock stronger than a row's: the map wall, the tablets and the geocoder read
the tables while a city is imported. Dropping a table's indexes for a big load and building them
again after would be faster, but inside the import's transaction that holds an ACCESS EXCLUSIVE
lock until the commit: a plain read by id would wait for the whole import.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
import pyarrow as pa
from django.conf import settings
from django.db import connection
from pyarrow import csv as pa_csv


def create_staging(name: str, columns: dict[str, str]) -> None:
    """A temporary table dropped at commit or rollback; ``columns`` maps name → SQL type."""
    body = ", ".join(f"{column} {sql_type}" for column, sql_type in columns.items())
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TEMPORARY TABLE {name} ({body}) ON COMMIT DROP")


def copy_frame(
    name: str, frame: pd.DataFrame, columns: dict[str, str], *, on_batch: Callable[[int], None] | None = None
) -> None:
    """COPY ``frame[columns]`` into staging table ``name`` in batches of MINQING_IMPORT_BATCH_ROWS.

    Text columns keep '' as '' (FORCE_NOT_NULL); blanks in other columns become NULL.
    """
    names = list(columns)
    text_columns = [c for c, sql_type in columns.items() if sql_type == "text"]
    force = f", FORCE_NOT_NULL ({', '.join(text_columns)})" if text_columns else ""
    statement = f"COPY {name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv{force})"
    batch = settings.MINQING_IMPORT_BATCH_ROWS
    with connection.cursor() as cursor:
        for start in range(0, len(frame), batch):
            chunk = frame.iloc[start : start + batch]
            buffer = io.BytesIO()
            # Arrow's CSV writer is ~5× pandas' to_csv; NaN and None become empty (NULL) fields.
            table = pa.Table.from_pandas(chunk[names], preserve_index=False)
            pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
            if on_batch:
                on_batch(len(chunk))


def analyze(name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {name}")


def execute(sql: str, params: list | tuple | dict | None = None) -> int:
    """Run one statement; return its row count."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def fetch(sql: str, params: list | tuple | dict | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
