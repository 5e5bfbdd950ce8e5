"""Kernel releases: the one parser of a release string, and the releases whose behaviour the agent's
readers and views depend on."""
from __future__ import annotations

import re

from .integers import parse_int

_RELEASE = re.compile(r"([0-9]{1,5})\.([0-9]{1,5})")
_VERSION_LINE = re.compile(r"Linux version (\S+)")

# iommu_group_claim_dma_owner() (DOMAIN.md §2): from 5.19 a host driver cannot bind into a group
# userspace owns; before it, such a bind hits a BUG_ON and crashes the host.
DMA_OWNERSHIP_SINCE = (5, 19)


def kernel_tuple(release: str | None) -> tuple[int, int] | None:
    """`6.1.0-56-amd64` -> (6, 1); None when the release does not start with major.minor."""
    m = _RELEASE.match(release or "")
    return (parse_int(m.group(1)), parse_int(m.group(2))) if m else None


def release_from_version_line(line: str | None) -> str | None:
    """`/proc/version` (`Linux version 6.1.0-56-amd64 (…) #1 SMP …`) -> `6.1.0-56-amd64`."""
    m = _VERSION_LINE.match(line or "")
    return m.group(1) if m else None
