"""The rule catalogue (DOMAIN.md §6), one module per family; each rule is `rule(facts) -> list[Finding]`."""
from . import acs, drivers, groups, holders, interrupts, iommu, mdev, nodes, pasid, regions, spaces, sriov, staleness

ALL_RULES = (
    *iommu.RULES, *groups.RULES, *drivers.RULES, *interrupts.RULES, *acs.RULES, *nodes.RULES,
    *holders.RULES, *spaces.RULES, *sriov.RULES, *mdev.RULES, *regions.RULES, *pasid.RULES, *staleness.RULES,
)
