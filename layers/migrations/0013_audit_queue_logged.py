"""The audit queue is an ordinary (logged) table. It was UNLOGGED, which skipped writing its rows
to the WAL: but unlogged tables and their sequences are not replicated, and on a promoted replica
the queue's sequence read as garbage ("bad magic number"), so every write that queued an audit
entry failed after a failover (found by the failover drill, scripts/stack/drill.py). The queue's
rows live only inside the transaction that writes them, so logging them costs little."""

from django.db import migrations

LOGGED = """
ALTER TABLE layers_auditpending SET LOGGED;
ALTER SEQUENCE layers_auditpending_id_seq SET LOGGED;
"""
UNLOGGED = """
ALTER SEQUENCE layers_auditpending_id_seq SET UNLOGGED;
ALTER TABLE layers_auditpending SET UNLOGGED;
"""


class Migration(migrations.Migration):
    dependencies = [("layers", "0012_description_personal_data")]

    operations = [migrations.RunSQL(LOGGED, UNLOGGED)]
