"""What a rule returns, and the catalogue of rule ids with their fixed severities (DOMAIN.md §6)."""
from __future__ import annotations

from dataclasses import dataclass, field

CATALOGUE: dict[str, str] = {
    "iommu-disabled": "critical",
    "noiommu-mode": "critical",
    "uio-driver": "high",
    "unsafe-interrupts": "high",
    "acs-override": "high",
    "group-mixed-ownership": "critical",
    "group-shared-p2p": "high",
    "group-split-owners": "critical",
    "device-node-permissions": "high",
    "unknown-holder": "high",
    "vf-shares-pf-group": "high",
    "pf-userspace-vfs-elsewhere": "high",
    "mdev-parent-not-isolated": "medium",
    "reserved-region-direct": "medium",
    "identity-domain-multitenant": "medium",
    "ats-without-tb": "medium",
    "pasid-unsupported-by-iommu": "low",
    "pasid-quota": "medium",
    "driver-drift": "high",
    "group-changed": "medium",
    "nested-host": "info",
    "old-kernel-viability": "info",
    "stale-host": "medium",
}

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


@dataclass(frozen=True)
class Finding:
    """One rule firing for one subject: what is wrong, the facts that show it, and the fix."""

    rule: str
    subject_kind: str  # host, group, device, holder, node, tenant
    subject_id: str
    message: str
    evidence: dict = field(default_factory=dict)
    remediation: str = ""

    @property
    def severity(self) -> str:
        return CATALOGUE[self.rule]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.subject_kind, self.subject_id)

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "subject_kind": self.subject_kind,
            "subject_id": self.subject_id,
            "message": self.message,
            "evidence": self.evidence,
            "remediation": self.remediation,
        }
