"""Snapshot documents of the real captures, collected once per test run by the agent itself."""
import copy
import re
from functools import lru_cache
from pathlib import Path

from agent.paths import Root
from agent.snapshot import build

from tests.agent.groundtruth import gt


@lru_cache(maxsize=None)
def _collected(root: str) -> dict:
    return build(Root.of(root))


def document_of(root: Path, *, seq: int = 0, hostname: str | None = None) -> dict:
    """A private copy of the capture's snapshot, with `seq` and optionally a hostname (to play one host's history)."""
    doc = copy.deepcopy(_collected(str(root)))
    doc["seq"] = seq
    if hostname is not None:
        doc["host"]["hostname"] = hostname
        doc["host"]["machine_id"] = None
    return doc


_GUEST_RE = re.compile(r"-name guest=([^,\s]+)")
_HOST_RE = re.compile(r"host=([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])")
_ALLOW_RE = re.compile(r"(?:^|\s)(?:-a|--allow|-w)\s+([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])")
_PREFIX_RE = re.compile(r"--file-prefix[= ](\S+)")


def ps_holders(root: Path) -> dict[int, dict]:
    """pid -> {"vm" or workload name, "devices"} of the QEMU and DPDK processes in `ground-truth/ps.txt`."""
    out = {}
    for line in gt(root, "ps.txt").read_text().splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        pid, command = int(parts[0]), parts[2]
        if "qemu-system" in command:
            guest = _GUEST_RE.search(command)
            out[pid] = {"vm": guest[1] if guest else None, "devices": set(_HOST_RE.findall(command))}
        elif "dpdk" in command:
            prefix = _PREFIX_RE.search(command)
            out[pid] = {"vm": prefix[1] if prefix else None, "devices": set(_ALLOW_RE.findall(command))}
    return out
