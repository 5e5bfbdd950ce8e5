"""Model instances from the rows of prebuilt SQL, without RawQuerySet's per-query work.

`Model.objects.raw()` maps the cursor's columns onto fields and looks up every column's
converters again on each query (~0.3 ms a statement). The hot statements of the snapshot apply
never change, so that is done once per (model, database vendor) here; the instances are the ones
`raw()` builds (`Model.from_db`, converters applied: JSON decoded, SQLite booleans and datetimes).
"""
from __future__ import annotations

from functools import lru_cache

from django.db import connection
from django.db.models.sql import Query


@lru_cache(maxsize=None)
def _plan(model, vendor: str) -> tuple[list[str], list[tuple[int, list, object]]]:
    fields = model._meta.concrete_fields
    compiler = connection.ops.compiler("SQLCompiler")(Query(model), connection, None)
    converters = compiler.get_converters([f.get_col(model._meta.db_table) for f in fields])
    return [f.attname for f in fields], [(pos, convs, col) for pos, (convs, col) in converters.items()]


def model_columns(model, alias: str = "") -> str:
    """The model's concrete columns in field order, quoted (and prefixed with `alias.`): the SELECT list `fetch_models` expects."""
    q = connection.ops.quote_name
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + q(f.column) for f in model._meta.concrete_fields)


def fetch_models(model, sql: str, params, extra: tuple[str, ...] = ()) -> list:
    """Run `sql`, whose columns are `model_columns(model)` then one per name in `extra`; one instance per row.

    The `extra` columns become attributes of the instances (as `raw()` sets annotations).
    """
    names, converters = _plan(model, connection.vendor)
    width = len(names)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    out = []
    for row in rows:
        values = list(row[:width])
        for pos, convs, col in converters:
            value = values[pos]
            for convert in convs:
                value = convert(value, col, connection)
            values[pos] = value
        instance = model.from_db(connection.alias, names, values)
        for name, value in zip(extra, row[width:]):
            setattr(instance, name, value)
        out.append(instance)
    return out
