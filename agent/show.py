"""The terminal view of one snapshot: what the classic "list IOMMU groups" script prints, plus who
owns each device and which facts deserve a look.

`render(doc, color)` is pure: it takes a snapshot document and returns text. Every string that came
from the host is stripped of control characters first, so a hostile VM name or device string cannot
drive the terminal.
"""
from __future__ import annotations

from .bdf import short_bdf
from .drivers import is_host_dma_driver, is_uio_driver, is_userspace_driver
from .explain import group_reasons
from .integers import parse_int
from .kernel import DMA_OWNERSHIP_SINCE, kernel_tuple
from .ownership import Ownership, ownership
from .problems import device_owners, group_sections, host_problems, iommu_state, libvirt_assigned
from .selection import Selection
from .show_holders import holder_label, holder_lines
from .terminal import Painter, clean
from .topology import upstream

# PCI class names (PCI Code and ID Assignment spec), by class+subclass then by base class.
CLASS_NAMES = {
    "0100": "SCSI controller", "0101": "IDE controller", "0104": "RAID controller", "0106": "SATA controller",
    "0107": "SAS controller", "0108": "NVMe controller", "0180": "Storage controller",
    "0200": "Ethernet controller", "0207": "InfiniBand controller", "0280": "Network controller",
    "0300": "VGA controller", "0302": "3D controller", "0380": "Display controller",
    "0403": "Audio device", "0401": "Audio controller",
    "0500": "RAM memory", "0580": "Memory controller",
    "0600": "Host bridge", "0601": "ISA bridge", "0604": "PCI bridge", "0609": "PCI bridge (semi-transparent)",
    "0680": "Bridge",
    "0700": "Serial controller", "0780": "Communication controller",
    "0800": "PIC", "0806": "IOMMU", "0880": "System peripheral",
    "0c03": "USB controller", "0c05": "SMBus", "0c04": "Fibre Channel", "0c06": "InfiniBand",
    "1080": "Encryption controller", "1200": "Processing accelerator", "1180": "Signal processing controller",
    "1300": "Non-essential instrumentation",
}
BASE_CLASS_NAMES = {
    "00": "Unclassified device", "01": "Mass storage controller", "02": "Network controller",
    "03": "Display controller", "04": "Multimedia controller", "05": "Memory controller", "06": "Bridge",
    "07": "Communication controller", "08": "System peripheral", "09": "Input device", "0a": "Docking station",
    "0b": "Processor", "0c": "Serial bus controller", "0d": "Wireless controller", "0e": "Intelligent controller",
    "0f": "Satellite controller", "10": "Encryption controller", "11": "Signal processing controller",
    "12": "Processing accelerator", "13": "Non-essential instrumentation", "ff": "Unassigned class",
}

SHOWN_WARNINGS = 5

# A bridge's PCIe port type says more than its class (every one of them is "PCI bridge").
PORT_NAMES = {"root_port": "PCIe root port", "upstream_port": "Switch upstream port",
              "downstream_port": "Switch downstream port", "pcie_to_pci_bridge": "PCIe-to-PCI bridge",
              "pci_to_pcie_bridge": "PCI-to-PCIe bridge"}


def device_kind(device: dict) -> str:
    port = ((device.get("capabilities") or {}).get("pcie") or {}).get("port_type")
    return PORT_NAMES.get(port) or class_name(device.get("class"))


def class_name(code: str | None) -> str:
    if not code:
        return "unknown class"
    code = code.lower()
    return CLASS_NAMES.get(code[:4]) or BASE_CLASS_NAMES.get(code[:2]) or f"class {clean(code)}"


def _group_holders(doc: dict, model: Ownership) -> dict[str, list[dict]]:
    """Device -> holders whose fd names it but whom the kernel gives nothing of it: the bridge of a
    held group (VFIO never exposes one), a device whose group fd or cdev was refused (not viable)."""
    by_pid = {h.get("pid"): h for h in doc.get("holders") or [] if isinstance(h, dict)}
    bridges = {d.get("bdf") for d in doc.get("devices") or [] if isinstance(d, dict) and d.get("is_bridge")}
    out: dict[str, list[dict]] = {}
    for g in doc.get("groups") or []:
        held = [h for h in by_pid.values() if g.get("id") in (h.get("groups") or [])]
        for bdf in g.get("devices") or []:
            if bdf in bridges and held:
                out[bdf] = held
    for bdf, d in model.devices.items():
        refused = [by_pid[r.pid] for r in d.refused if r.pid in by_pid]
        if refused:
            out[bdf] = refused
    return out


def _domain_label(dom: dict) -> str:
    state = "defined, not running" if dom.get("state") == "defined" else clean(dom.get("state")) or "running"
    return f"VM {clean(dom.get('name'))} (libvirt, {state})"


def _owner(device: dict, holders: list[dict], paint: Painter, domains: list[dict] = (), group_held: list[dict] = ()) -> str:
    driver = device.get("driver")
    if holders:
        return "; ".join(paint(holder_label(h), "cyan" if (h.get("vm") or h.get("workload")) else "red") for h in holders)
    if group_held and device.get("is_bridge"):
        # VFIO never hands a bridge to its user; it is listed because the holder holds its group.
        return paint("in the group of " + "; ".join(holder_label(h) for h in group_held) + ", not passed through", "dim")
    refused = ("; " + paint("held by " + "; ".join(holder_label(h) for h in group_held)
                            + ", refused by the kernel (group not viable): no access", "yellow")) if group_held else ""
    if domains:
        # Assigned in libvirt's XML but held by no process we could see: a VM that is not running,
        # or (as non-root) one whose fds are hidden from us.
        return "; ".join(paint(_domain_label(d), "cyan") for d in domains) + refused
    if is_userspace_driver(driver):
        return paint(f"{clean(driver)}, not held", "yellow") + refused
    if driver is None:
        return paint("unbound", "dim") + refused
    return f"host ({clean(driver)})" + refused


def _bridge_path(device: dict, by_bdf: dict[str, dict]) -> str:
    return " › ".join(short_bdf(clean(b)) for b in reversed(upstream(device.get("bdf"), by_bdf)))


def _unit_line(unit: dict, paint: Painter) -> str:
    feats = unit.get("features") or {}
    names = []
    # Capabilities of the hardware, not the mode in use ("IOMMU:" above says whether DMA is translated).
    for key, label in (("scalable_mode", "scalable-mode"), ("pasid", "pasid"), ("page_requests", "page-requests"),
                       ("interrupt_remapping", "intr-remap"), ("nesting", "nesting"), ("pass_through", "pass-through-capable"),
                       ("device_tlb", "dev-tlb"), ("posted_interrupts", "posted-intr"), ("gt", "GT"), ("ppr", "PPR")):
        if feats.get(key) is True:
            names.append(label + (f"({feats['pasid_width']} bits)" if key == "pasid" and feats.get("pasid_width") else ""))
    if feats.get("interrupt_remapping") is False:
        names.append(paint("NO interrupt remapping", "yellow"))
    if feats.get("caching_mode") is True:
        names.append(paint("caching-mode (this host is a VM)", "yellow"))
    devices = len(unit.get("devices") or [])
    return (f"  {clean(unit.get('name'))} {clean(unit.get('vendor'))}, {devices} devices; "
            f"can do: {' '.join(names) or 'no features known'}")


def _device_line(d: dict, by_bdf: dict, owners: dict, paint: Painter, assigned: dict | None = None,
                 group_held: dict | None = None, cdevs: dict | None = None) -> list[str]:
    ids = f"{clean(d.get('vendor_id') or '????')}:{clean(d.get('device_id') or '????')}"
    driver = clean(d.get("driver")) or "-"
    bdf = d.get("bdf")
    owner = _owner(d, owners.get(bdf, []), paint, (assigned or {}).get(bdf, []), (group_held or {}).get(bdf, []))
    line = (f"    {paint(clean(bdf), 'bold')}  {device_kind(d):<22} [{ids}]  "
            f"driver {driver:<14} owner: {owner}")
    out = [line]
    if (cdevs or {}).get(bdf):
        out.append("      " + paint(f"cdev /dev/vfio/devices/{clean(cdevs[bdf])}", "dim"))
    path = _bridge_path(d, by_bdf)
    sriov = d.get("sriov") or {}
    if sriov.get("physfn"):
        path = (path + "  " if path else "") + f"SR-IOV VF of {short_bdf(clean(sriov['physfn']))}"
    elif sriov.get("total_vfs"):
        path = (path + "  " if path else "") + f"SR-IOV PF, {sriov.get('num_vfs')}/{sriov.get('total_vfs')} VFs enabled"
    if path:
        out.append("      " + paint(f"via {path}" if not path.startswith("SR-IOV") else path, "dim"))
    if d.get("driver_override") and d.get("driver") != d.get("driver_override"):
        bound = f"bound to {driver}" if d.get("driver") else "no driver bound (probe failed?)"
        out.append("      " + paint(f"driver_override {clean(d['driver_override'])}, but {bound}", "yellow"))
    if is_uio_driver(d.get("driver")):
        out.append("      " + paint("UIO driver: no IOMMU protection for this device", "red"))
    return out


def _why_off(host: dict) -> str:
    flags = host.get("cmdline_flags") or {}
    asked_off = [f"{key}={clean(flags[key])}" for key in ("intel_iommu", "amd_iommu", "iommu")
                 if (flags.get(key) or "").split(",")[0] == "off"]
    if asked_off:
        return f"turned off on the kernel command line: {' '.join(asked_off)}"
    # Many distribution kernels leave Intel's IOMMU off unless asked (CONFIG_INTEL_IOMMU_DEFAULT_ON=n).
    return "no IOMMU unit registered: VT-d/AMD-Vi off in firmware, or intel_iommu=on missing from the command line"


def _header(doc: dict, state: str, state_color: str, paint: Painter) -> list[str]:
    host = doc.get("host") or {}
    vfio = doc.get("vfio") or {}
    out = [paint(f"{clean(host.get('hostname')) or '(unknown host)'}", "bold")
           + f"  kernel {clean(host.get('kernel')) or '?'}",
           f"IOMMU: {paint(state, state_color)}" + (f"  ({_why_off(host)})" if state == "off" else "")]
    for unit in (doc.get("iommu") or {}).get("units") or []:
        out.append(_unit_line(unit, paint))
    out.append(f"VFIO no-IOMMU mode: {paint('ON (unsafe)', 'red') if vfio.get('noiommu') else 'off'}"
               f"   iommufd: {'yes' if vfio.get('iommufd') else 'no'}")
    flags = host.get("cmdline_flags") or {}
    shown = [f"{key}={clean(flags[key])}" for key in ("intel_iommu", "amd_iommu", "iommu") if flags.get(key)]
    if shown or flags.get("vfio_pci_ids"):
        ids = " ".join(clean(i) for i in flags.get("vfio_pci_ids") or [])
        out.append(f"cmdline: {' '.join(shown)}" + (f"  vfio-pci.ids={ids}" if ids else ""))
    out += [paint(f"! {text}", severity) for severity, text in host_problems(doc, state)]
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _summary(risky: list[tuple[dict, list[tuple[str, str]], list[str]]], paint: Painter) -> list[str]:
    """One line per group that breaks isolation, first thing after the header: the 3 a.m. answer."""
    if not risky:
        return ["Groups needing a look: none"]
    out = [paint(f"Groups needing a look: {len(risky)}", "bold")]
    for g, flags, reasons in risky:
        worst = "red" if any(sev == "red" for sev, _ in flags) else "yellow"
        more = f" (+{len(flags) - 1} more below)" if len(flags) > 1 else ""
        out.append("  " + paint(f"group {g.get('id')}: {flags[0][1]}{more}", worst))
        if reasons:
            out.append("    " + paint(f"why: {reasons[0]}", "dim"))
    return out


def render(doc: dict, color: bool, only: Selection | None = None, model: Ownership | None = None) -> str:
    """The whole view, or with `only` just the groups (and ungrouped devices) it selects; `model` is the
    document's ownership model when the caller has it already."""
    paint = Painter(color)
    model = model or ownership(doc)
    devices = doc.get("devices") or []
    by_bdf = {d.get("bdf"): d for d in devices}
    owners = device_owners(doc, model)
    group_held = _group_holders(doc, model)
    cdevs = {c.get("device"): c.get("name") for c in (doc.get("vfio") or {}).get("cdevs") or []
             if isinstance(c, dict) and c.get("rdev")}
    assigned = libvirt_assigned(doc)
    state, state_color = iommu_state(doc)
    out = _header(doc, state, state_color, paint)

    sections = group_sections(doc, model, state)
    if only is not None:
        sections = [sec for sec in sections if only.keeps_group(sec[0], sec[1])]
    risky = [(g, flags, reasons) for g, _, flags, reasons in sections if flags]
    if sections:
        out += [""] + _summary(risky, paint)

    grouped = set()
    for g, members, flags, reasons in sections:
        grouped.update(members)
        kind = clean(g.get("type")) or "type unknown"
        out.append("")
        out.append(paint(f"Group {g.get('id')}", "bold") + f"  {kind}  {_plural(len(members), 'device')}")
        for severity, text in flags:
            out.append("  " + paint(f"! {text}", severity))
        for reason in reasons:
            out.append("  " + paint(f"why: {clean(reason)}", "dim"))
        for bdf in members:
            out += _device_line(by_bdf.get(bdf, {"bdf": bdf}), by_bdf, owners, paint, assigned, group_held, cdevs)

    loose = [d for d in devices if d.get("bdf") not in grouped and (only is None or only.keeps_device(d.get("bdf")))]
    if loose:
        out.append("")
        out.append(paint("Devices in no IOMMU group", "bold") + ("  (IOMMU off: no DMA isolation)" if state == "off" else ""))
        for d in loose:
            out += _device_line(d, by_bdf, owners, paint, assigned, group_held, cdevs)

    if only is not None:
        out += ["", paint(f"(only {only.describe()}: holders, mdevs and PASID users are left out)", "dim")]
        return "\n".join(out) + "\n"
    out.append("")
    out += holder_lines(doc, model, paint)

    mdevs = doc.get("mdevs") or []
    if mdevs:
        out.append("")
        out.append(paint(f"Mediated devices: {len(mdevs)}", "bold"))
        mdev_vms = {u: dom for dom in (doc.get("libvirt") or {}).get("domains") or [] for u in dom.get("mdevs") or []}
        for m in mdevs:
            vm = mdev_vms.get(str(m.get("uuid") or "").lower())
            out.append(f"  {clean(m.get('uuid'))}  parent {clean(m.get('parent'))}  type {clean(m.get('type'))}"
                       f"  group {m.get('iommu_group')}" + (f"  owner: {_domain_label(vm)}" if vm else ""))
    users = (doc.get("pasid") or {}).get("users") or []
    if users:
        out.append("")
        out.append(paint(f"PASID users: {len(users)}", "bold"))
        for u in users:
            out.append(f"  {clean(u.get('device'))}  pid {u.get('pid') if u.get('pid') is not None else '-'}  ({clean(u.get('source'))})")

    warnings = doc.get("warnings") or []
    out.append("")
    if warnings:
        out.append(paint(_plural(len(warnings), "warning"), "yellow") + " (what the agent could not read or parse):")
        out += [f"  {clean(w)}" for w in warnings[:SHOWN_WARNINGS]]
        if len(warnings) > SHOWN_WARNINGS:
            out.append(f"  … and {len(warnings) - SHOWN_WARNINGS} more (`fleet-agent collect --pretty` lists them all)")
    else:
        out.append("0 warnings")
    return "\n".join(out) + "\n"
