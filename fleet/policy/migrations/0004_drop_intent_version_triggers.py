"""The intent version token is bumped by the intent services now (`services.intent.intent_version_bump`),
not by per-vendor triggers on the five intent tables: drop them (and PostgreSQL's trigger function)."""
from django.db import migrations

INTENT_TABLES = ("policy_intentsettings", "policy_tenant", "policy_hostrole", "policy_deviceexpectation", "policy_groupbaseline")


def _drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in INTENT_TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_version ON {table}")
        elif vendor == "sqlite":
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_version_{event}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS policy_intent_version_bump()")


class Migration(migrations.Migration):

    dependencies = [
        ("policy", "0003_intent_version"),
    ]

    # Going back to 0003 leaves the intent without triggers: the services still bump the token.
    operations = [migrations.RunPython(_drop_triggers, migrations.RunPython.noop)]
