"""What `fleet-agent show` flags, as (severity, text) pairs: `red` breaks isolation, `yellow` deserves a look.

Pure functions of a snapshot document (and the ownership model), shared by the terminal view, its
`--json` form and its exit code, so the three never disagree.
"""
from __future__ import annotations

from .drivers import is_host_dma_driver, is_userspace_driver
from .explain import group_reasons
from .integers import parse_int
from .kernel import DMA_OWNERSHIP_SINCE, kernel_tuple
from .ownership import Ownership
from .show_holders import holder_label
from .terminal import clean

RED, YELLOW = "red", "yellow"


def device_owners(doc: dict, model: Ownership) -> dict[str, list[dict]]:
    """Device -> the holders the kernel lets reach it (the ownership model's reach, best first)."""
    by_pid = {h.get("pid"): h for h in doc.get("holders") or [] if isinstance(h, dict)}
    return {b: [by_pid[r.pid] for r in d.reach if r.pid in by_pid] for b, d in model.devices.items() if d.reach}


def libvirt_assigned(doc: dict) -> dict[str, list[dict]]:
    """Device -> the libvirt domains whose XML assigns it (running or only defined)."""
    by_device: dict[str, list[dict]] = {}
    for dom in (doc.get("libvirt") or {}).get("domains") or []:
        for bdf in dom.get("hostdevs") or []:
            by_device.setdefault(bdf, []).append(dom)
    return by_device


def iommu_state(doc: dict) -> tuple[str, str]:
    iommu = doc.get("iommu") or {}
    real = [g for g in doc.get("groups") or [] if g.get("name") != "vfio-noiommu"]
    if not iommu.get("enabled"):
        return "off", "red"
    if real and all(g.get("type") == "identity" for g in real):
        return "on, passthrough: identity domains, host drivers DMA untranslated", "yellow"
    return "on", "green"


def host_problems(doc: dict, state: str) -> list[tuple[str, str]]:
    """(severity, text) of the host as a whole: `red` breaks isolation, `yellow` deserves a look."""
    host = doc.get("host") or {}
    vfio = doc.get("vfio") or {}
    devices = doc.get("devices") or []
    out = []
    assigned = [d for d in devices if is_userspace_driver(d.get("driver"))] or doc.get("holders")
    if state == "off" and assigned:
        out.append(("red", "IOMMU off while devices are assigned to userspace: nothing isolates their DMA"))
    version = kernel_tuple(host.get("kernel"))
    if assigned and version is not None and version < DMA_OWNERSHIP_SINCE:
        out.append(("yellow", "kernel before 5.19 with assigned devices: a host driver binding into an assigned "
                              "group crashes the host"))
    flags = host.get("cmdline_flags") or {}
    if flags.get("pcie_acs_override"):
        out.append(("red", f"pcie_acs_override={clean(flags['pcie_acs_override'])}: groups no longer reflect "
                           "hardware isolation"))
    for option in flags.get("pci_acs") or []:
        out.append(("yellow", f"pci={clean(option)}: ACS behaviour changed from the command line"))
    params = vfio.get("parameters") or {}
    for key in ("type1_allow_unsafe_interrupts", "iommufd_allow_unsafe_interrupts"):
        if (params.get(key) or "").strip() in ("Y", "1"):
            out.append(("red", f"{key} = {clean(params[key])}: MSI injection from a guest is possible"))
    return out


def group_flags(group: dict, by_bdf: dict[str, dict], owners: dict[str, list[dict]], *,
                all_identity: bool = False, assigned: dict[str, list[dict]] | None = None,
                viable: bool | None = None) -> list[tuple[str, str]]:
    """(severity, text) flags for one group: `red` breaks isolation, `yellow` deserves a look.
    On a passthrough host (every group identity) the header says it once instead of every group."""
    members = [by_bdf.get(b, {"bdf": b}) for b in group.get("devices") or []]
    userspace = [d for d in members if is_userspace_driver(d.get("driver")) or owners.get(d["bdf"])]
    host_dma = [d for d in members if is_host_dma_driver(d.get("driver"))]
    endpoints = [d for d in members if not d.get("is_bridge")]
    flags = []
    if userspace and host_dma:
        drivers = sorted({clean(d.get("driver")) for d in userspace + host_dma if d.get("driver")})
        flags.append(("red", f"not viable: mixed drivers ({', '.join(drivers)}) — userspace cannot claim this group"))
    if userspace and len(endpoints) > 1 and viable is not False:
        # A non-viable group gives userspace no DMA at all: its members cannot reach each other for it.
        flags.append(("red", f"peer-to-peer DMA: {len(endpoints)} endpoints share this group with a VFIO/UIO member"))
    vms = {h.get("vm") or h.get("workload") for d in members for h in owners.get(d["bdf"], [])}
    domains = {dom.get("name"): dom for d in members for dom in (assigned or {}).get(d["bdf"], [])}
    vms |= set(domains)
    if len(vms) > 1:
        flags.append(("red", f"split owners: {', '.join(sorted(clean(v) for v in vms if v) or ['?'])}"
                             " — one DMA domain shared between them"))
    labels = {(lab.get("model"), lab.get("label")) for dom in domains.values() for lab in dom.get("seclabels") or []
              if lab.get("label")}
    models = {m for m, _ in labels}
    if any(sum(1 for m2, _ in labels if m2 == m) > 1 for m in models):
        shown = ", ".join(sorted(f"{clean(m)} {clean(lab)}" for m, lab in labels))
        flags.append(("red", f"members carry different security labels ({shown})"))
    if group.get("type") == "identity" and not all_identity:
        flags.append(("yellow", "identity domain: host drivers DMA untranslated"))
    if group.get("name") == "vfio-noiommu":
        flags.append(("red", "VFIO no-IOMMU group: no isolation at all"))
    return flags


def node_flags(group_id, nodes: list[dict], holders: list[dict]) -> list[tuple[str, str]]:
    """Device-node permission problems for one group (DOMAIN.md device-node-permissions)."""
    flags = []
    mine = [n for n in nodes if n.get("group") == group_id and n.get("kind") in ("group", "noiommu_group")]
    for node in mine:
        mode = parse_int(node.get("mode"), base=8) or 0
        path = clean(node.get("path"))
        if mode & 0o066:
            flags.append(("red", f"{path} is mode {clean(node.get('mode'))}: users other than its owner can open it"))
        for h in holders:
            if path in (h.get("nodes") or []) and h.get("uid") not in (None, 0, node.get("uid")):
                flags.append(("yellow", f"{path} is owned by uid {node.get('uid')} but held by uid {h.get('uid')}"))
    return flags


def refused_flags(members: list[str], model: Ownership, holders: list[dict]) -> list[tuple[str, str]]:
    """A holder whose fd on this group's devices the kernel refuses (not viable): it owns nothing."""
    by_pid = {h.get("pid"): h for h in holders if isinstance(h, dict)}
    pids = sorted({r.pid for b in members if b in model.devices for r in model.devices[b].refused})
    return [("yellow", f"held by {holder_label(by_pid[p]) if p in by_pid else f'pid {p}'}, refused by the kernel "
                       "(group not viable): it can reach none of these devices") for p in pids]


def group_sections(doc: dict, model: Ownership, state: str) -> list[tuple[dict, list[str], list[tuple[str, str]], list[str]]]:
    """Per group of the snapshot: (group, member BDFs, flags, why its members share it)."""
    by_bdf = {d.get("bdf"): d for d in doc.get("devices") or []}
    owners, assigned = device_owners(doc, model), libvirt_assigned(doc)
    nodes = (doc.get("vfio") or {}).get("nodes") or []
    holders = doc.get("holders") or []
    out = []
    for g in doc.get("groups") or []:
        members = [b for b in g.get("devices") or [] if isinstance(b, str)]
        viability = model.groups.get(g.get("id"))
        flags = group_flags(g, by_bdf, owners, all_identity=state.startswith("on, passthrough"), assigned=assigned,
                            viable=viability.viable if viability else None)
        flags += node_flags(g.get("id"), nodes, holders)
        flags += refused_flags(members, model, holders)
        out.append((g, members, flags, group_reasons(members, by_bdf)))
    return out


SEVERITY_WORDS = {RED: "critical", YELLOW: "warning"}


def shown_problems(doc: dict, model: Ownership, only=None) -> tuple[list[tuple[str, str]], list[tuple]]:
    """(host problems, group sections) as `fleet-agent show` prints them; with a selection only its groups,
    and no host problems (they are not about the selected devices)."""
    state, _ = iommu_state(doc)
    sections = group_sections(doc, model, state)
    if only is None:
        return host_problems(doc, state), sections
    return [], [sec for sec in sections if only.keeps_group(sec[0], sec[1])]


def critical_shown(doc: dict, model: Ownership, only=None) -> bool:
    """Whether what is shown breaks isolation somewhere: the exit code's question."""
    host, sections = shown_problems(doc, model, only)
    return any(sev == RED for sev, _ in host) or any(sev == RED for _, _, flags, _ in sections for sev, _ in flags)


def as_json(doc: dict, model: Ownership, only=None) -> dict:
    """The view as data (`fleet-agent show --json`): every string as the host gave it, for a program to read."""
    host, sections = shown_problems(doc, model, only)
    state, _ = iommu_state(doc)
    word = lambda flags: [{"severity": SEVERITY_WORDS.get(sev, sev), "text": text} for sev, text in flags]  # noqa: E731
    groups = []
    for g, members, flags, reasons in sections:
        viability = model.groups.get(g.get("id"))
        groups.append({"id": g.get("id"), "type": g.get("type"), "devices": members,
                       "viable": viability.viable if viability else None, "problems": word(flags), "why": reasons})
    kept = {b for _, members, _, _ in sections for b in members} | (set(only.bdfs) if only else set())
    devices = [model.devices[b].as_dict() for b in sorted(model.devices) if only is None or b in kept]
    info = doc.get("host") or {}
    return {"hostname": info.get("hostname"), "kernel": info.get("kernel"), "iommu": state,
            "problems": word(host), "groups": groups, "devices": devices,
            "address_spaces": [s.as_dict() for s in model.address_spaces] if only is None else None,
            "critical": critical_shown(doc, model, only)}
