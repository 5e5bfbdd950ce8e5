"""Size and format limits the snapshot schema puts on host strings, applied where a collector takes them in.

A kernel never writes a module parameter, a work-queue mode or a VM name of kilobytes; when a
(garbled or hostile) tree does, the value is reported as unknown with a warning, never sent on.
"""
from __future__ import annotations

from ..bdf import is_bdf
from ..sysfs import Reader

NAME_MAX = 4096  # the schema's limit for names and short attributes
CMDLINE_ARGS_MAX = 16384
ARG_MAX = 65536


def bounded(rd: Reader, kernel_path: str, value: str | None, limit: int = NAME_MAX) -> str | None:
    if value is not None and len(value) > limit:
        rd.warn(kernel_path, f"implausibly long ({len(value)} characters, limit {limit}); treated as unknown")
        return None
    return value


def full_bdf(rd: Reader, kernel_path: str, value: str | None) -> str | None:
    """A link name that must be a PCI function (`0000:02:00.0`); anything else is warned about and unknown."""
    if value is not None and not is_bdf(value):
        rd.warn(kernel_path, f"expected a PCI address, found {value[:64]!r}")
        return None
    return value
