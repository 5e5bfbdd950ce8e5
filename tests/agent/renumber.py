"""A snapshot of the same hardware with renumbered buses, made by hand from a real capture's document."""
import json
import re

_BDF = re.compile(r"([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2}\.[0-7])")


def shifted(bdf: str) -> str:
    """One bus higher behind the root complex (bus 00 stays): what a BIOS that enumerates one more root
    port first, or a kernel with pci=assign-busses, does to the same device."""
    m = _BDF.fullmatch(bdf)
    bus = int(m.group(2), 16)
    return f"{m.group(1)}:{bus + 1 if bus else 0:02x}:{m.group(3)}"


def renumbered(doc: dict) -> dict:
    """`doc` with every BDF shifted, in device lists, parents, sysfs paths, groups and holders alike."""
    return json.loads(_BDF.sub(lambda m: shifted(m.group(0)), json.dumps(doc)))
