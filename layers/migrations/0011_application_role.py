"""Least privilege for the served application (README "Database roles").

The owner (the role running migrations) keeps every table; the application's role
(``MINQING_DB_APP_ROLE``) may read and write rows of the tables that exist and of those later
migrations create (default privileges), but:

* the audit chain (``layers_auditentry``, ``layers_auditchainhead``) is written only by the
  database: the functions that chain a queued entry run as their owner (SECURITY DEFINER), so
  the application queues entries and reads the log and can do nothing else to it;
* the event transition log takes new rows only;
* the audit queue takes new rows only (the chaining trigger removes them, as the owner);
* the migration history is read-only.

TRUNCATE, ALTER and DROP need ownership, which the application's role never has, so no
session setting can open the audit log to it: the guard's TRUNCATE escape (for test flushes) is
now honoured only for the owner of the table.

When the application's role does not exist (a database where one role does everything), the
grants are skipped with a notice; production refuses to serve as a superuser (mapserver.asgi).
"""

from django.conf import settings
from django.db import migrations
from psycopg2 import sql

# Whoever runs this owns the schema's tables: the functions become the owner's.
DEFINER_SQL = """
ALTER FUNCTION layers_audit_append(bigint, text, text, text, jsonb) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION layers_audit_chain_pending() SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION layers_audit_append(bigint, text, text, text, jsonb) FROM PUBLIC;

-- The TRUNCATE escape: a session setting AND the table's owner (a test flush); never another role.
CREATE OR REPLACE FUNCTION layers_audit_truncate_allowed(p_table oid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT current_setting('minqing.audit_truncate', true) = 'on'
       AND pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = p_table), 'USAGE')
$$;

CREATE OR REPLACE FUNCTION layers_auditentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND layers_audit_truncate_allowed(TG_RELID) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE OR REPLACE FUNCTION layers_auditchainhead_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.seq = OLD.seq + 1 THEN
        RETURN NEW;
    END IF;
    -- (A second first writer's INSERT … ON CONFLICT DO NOTHING passes through here too.)
    IF TG_OP = 'INSERT' AND NEW.seq = 0 AND NEW.hash = repeat('0', 64) THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'TRUNCATE' AND layers_audit_truncate_allowed(TG_RELID) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'layers_auditchainhead only advances with the audit log: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""

GRANTS_SQL = """
GRANT USAGE ON SCHEMA public TO {app};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {app};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON layers_auditentry, layers_auditchainhead FROM {app};
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON layers_auditpending, layers_eventtransition FROM {app};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON django_migrations FROM {app};
"""


def grant_to_the_application(apps, schema_editor) -> None:
    role = settings.MINQING_DB_APP_ROLE
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            print(f"\n  notice: no database role {role!r}: the application's grants are skipped (see README)")
            return
        cursor.execute(sql.SQL(GRANTS_SQL).format(app=sql.Identifier(role)))


def revoke_from_the_application(apps, schema_editor) -> None:
    role = settings.MINQING_DB_APP_ROLE
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is not None:
            cursor.execute(
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {app}; "
                    "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {app}; "
                    "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app}; "
                    "REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app}"
                ).format(app=sql.Identifier(role))
            )


class Migration(migrations.Migration):
    dependencies = [("layers", "0010_id_number_mask_without_birth_date")]

    operations = [
        migrations.RunSQL(DEFINER_SQL, migrations.RunSQL.noop),
        migrations.RunPython(grant_to_the_application, revoke_from_the_application),
    ]
