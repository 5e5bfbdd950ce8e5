"""Indexes and statistics the fleet-wide device search needs; planner support only, no model state.

"GPUs not on vfio-pci" is the search operators run most, and its matches are rare while GPUs
are many. Compiled as (driver = d AND class_code in range) arms over the drivers that exist
(fleet.web.selectors.search), each arm is one probe of the (driver, class_code) index; the
extended statistics tell the planner that driver and class are correlated (GPUs are nearly all
on vfio-pci or nvidia), without which it estimates each arm as their independent product and
reads the whole table. `group:N` needs an index on group_number. Measured by bench/ui.py at
4.7 million devices: 3-5 s per query without these. They live here because only the search
needs them; they belong with the inventory's own indexes if that app takes them over.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("inventory", "0003_row_fingerprints")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS web_device_driver_class_idx ON inventory_device (driver, class_code)",
            "DROP INDEX IF EXISTS web_device_driver_class_idx",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS web_device_group_number_idx ON inventory_device (group_number)",
            "DROP INDEX IF EXISTS web_device_group_number_idx",
        ),
    ]
