"""COPY pipelines: frames into temporary staging tables, in batches.

Loading goes COPY → temporary (unlogged) staging table → one ``INSERT … SELECT`` that computes
geometry, links and keys on the way in; an UPDATE over the loaded table afterwards would cost
several times the load itself (reference/performance-anchors.md §7).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import contextmanager

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


@contextmanager
def indexes_deferred(table: str, *, incoming_rows: int):
    """Around a load that adds at least a fifth of ``table`` (and 50,000 rows), drop its secondary
    indexes and build them again afterwards.

    One sorted build per index is several times cheaper than updating every index row by row,
    which is most of the cost of a big INSERT into a well-indexed table. Primary keys and the
    indexes behind constraints stay (ON CONFLICT needs them). This runs inside the import's
    transaction, so a rollback restores the indexes; readers of ``table`` wait until it commits.
    """
    current = fetch("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass", [table])[0][0]
    if incoming_rows < max(50_000, current // 5):
        yield
        return
    definitions = fetch(
        """SELECT i.indexname, i.indexdef FROM pg_indexes i
           WHERE i.schemaname = current_schema() AND i.tablename = %s
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%%I', i.indexname)::regclass)""",
        [table],
    )
    for name, _ in definitions:
        execute(f'DROP INDEX "{name}"')
    yield
    # Django's foreign keys are deferred; their pending checks must run before an index build.
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    execute("SET LOCAL maintenance_work_mem = '512MB'")
    for _, definition in definitions:
        execute(definition)
    execute("SET CONSTRAINTS ALL DEFERRED")
