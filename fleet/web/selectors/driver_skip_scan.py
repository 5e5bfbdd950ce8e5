"""'class C and driver not in X' on PostgreSQL as index probes per driver name, in SQL of fixed size.

GPUs are many and GPUs off vfio-pci are few: NOT IN alone makes PostgreSQL read every device of the
class (1.5 million devices, bench/ui.py's fleet at 3,000 hosts: ~900 ms). Probing the
(driver, class_code) index once per driver name that exists finds them in ~5 ms. The names come from a loose index scan and go to the statement as
one array parameter per class range (driver = ANY(%s)), so the SQL does not grow with them, unlike the
per-name OR arms this replaces (3,000 names took 4.6 GB to plan). Past MAX_DRIVER_NAMES names (a
flood: bench/hostile_search.py) or MAX_RANGES class ranges the caller uses the plain NOT IN instead:
slower on a big fleet, never unbounded.
"""
from __future__ import annotations

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from fleet.inventory.models import Device

MAX_DRIVER_NAMES = 1_000  # a real fleet has a few hundred; probing 10,000 flooded names took seconds
MAX_RANGES = 4  # class:gpu is 3 ranges; each carries the names array once


def driver_names() -> list[str] | None:
    """Every distinct driver name by a loose index scan (one probe per name), or None past MAX_DRIVER_NAMES."""
    limit = MAX_DRIVER_NAMES
    table = connection.ops.quote_name(Device._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"WITH RECURSIVE t(d) AS (SELECT min(driver) FROM {table} "
            f"UNION ALL SELECT (SELECT min(driver) FROM {table} WHERE driver > t.d) FROM t WHERE t.d IS NOT NULL) "
            "SELECT d FROM t WHERE d IS NOT NULL LIMIT %s", [limit + 1])
        names = [row[0] for row in cur.fetchall()]
    return names if len(names) <= limit else None


def class_without_drivers(ranges: list[Q], excluded: list[str], *, unbound: bool) -> Q | None:
    """class in one of `ranges` (each a class_code range Q) and driver none of `excluded` (unbound devices
    included when `unbound`), or None when this plan does not apply (the caller then excludes)."""
    if connection.vendor != "postgresql" or len(ranges) > MAX_RANGES:
        return None
    names = driver_names()
    if names is None:
        return None
    kept = [n for n in names if n not in set(excluded)]
    column = f"{connection.ops.quote_name(Device._meta.db_table)}.{connection.ops.quote_name('driver')}"
    named = RawSQL(f"{column} = ANY(%s)", [kept], output_field=BooleanField())
    q = Q(pk__in=[])
    for in_class in ranges:
        q |= Q(named) & in_class
        if unbound:
            q |= Q(driver__isnull=True) & in_class
    return q
