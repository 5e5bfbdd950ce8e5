"""What a rule returns, and the catalogue of rule ids with their fixed severities (DOMAIN.md §6)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .severity import Severity

CATALOGUE: dict[str, Severity] = {
    "iommu-disabled": Severity.CRITICAL,
    "noiommu-mode": Severity.CRITICAL,
    "uio-driver": Severity.HIGH,
    "unsafe-interrupts": Severity.HIGH,
    "acs-override": Severity.HIGH,
    "group-mixed-ownership": Severity.CRITICAL,
    "group-shared-p2p": Severity.HIGH,
    "group-split-owners": Severity.CRITICAL,
    "address-space-multitenant": Severity.CRITICAL,
    "device-node-permissions": Severity.HIGH,
    "unknown-holder": Severity.HIGH,
    "vf-shares-pf-group": Severity.HIGH,
    "pf-userspace-vfs-elsewhere": Severity.HIGH,
    "mdev-parent-not-isolated": Severity.MEDIUM,
    "reserved-region-direct": Severity.MEDIUM,
    "identity-domain-multitenant": Severity.MEDIUM,
    "ats-without-tb": Severity.MEDIUM,
    "pasid-unsupported-by-iommu": Severity.LOW,
    "pasid-quota": Severity.MEDIUM,
    "driver-drift": Severity.HIGH,
    "group-changed": Severity.MEDIUM,
    "nested-host": Severity.INFO,
    "old-kernel-viability": Severity.INFO,
    "stale-host": Severity.MEDIUM,
}


@dataclass(frozen=True)
class Finding:
    """One rule firing for one subject: what is wrong, the facts that show it, and the fix."""

    rule: str
    subject_kind: str  # host, group, device, holder, node, tenant, address-space
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
