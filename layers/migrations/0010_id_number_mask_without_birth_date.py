"""The ID number mask keeps the region code and the check character only (layers.protection.personal):
the old mask kept the last four, which with an age or a birth date shown beside it rebuilt the
number. The new mask follows from the old one, so no value is decrypted."""

from django.db import migrations

REMASK = """
UPDATE layers_person
SET id_number_masked = left(id_number_masked, 6) || repeat('*', length(id_number_masked) - 7)
                       || right(id_number_masked, 1)
WHERE length(id_number_masked) >= 14 AND substr(id_number_masked, 7, 1) = '*'
  AND substr(id_number_masked, length(id_number_masked) - 3, 3) <> '***'
"""


class Migration(migrations.Migration):
    dependencies = [("layers", "0009_audit_log")]

    operations = [migrations.RunSQL(REMASK, migrations.RunSQL.noop)]
