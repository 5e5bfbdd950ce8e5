"""PASID consumers the kernel shows: Intel DSA/IAA (idxd) work queues and their openers, and
devices whose PASID capability is enabled.

There is no kernel-wide list of allocated PASIDs (the IOASID code was removed in 6.4), so users
are attributed through idxd shared work queues (6.4+ lists opener pids) and device enable bits.
"""
from __future__ import annotations

import re

from ..integers import parse_bool01
from ..sysfs import Reader
from .bounds import bounded, full_bdf

IDXD_BUS = "/sys/bus/dsa/devices"
_IDXD_DEVICE = re.compile(r"^(dsa|iax)[0-9]+$")
_WQ = re.compile(r"^wq([0-9]+)\.([0-9]+)$")


def _parent_name(rd: Reader, kernel_path: str) -> str | None:
    real = rd.resolve(kernel_path)
    return real.parent.name if real is not None else None


def _openers(rd: Reader, wq_path: str) -> list[int]:
    """6.4+: wqX.Y/<prefix>!wqX.Y/file<n>/pid for each process that opened the WQ's cdev."""
    pids = set()
    for cdev in rd.listdir(wq_path, missing_ok=True):
        if "!" not in cdev:
            continue
        for entry in rd.listdir(f"{wq_path}/{cdev}", missing_ok=True):
            if entry.startswith("file"):
                pid = rd.read_int(f"{wq_path}/{cdev}/{entry}/pid", what="a pid")
                if pid is not None:
                    pids.add(pid)
    return sorted(pids)


def collect(rd: Reader, devices: list[dict]) -> dict:
    entries = rd.listdir(IDXD_BUS, missing_ok=True)
    idxd = {}
    for name in entries:
        if _IDXD_DEVICE.match(name):
            base = f"{IDXD_BUS}/{name}"
            text = rd.text(f"{base}/pasid_enabled")
            enabled = parse_bool01(text)
            if enabled is None and text is not None:
                rd.warn(f"{base}/pasid_enabled", f"expected 0 or 1, got {text[:40]!r}")
            device = full_bdf(rd, base, _parent_name(rd, base))
            idxd[name] = {"name": name, "device": device, "pasid_enabled": enabled, "wqs": []}
    for name in entries:
        if not _WQ.match(name):
            continue
        base = f"{IDXD_BUS}/{name}"
        owner = _parent_name(rd, base)
        wq = {"name": name, **{key: bounded(rd, f"{base}/{key}", rd.text(f"{base}/{key}")) for key in ("mode", "type", "state")},
              "clients": rd.read_int(f"{base}/clients", missing_ok=True, what="a client count"),
              "openers": _openers(rd, base)}
        if owner in idxd:
            idxd[owner]["wqs"].append(wq)
        else:
            rd.warn(base, "work queue whose idxd device is not listed")

    users = []
    for dev in idxd.values():
        for wq in dev["wqs"]:
            users += [{"device": dev["device"], "pid": pid, "source": "idxd-wq"} for pid in wq["openers"]]
    for d in devices:
        pasid = ((d.get("capabilities") or {}).get("pasid") or {})
        if pasid.get("enabled") is True:
            users.append({"device": d.get("bdf"), "pid": None, "source": "device-pasid-enabled"})
    users.sort(key=lambda u: (u["device"] or "", u["pid"] if u["pid"] is not None else -1, u["source"]))
    return {"idxd": sorted(idxd.values(), key=lambda d: d["name"]), "users": users}
