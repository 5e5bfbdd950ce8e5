"""The pre-flight, pure: may these devices of one host go to this VM? The real rule engine is run on
the host's current state and on the hypothetical one (the requested devices moved to vfio-pci and held
by the intended VM), and the difference decides.

Denied when the hypothetical state has a critical finding the change opens or that concerns the
group closure (e.g. group-mixed-ownership: a companion left on its host driver), when a member the
request does not name is host-critical (`hostcritical.py`; naming it says the host may lose it), or when the intent maps the VM to another tenant than
the one stated. The plan is what would make it pass: every endpoint of the closure to vfio-pci.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agent.drivers import DriverClass, driver_class
from fleet.policy.engine import evaluate
from fleet.policy.facts import HostContext
from fleet.policy.findings import Finding
from fleet.policy.intent import Intent
from fleet.policy.severity import Severity

from .hostcritical import host_critical

VFIO = "vfio-pci"
HOLDER_NAME = "qemu-system-x86_64"


class PreflightInvalid(ValueError):
    """The request names something the host does not have; `path` says which part of the request."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


@dataclass
class Preflight:
    allow: bool
    reasons: list = field(default_factory=list)
    closure: list = field(default_factory=list)   # [{group, members: [{bdf, driver, holder, is_bridge, requested, host_critical}]}]
    opens: list = field(default_factory=list)     # findings the change would open
    remains: list = field(default_factory=list)   # critical findings on the closure that stay after the change
    plan: list = field(default_factory=list)      # ordered dry-run steps

    def as_dict(self) -> dict:
        return {"decision": "allow" if self.allow else "deny", "reasons": self.reasons, "closure": self.closure,
                "opens": [f.as_dict() for f in self.opens], "remains": [f.as_dict() for f in self.remains], "plan": self.plan}


def _holder_names(state: dict) -> dict[str, list[str]]:
    """bdf -> names of the holders that hold it (its group or the device), as the engine's facts index them."""
    groups = {g.get("id"): g.get("devices") or [] for g in state.get("groups") or []}
    out: dict[str, list[str]] = {}
    for h in state.get("holders") or []:
        held = set(h.get("devices") or [])
        for gid in h.get("groups") or []:
            held.update(groups.get(gid, []))
        for bdf in held:
            out.setdefault(bdf, []).append(h.get("vm") or h.get("workload") or f"pid {h.get('pid')}")
    return out


def hypothetical_state(state: dict, requested: list[str], group_ids: list[int], *, vm: str) -> dict:
    """The state with `requested` on vfio-pci and held by a QEMU of `vm`.

    The holder opens the groups' nodes but is credited with the devices it names only (`devices`, no
    `groups`): the engine's facts give a group holder every member, while the kernel refuses a group
    fd on a group that is not viable (agent/ownership.py, `group-refused`); naming the devices keeps a
    companion left on its host driver visible as host-driven, so group-mixed-ownership can fire.
    """
    moved = set(requested)
    devices = [{**d, "driver": VFIO, "driver_override": VFIO} if d.get("bdf") in moved else d for d in state.get("devices") or []]
    pid = max((h.get("pid") or 0 for h in state.get("holders") or []), default=0) + 1
    cmdline = [HOLDER_NAME, "-name", f"guest={vm}"] + [x for b in requested for x in ("-device", f"vfio-pci,host={b}")]
    holder = {"pid": pid, "name": HOLDER_NAME, "user": None, "uid": None, "cmdline": cmdline,
              "nodes": sorted(["/dev/vfio/vfio", *(f"/dev/vfio/{g}" for g in group_ids)]), "device_fds": len(requested),
              "groups": [], "devices": list(requested), "kind": "qemu", "vm": vm, "workload": vm,
              "cgroup": None, "vm_pinned_kb": None, "start_time": None}
    return {**state, "devices": devices, "holders": [*(state.get("holders") or []), holder]}


def _touches(f: Finding, group_ids: set, bdfs: set, pid: int) -> bool:
    return ((f.subject_kind == "group" and f.subject_id in group_ids) or (f.subject_kind == "device" and f.subject_id in bdfs)
            or (f.subject_kind == "holder" and f.subject_id == str(pid)))


def preflight(state: dict, requested: list[str], *, vm: str, tenant: str | None, intent: Intent,
              context: HostContext, open_keys: set | None = None) -> Preflight:
    """`requested`: full BDFs. Raises PreflightInvalid for a device the host does not have or cannot hand out.

    `open_keys`: (rule, subject kind, subject id) of what is open now, when the caller has them (the stored
    violations, which the sync keeps equal to the engine's findings on this state); else the engine runs on `state`.
    """
    by_bdf = {d.get("bdf"): d for d in state.get("devices") or []}
    members_of = {g.get("id"): [b for b in g.get("devices") or [] if b in by_bdf] for g in state.get("groups") or []}
    group_ids: list[int] = []
    for i, bdf in enumerate(requested):
        d = by_bdf.get(bdf)
        if d is None:
            raise PreflightInvalid(f"devices[{i}]", f"host has no device {bdf}")
        if d.get("is_bridge"):
            raise PreflightInvalid(f"devices[{i}]", f"{bdf} is a bridge: VFIO never hands out a bridge")
        gid = d.get("iommu_group")
        if gid is None or gid not in members_of:
            raise PreflightInvalid(f"devices[{i}]", f"{bdf} is in no IOMMU group (is the IOMMU on?)")
        if gid not in group_ids:
            group_ids.append(gid)
    hypothetical = hypothetical_state(state, requested, group_ids, vm=vm)
    pid = hypothetical["holders"][-1]["pid"]
    before = open_keys if open_keys is not None else {f.key for f in evaluate(state, intent, context=context)}
    after = evaluate(hypothetical, intent, context=context)
    closure_bdfs = {b for g in group_ids for b in members_of[g]}
    gid_text = {str(g) for g in group_ids}
    result = Preflight(allow=True)
    result.opens = [f for f in after if f.key not in before]
    result.remains = [f for f in after if f.key in before and f.severity == Severity.CRITICAL
                      and _touches(f, gid_text, closure_bdfs, pid)]
    for f in result.opens:
        if f.severity == Severity.CRITICAL:
            result.reasons.append(f"would open {f.rule} ({f.subject_kind} {f.subject_id}): {f.message}")
    for f in result.remains:
        result.reasons.append(f"{f.rule} stays open on {f.subject_kind} {f.subject_id}: {f.message}")
    holders = _holder_names(state)
    wanted = set(requested)
    for gid in group_ids:
        members = []
        for b in members_of[gid]:
            d = by_bdf[b]
            critical = not d.get("is_bridge") and host_critical(d.get("class"), d.get("driver"))
            members.append({"bdf": b, "driver": d.get("driver"), "holders": holders.get(b, []), "is_bridge": bool(d.get("is_bridge")),
                            "requested": b in wanted, "host_critical": critical})
            if critical and b not in wanted:
                result.reasons.append(f"{b} ({d.get('class')}) must go along but is on the host driver {d.get('driver')}: the host "
                                      "may boot or reach its network through it; name it in the request if it may go")
        result.closure.append({"group": gid, "members": members})
    mapped = intent.tenant_for_holder(hypothetical["holders"][-1]) if intent.tenants else None
    if tenant and mapped is not None and mapped.name != tenant:
        result.reasons.append(f"owner.tenant is {tenant}, but the intent maps VM {vm} to tenant {mapped.name}")
    result.allow = not result.reasons
    result.plan = remediation_plan(state, [b for g in group_ids for b in members_of[g]])
    return result


# ---- the plan ----------------------------------------------------------------------------

def _is_vf(d: dict) -> bool:
    return isinstance(d.get("sriov"), dict) and bool(d["sriov"].get("physfn"))


def remediation_plan(state: dict, closure: list[str]) -> list[dict]:
    """Ordered dry-run steps putting every endpoint of the closure on vfio-pci; nothing is run.

    Order, from what the kernel enforces (DOMAIN.md §2):
    1. driver_override=vfio-pci on every endpoint first, so no host driver can probe a device again
       between the steps below (a host driver binding into a group userspace owns fails with -EBUSY
       since 5.19, and hit a BUG_ON before it).
    2. unbind every endpoint from its host (or UIO) driver before any is bound to vfio-pci: the group
       is claimable only once no member has a DMA-owning host driver. VFs before their PF: removing
       the PF's driver tears down its VFs.
    3. bind (drivers_probe honours the override), PFs before VFs: a VF exists only while its PF does.
    4. persist with driverctl once the live state is right (driverctl rebinds one device at a time,
       which is safe only when no sibling is left on a host driver).
    Bridges get no step: VFIO never takes a bridge and pcieport does not count as a DMA owner.
    """
    by_bdf = {d.get("bdf"): d for d in state.get("devices") or []}
    endpoints = [by_bdf[b] for b in sorted(set(closure)) if b in by_bdf and not by_bdf[b].get("is_bridge")]
    todo = [d for d in endpoints if driver_class(d.get("driver")) is not DriverClass.VFIO]
    steps: list[dict] = []

    def step(phase: str, bdf: str, command: str, why: str) -> None:
        steps.append({"order": len(steps) + 1, "phase": phase, "device": bdf, "command": command, "why": why})

    for d in todo:
        if d.get("driver_override") != VFIO:
            step("override", d["bdf"], f"echo vfio-pci > /sys/bus/pci/devices/{d['bdf']}/driver_override",
                 "no host driver may claim it again while the group changes hands")
    for d in sorted(todo, key=lambda d: (not _is_vf(d), d["bdf"])):
        if d.get("driver"):
            why = f"leave the host driver {d['driver']}: the group is claimable only once no member has one"
            if isinstance(d.get("sriov"), dict) and not _is_vf(d) and d["sriov"].get("num_vfs"):
                why += f"; this PF's {d['sriov']['num_vfs']} VFs disappear with it"
            step("unbind", d["bdf"], f"echo {d['bdf']} > /sys/bus/pci/devices/{d['bdf']}/driver/unbind", why)
    for d in sorted(todo, key=lambda d: (_is_vf(d), d["bdf"])):
        step("bind", d["bdf"], f"echo {d['bdf']} > /sys/bus/pci/drivers_probe", "bind vfio-pci (the override picks it)")
    for d in todo:
        step("persist", d["bdf"], f"driverctl set-override {d['bdf']} vfio-pci", "keep vfio-pci across reboots")
    return steps
