"""The holders part of the terminal view: per holder what the kernel lets it reach, what it holds
but is refused, and its I/O address spaces (VFIO containers, iommufd contexts) with what each maps.

Every fact comes from the ownership model (`agent.ownership`), so the view never claims an
ownership the kernel did not grant: a group fd on a non-viable group reads "refused", a bridge is
never listed as reached, and a VM on iommufd lists its cdevs instead of "no groups".
"""
from __future__ import annotations

from .bdf import short_bdf
from .ownership import INFERRED, Ownership
from .terminal import Painter, clean

VIA_WORDS = {"device-fd": "device fd", "cdev": "cdev", "group": "group fd", "uio": "uio node",
             "group-refused": "group fd refused", "cdev-refused": "cdev, bind refused"}
KIND_WORDS = {"vfio-container": "VFIO container", "iommufd": "iommufd context"}
BACKEND_WORDS = {"legacy": "type1, legacy path", "iommufd": "iommufd path"}


def holder_label(h: dict) -> str:
    who = h.get("vm") and f"VM {clean(h['vm'])}" or h.get("workload") and f"workload {clean(h['workload'])}"
    return f"{who or 'unknown holder'} ({clean(h.get('name'))} pid {h.get('pid')})"


def _kb(value) -> str:
    return f"{value} kB" if isinstance(value, int) else "?"


def _attached(items: dict, word: str, fmt) -> str:
    return ", ".join(f"{word} {fmt(k)} [{c}]" for k, c in sorted(items.items()))


def space_line(space, paint: Painter) -> str:
    what = KIND_WORDS.get(space.kind, clean(space.kind))
    fd = f" fd {space.fd}" if space.fd is not None else ""
    if not space.attachment_known:
        maps = paint("attachments not visible (several of this kind; /proc does not say which holds what)", "yellow")
    else:
        parts = [p for p in (_attached(space.groups, "group", str), _attached(space.devices, "device", lambda b: short_bdf(clean(b))))
                 if p]
        maps = "maps " + "; ".join(parts) if parts else paint("nothing attached", "dim")
    memory = ""
    if space.pinned_kb is not None or space.locked_kb is not None:
        memory = f"  pinned {_kb(space.pinned_kb)}, locked {_kb(space.locked_kb)}"
    return f"    {what}{fd} ({BACKEND_WORDS.get(space.backend, clean(space.backend))}): {maps}{memory}"


def holder_lines(doc: dict, model: Ownership, paint: Painter) -> list[str]:
    holders = [h for h in doc.get("holders") or [] if isinstance(h, dict)]
    cdev_of = {c.get("device"): c.get("name") for c in (doc.get("vfio") or {}).get("cdevs") or [] if isinstance(c, dict)}
    out = [paint(f"Holders of VFIO/iommufd/UIO fds: {len(holders)}", "bold")]
    for h in holders:
        pid = h.get("pid")
        nodes = " ".join(clean(n) for n in h.get("nodes") or [])
        extra = f", {h['device_fds']} device fds" if h.get("device_fds") else ""
        attributed = h.get("vm") or h.get("workload")
        out.append(f"  {paint(holder_label(h), 'cyan' if attributed else 'red')}  uid {h.get('uid')}"
                   f"  holds {nodes or '-'}{extra}")
        if not attributed:
            out.append("    " + paint("! held by a process that maps to no known VM or workload", "red"))
        reached = [(b, r) for b, d in sorted(model.devices.items()) for r in d.reach if r.pid == pid]
        refused = [(b, r) for b, d in sorted(model.devices.items()) for r in d.refused if r.pid == pid]
        if reached:
            out.append("    reaches: " + ", ".join(
                f"{short_bdf(clean(b))} via {VIA_WORDS.get(r.via, r.via)}"
                + (f" {clean(cdev_of[b])}" if r.via == "cdev" and cdev_of.get(b) else "")
                + f" [{r.certainty}]" for b, r in reached))
        elif not refused:
            out.append("    reaches: " + paint("no device", "dim"))
        for b, r in refused:
            out.append("    " + paint(f"! {short_bdf(clean(b))}: {VIA_WORDS.get(r.via, r.via)} — its group is not viable, "
                                      "the kernel grants no access", "yellow"))
        spaces = [s for s in model.address_spaces if s.pid == pid]
        for space in spaces:
            out.append(space_line(space, paint))
        if len(spaces) != 1 and (h.get("vm_pinned_kb") is not None or h.get("vm_locked_kb") is not None):
            out.append(f"    process pinned {_kb(h.get('vm_pinned_kb'))}, locked {_kb(h.get('vm_locked_kb'))}")
    if any(s.devices and INFERRED in s.devices.values() for s in model.address_spaces):
        out.append("  " + paint("[inferred]: the fd allows it, nothing the holder says names the device", "dim"))
    return out
