"""PostgreSQL extended statistics on (driver, class_code); see 0001. Other databases have none to create."""
from django.db import migrations

STATISTICS = "web_device_driver_class_stats"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {STATISTICS} (mcv, dependencies) ON driver, class_code FROM inventory_device")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")


class Migration(migrations.Migration):
    dependencies = [("web", "0001_device_search_index")]

    operations = [migrations.RunPython(create, drop)]
