"""Reads of the current state, in the snapshot's shape: other apps read inventory through these."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from .models import AddressSpace, Attachment, Device, Host
from .rows import ADDRESS_SPACES, KEYED_TABLES, PASID_USERS, TABLES, Table, state_from_rows


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


def address_spaces(**filters) -> QuerySet[AddressSpace]:
    """Address spaces matching `filters` (e.g. host=…, backend=…), by host, holder and key, with their host."""
    return AddressSpace.objects.filter(**filters).select_related("host").order_by("host__hostname", "pid", "key")


def attachments_of(spaces: Iterable[AddressSpace]) -> dict[tuple[int, str], dict]:
    """(host id, space key) -> {"groups": [{group, certainty}], "devices": [{device, certainty}]}, one query.

    The shape of `agent.ownership.AddressSpace.as_dict()`."""
    spaces = list(spaces)
    out: dict[tuple[int, str], dict] = {(s.host_id, s.key): {"groups": [], "devices": []} for s in spaces}
    if not spaces:
        return out
    found = (Attachment.objects.filter(host_id__in={s.host_id for s in spaces}, space__in={s.key for s in spaces})
             .order_by("key").values_list("host_id", "space", "group_number", "device_bdf", "certainty"))
    for host_id, space, group, device, certainty in found:
        entry = out.get((host_id, space))
        if entry is None:
            continue  # a space of that key on another of the hosts
        if group is not None:
            entry["groups"].append({"group": group, "certainty": certainty})
        elif device is not None:
            entry["devices"].append({"device": device, "certainty": certainty})
    return out


def host_address_spaces(host: Host) -> list[dict]:
    """The host's address spaces as rows (the ownership model's field names) with their `groups` and `devices`."""
    spaces = list(AddressSpace.objects.filter(host=host).order_by("pid", "key"))
    attached = attachments_of(spaces)
    return [{**ADDRESS_SPACES.values_row(s), **attached[(s.host_id, s.key)]} for s in spaces]


def shared_spaces() -> QuerySet[AddressSpace]:
    """Address spaces that are shared (docs/endpoints.md, `as:shared`): mapping more than one device, or more
    than one group, or a device whose owner (the holder the ownership model gives it to) is another VM."""
    devices = (Attachment.objects.filter(host_id=OuterRef("host_id"), space=OuterRef("key"), device_bdf__isnull=False)
               .order_by().values("space").annotate(n=Count("id")).values("n"))
    groups = (Attachment.objects.filter(host_id=OuterRef("host_id"), space=OuterRef("key"), group_number__isnull=False)
              .order_by().values("space").annotate(n=Count("id")).values("n"))
    foreign = Attachment.objects.filter(
        host_id=OuterRef("host_id"), space=OuterRef("key"), device_bdf__isnull=False,
        device_bdf__in=Device.objects.filter(host_id=OuterRef(OuterRef("host_id")), owner_vm__isnull=False)
        .exclude(owner_vm=OuterRef(OuterRef("vm"))).values("bdf"))
    return AddressSpace.objects.annotate(n_devices=Subquery(devices), n_groups=Subquery(groups)).filter(
        Q(n_devices__gt=1) | Q(n_groups__gt=1) | (Q(vm__isnull=False) & Exists(foreign)))
