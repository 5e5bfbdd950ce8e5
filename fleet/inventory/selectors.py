"""Reads of the current state, in the snapshot's shape: other apps read inventory through these."""
from __future__ import annotations

from collections.abc import Iterable

from .models import Host
from .rows import KEYED_TABLES, PASID_USERS, TABLES, Table, state_from_rows


def table_rows(table: Table, **filters) -> list[tuple[int, dict]]:
    """(id, row) of the `table` rows matching `filters` (e.g. host=…, id__in=…), oldest first."""
    keys = ("id", *table.keys)
    return [(values[0], dict(zip(keys[1:], values[1:])))
            for values in table.model.objects.filter(**filters).order_by("id").values_list("id", *table.columns)]


def host_rows(host: Host) -> dict:
    """table name -> {key: row} of the host's current topology; `pasid_users` -> a list of rows."""
    rows: dict = {table.name: {row[table.key]: row for _, row in table_rows(table, host=host)} for table in KEYED_TABLES}
    rows["pasid_users"] = [row for _, row in table_rows(PASID_USERS, host=host)]
    return rows


def host_state(host: Host) -> dict:
    """The host's current state as a snapshot-shaped dict (docs/snapshot.md), rebuilt from the tables.

    The apply hands the state it just wrote to the policy sync itself (`services.StateReplaced.state`);
    every other caller reads the tables.
    """
    return state_from_rows(host, host_rows(host))


def host_states(hosts: Iterable[Host]) -> dict[int, dict]:
    """host pk -> `host_state(host)`, for many hosts with one query per table."""
    hosts = list(hosts)
    rows: dict[int, dict] = {h.pk: {**{t.name: {} for t in KEYED_TABLES}, "pasid_users": []} for h in hosts}
    for table in TABLES:
        queryset = table.model.objects.filter(host_id__in=list(rows)).order_by("id").values_list("host_id", *table.columns)
        for host_id, *values in queryset:
            row = dict(zip(table.keys, values))
            if table.key is None:
                rows[host_id][table.name].append(row)
            else:
                rows[host_id][table.name][row[table.key]] = row
    return {h.pk: state_from_rows(h, rows[h.pk]) for h in hosts}
