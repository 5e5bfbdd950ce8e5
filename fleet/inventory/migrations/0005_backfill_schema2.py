"""Rows written before schema 2 was stored: holders' fds and claims, devices' cdevs, address spaces.

Until the host's next snapshot its stored state is what the policy re-evaluates (after an intent
change, or for stale hosts): without this, holders applied earlier would have no fds and so reach
nothing. Each host gets what `agent.upgrade.upgrade()` gives its schema 1 document, and the address
spaces the ownership model derives from that; fingerprints stay empty, so the next apply rewrites the
rows once and records no change.
"""
from django.db import migrations

from agent.ownership import ownership
from agent.upgrade import claims_from_v1, fds_from_nodes
from fleet.inventory.rows import ADDRESS_SPACES, ATTACHMENTS, address_space_rows, cdev_names


def backfill(apps, schema_editor):
    Host = apps.get_model("inventory", "Host")
    Holder = apps.get_model("inventory", "Holder")
    for host in Host.objects.filter(holders__isnull=False).distinct().iterator():
        if host.address_spaces.exists():
            continue  # applied since the upgrade
        cdevs = {f"/dev/vfio/devices/{c['name']}": c["device"] for c in host.vfio_cdevs or []
                 if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("device"), str)}
        uio = dict(host.vfio_nodes.filter(kind="uio", device_bdf__isnull=False).values_list("path", "device_bdf"))
        holders = list(Holder.objects.filter(host=host))
        for h in holders:
            h.fds = fds_from_nodes(h.nodes or [], cdevs, uio)
            h.claims = claims_from_v1({"kind": h.kind, "cmdline": h.cmdline or []}, None)
            h.devices = [c["device"] for c in h.claims]
            h.fingerprint = ""
        Holder.objects.bulk_update(holders, ["fds", "claims", "devices", "fingerprint"])
        state = {
            "host": {"kernel": host.kernel},
            "devices": [{"bdf": b, "driver": d, "is_bridge": br} for b, d, br in host.devices.values_list("bdf", "driver", "is_bridge")],
            "groups": [{"id": n, "devices": m} for n, m in host.groups.values_list("number", "member_bdfs")],
            "vfio": {"cdevs": host.vfio_cdevs or [], "nodes": [{"path": p, "kind": "uio", "device": b} for p, b in uio.items()]},
            "holders": [{"pid": h.pid, "fds": h.fds, "claims": h.claims, "vm": h.vm, "workload": h.workload,
                         "vm_pinned_kb": h.vm_pinned_kb, "vm_locked_kb": h.vm_locked_kb} for h in holders],
        }
        spaces, attachments = address_space_rows(ownership(state), {h["pid"]: h for h in state["holders"]})
        AddressSpace, Attachment = apps.get_model("inventory", "AddressSpace"), apps.get_model("inventory", "Attachment")
        AddressSpace.objects.bulk_create(AddressSpace(host=host, **ADDRESS_SPACES.values(row)) for row in spaces.values())
        Attachment.objects.bulk_create(Attachment(host=host, **ATTACHMENTS.values(row)) for row in attachments.values())
        for bdf, name in cdev_names({"vfio": {"cdevs": host.vfio_cdevs}}).items():
            host.devices.filter(bdf=bdf).update(cdev=name, fingerprint="")


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0004_address_spaces"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
