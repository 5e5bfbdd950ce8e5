"""Which VM names belong to a tenant: the policy intent's patterns when declared, else a naming convention."""
from __future__ import annotations

import fnmatch

from django.db.models import Q

from fleet.policy.models import Tenant


def _pattern_q(pattern: str, field: str) -> Q:
    if pattern.startswith("re:"):
        return Q(**{f"{field}__regex": pattern[3:]})
    if not any(c in pattern for c in "*?["):
        return Q(**{field: pattern})
    if pattern.endswith("*") and not any(c in pattern[:-1] for c in "*?["):
        return Q(**{f"{field}__startswith": pattern[:-1]})
    # fnmatch.translate gives a Python regex; (?s:...)\Z is not portable SQL, so strip that wrapper.
    regex = fnmatch.translate(pattern)
    if regex.startswith("(?s:") and regex.endswith(")\\Z"):
        regex = regex[4:-3]
    return Q(**{f"{field}__regex": f"^{regex}$"})


def tenant_vm_q(tenant: str, *, field: str = "owner_vm") -> Q:
    """Q over a VM-name column matching `tenant`'s VMs (intent vm_patterns, else `T` or `T-*`)."""
    row = Tenant.objects.filter(name=tenant).first()
    if row and row.vm_patterns:
        q = Q(pk__in=[])
        for p in row.vm_patterns:
            q |= _pattern_q(p, field)
        return q
    return Q(**{field: tenant}) | Q(**{f"{field}__startswith": f"{tenant}-"})


def tenant_holder_q(tenant: str) -> Q:
    """Q over Holder rows the policy attributes to `tenant`: its vm, cgroup and workload patterns
    (`Tenant.matches_holder`), else the naming convention on the VM or workload name."""
    row = Tenant.objects.filter(name=tenant).first()
    if row is None or not (row.vm_patterns or row.cgroup_patterns or row.workload_patterns):
        return tenant_vm_q(tenant, field="vm") | tenant_vm_q(tenant, field="workload")
    q = Q(pk__in=[])
    for field, patterns in (("vm", row.vm_patterns), ("cgroup", row.cgroup_patterns), ("workload", row.workload_patterns)):
        for p in patterns:
            q |= _pattern_q(p, field)
    return q
