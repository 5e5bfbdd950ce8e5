"""A host's I/O address spaces for its drawing: each VFIO container and iommufd context with what it maps.

Read from the inventory's AddressSpace and Attachment rows (the ownership model's output, stored at
apply time); an attachment's certainty is passed through as stored, and a space whose attachments the
kernel does not show keeps `attachment_known: false` with no attachment rather than a guessed one.
"""
from __future__ import annotations

from fleet.inventory.models import AddressSpace, Attachment, Host


def host_address_spaces(host: Host) -> list[dict]:
    """[{id, key, pid, fd, kind, backend, attachment_known, pinned_kb, locked_kb, vm, groups, devices}] by pid, key."""
    attached: dict[str, dict] = {}
    for a in Attachment.objects.filter(host=host).order_by("key"):
        entry = attached.setdefault(a.space, {"groups": [], "devices": []})
        if a.device_bdf:
            entry["devices"].append({"key": a.key, "device": a.device_bdf, "certainty": a.certainty})
        elif a.group_number is not None:
            entry["groups"].append({"key": a.key, "group": a.group_number, "certainty": a.certainty})
    out = []
    for s in AddressSpace.objects.filter(host=host).order_by("pid", "key"):
        entry = attached.get(s.key, {"groups": [], "devices": []})
        out.append({
            "id": f"as:{s.key}", "key": s.key, "pid": s.pid, "fd": s.fd, "kind": s.kind, "backend": s.backend,
            "attachment_known": s.attachment_known, "pinned_kb": s.pinned_kb, "locked_kb": s.locked_kb, "vm": s.vm,
            "groups": entry["groups"], "devices": entry["devices"],
        })
    return out
