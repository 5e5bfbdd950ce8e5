"""Whether a device's whole IOMMU group is free to hand out, as SQL (search terms, the finder's first
cut) and as the authoritative Python check the finder applies to what SQL returned.

A group is **free** for a device when, with every endpoint of the group moved to vfio-pci:
- it is viable (`agent.ownership.group_viability`, the 5.19+ rule: a bridge stays on its driver,
  since VFIO never takes a bridge, and only pcieport/pci-stub/no driver lets it go along; the pre-5.19
  exemption of bridges is not counted on, since a host driver binding into such a live group crashed the host);
- no holder reaches any member (the ownership model's `owner_pid`/`owner_vm` columns);
- no other member is host-critical (`hostcritical.py`);
- no open, unwaived critical violation names the host, the group or a member.
A device is in a **single** group when no other endpoint shares it (bridges on pcieport may).

`vm:none` asks about one device; `group:free` about its group: a GPU nobody holds but whose group
also holds an assigned GPU (or a host-driven neighbour under group-mixed-ownership) is `vm:none`
and not `group:free`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import CharField, Count, Exists, OuterRef, Q
from django.db.models.functions import Cast

from agent.drivers import UIO_DRIVERS
from agent.ownership import group_viability
from fleet.inventory.models import Device
from fleet.policy.selectors import violations_open_unwaived
from fleet.policy.severity import Severity

from .hostcritical import host_critical, host_critical_q, host_dma_driver_q

FREE, SINGLE = "free", "single"
GROUP_STATES = (FREE, SINGLE)


def critical_violations(*, now: datetime | None = None):
    return violations_open_unwaived(now=now).filter(severity=Severity.CRITICAL)


def group_free_q(*, now: datetime | None = None) -> Q:
    """Devices (endpoints with a group) whose group is free, as defined above."""
    blockers = Device.objects.filter(group_id=OuterRef("group_id")).filter(
        Q(owner_pid__isnull=False) | Q(owner_vm__isnull=False)
        | (Q(is_bridge=True) & (host_dma_driver_q() | Q(driver__in=sorted(UIO_DRIVERS))))
        | (~Q(pk=OuterRef("pk")) & host_critical_q()))
    member_bdfs = Device.objects.filter(group_id=OuterRef(OuterRef("group_id"))).values("bdf")
    critical = critical_violations(now=now).filter(host_id=OuterRef("host_id")).filter(
        Q(subject_kind="host")
        | Q(subject_kind="group", subject_id=Cast(OuterRef("group_number"), output_field=CharField()))
        | Q(subject_kind="device", subject_id__in=member_bdfs))
    return Q(group_id__isnull=False) & ~Q(is_bridge=True) & ~Exists(blockers) & ~Exists(critical)


def group_single_q() -> Q:
    others = Device.objects.filter(group_id=OuterRef("group_id")).exclude(pk=OuterRef("pk")).exclude(is_bridge=True)
    return Q(group_id__isnull=False) & ~Q(is_bridge=True) & ~Exists(others)


def group_state_q(state: str, *, now: datetime | None = None) -> Q:
    """The search term `group:free` / `group:single`."""
    return group_free_q(now=now) if state == FREE else group_single_q()


def group_sizes(group_ids) -> dict[int, int]:
    """Group row id -> how many PCI devices (bridges included) the group has."""
    ids = sorted({g for g in group_ids if g is not None})
    if not ids:
        return {}
    return dict(Device.objects.filter(group_id__in=ids).values("group_id").annotate(n=Count("id")).values_list("group_id", "n"))


# ---- the authoritative check -------------------------------------------------------------

@dataclass
class GroupAssessment:
    """One device's group judged for hand-out: free or not (`reasons` say why not), and what goes along."""

    bdf: str
    free: bool
    companions: list = field(default_factory=list)  # other endpoints that must move with the device
    bridges: list = field(default_factory=list)     # bridges of the group (they stay on their driver)
    reasons: list = field(default_factory=list)


def assess_group(bdf: str, members: list[dict], *, critical_subjects: set = frozenset(), group_number=None) -> GroupAssessment:
    """`members`: the group's devices as rows with bdf, class_code, driver, is_bridge, owner_pid, owner_vm.

    `critical_subjects`: (kind, id) of the host's open critical violations, ("host", "") for a host-level one.
    """
    me = next((m for m in members if m["bdf"] == bdf), None)
    companions = sorted(m["bdf"] for m in members if m["bdf"] != bdf and not m.get("is_bridge"))
    bridges = sorted(m["bdf"] for m in members if m.get("is_bridge"))
    out = GroupAssessment(bdf=bdf, free=False, companions=companions, bridges=bridges)
    if me is None or me.get("is_bridge"):
        out.reasons.append(f"{bdf} is a bridge: VFIO never hands out a bridge" if me else f"{bdf} has no IOMMU group")
        return out
    moved = [{"bdf": m["bdf"], "is_bridge": m.get("is_bridge"), "driver": m.get("driver") if m.get("is_bridge") else "vfio-pci"}
             for m in members]
    viability = group_viability(moved, None)
    if not viability.viable:
        out.reasons.append(viability.reason)
    held = sorted(m["bdf"] for m in members if m.get("owner_pid") is not None or m.get("owner_vm"))
    if held:
        out.reasons.append(f"held by a process: {', '.join(held)}")
    critical = sorted(m["bdf"] for m in members if m["bdf"] != bdf and host_critical(m.get("class_code"), m.get("driver")))
    if critical:
        out.reasons.append(f"host-critical member: {', '.join(critical)}")
    subjects = {("host", "")} | {("group", str(group_number))} | {("device", m["bdf"]) for m in members}
    hit = sorted(f"{k} {i}".strip() for k, i in subjects & set(critical_subjects))
    if hit:
        out.reasons.append(f"under an open critical violation ({', '.join(hit)})")
    out.free = not out.reasons
    return out
