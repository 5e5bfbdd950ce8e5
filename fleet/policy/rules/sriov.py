"""SR-IOV: VFs sharing their PF's group; a PF in userspace whose VFs go elsewhere."""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding


def vf_shares_pf_group(facts: HostFacts) -> list[Finding]:
    out = []
    for bdf in sorted(facts.devices):
        d = facts.devices[bdf]
        pf = (d.get("sriov") or {}).get("physfn")
        if not pf or pf not in facts.devices:
            continue
        gid = d.get("iommu_group")
        if gid is None or gid != facts.devices[pf].get("iommu_group"):
            continue
        out.append(Finding(
            "vf-shares-pf-group", "device", bdf,
            f"VF {bdf} is in group {gid} together with its PF {pf}: whoever gets the VF can reach the PF.",
            evidence={"vf": facts.member_evidence(bdf), "pf": facts.member_evidence(pf), "group": gid,
                      "members": facts.members(gid)},
            remediation=f"do not assign {bdf} while it shares group {gid} with {pf}; enable ACS on the PF's port "
                        "or use a platform that isolates VFs.",
        ))
    return out


def _owner_key(facts: HostFacts, bdf: str) -> str:
    if bdf not in facts.assigned:
        return f"host ({facts.devices[bdf].get('driver') or 'no driver'})"
    owners = sorted({o.vm or o.workload or f"pid {o.pid}" for o in facts.owners_of(bdf)})
    return ", ".join(owners) or "userspace (not held)"


def pf_userspace_vfs_elsewhere(facts: HostFacts) -> list[Finding]:
    out = []
    pfs = [b for b in facts.assigned if (facts.devices[b].get("sriov") or {}).get("vfs")]
    for bdf in sorted(pfs):
        vfs = [v for v in facts.devices[bdf]["sriov"]["vfs"] if v in facts.devices]
        pf_owner = _owner_key(facts, bdf)
        owners = {v: _owner_key(facts, v) for v in vfs}
        elsewhere = {v: o for v, o in owners.items() if o != pf_owner}
        if not elsewhere:
            continue
        out.append(Finding(
            "pf-userspace-vfs-elsewhere", "device", bdf,
            f"PF {bdf} is assigned to {pf_owner} while its VFs go to other owners, and the PF's driver governs them.",
            evidence={"pf": facts.member_evidence(bdf), "pf_owner": pf_owner, "vfs_elsewhere": elsewhere},
            remediation=f"keep PF {bdf} on its host driver when its VFs are handed out, or give the VFs to the PF's owner.",
        ))
    return out


RULES = (vf_shares_pf_group, pf_userspace_vfs_elsewhere)
