"""libvirt's QEMU domains from their XML: which VM each PCI device (or mdev) is assigned to, and its
security labels.

`/etc/libvirt/qemu/<name>.xml` is every persistent domain's definition; `/run/libvirt/qemu/<name>.xml`
is the live state of an active one (`<domstatus state=… pid=…>` around its `<domain>`). They name a
device's VM even when no process holds it yet (a defined VM that is not running) and when QEMU was
handed the device by fd (iommufd fd passing: no `host=` on its command line). Both directories are
root-only; a permission error becomes a warning.

The files are root-owned, but a tree handed to the agent may be hostile: size is bounded, and a
document with a DTD is refused before parsing (libvirt never writes one), so no entity can expand.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

from ..bdf import bdf_from_numbers
from ..integers import parse_int
from ..sysfs import Reader
from .bounds import NAME_MAX, bounded

DEFINED_DIR = "/etc/libvirt/qemu"
LIVE_DIR = "/run/libvirt/qemu"
# A large domain definition is tens of kilobytes; this bounds a garbled or hostile file.
MAX_XML = 1024 * 1024
_REFUSED = ("<!DOCTYPE", "<!ENTITY")


class DomainXMLError(ValueError):
    pass


# ---- pure parsing -------------------------------------------------------------------------

def _int_attr(elem: ET.Element, name: str, default: int | None = None) -> int | None:
    text = elem.get(name)
    return default if text is None else parse_int(text, base=0)


def address_bdf(address: ET.Element | None) -> str | None:
    """`<address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>` -> `0000:02:00.0`;
    None for anything that is not a PCI address."""
    if address is None:
        return None
    domain, bus = _int_attr(address, "domain", 0), _int_attr(address, "bus")
    slot, function = _int_attr(address, "slot"), _int_attr(address, "function", 0)
    if None in (domain, bus, slot, function):
        return None
    return bdf_from_numbers(domain, bus, slot, function)


def _text(elem: ET.Element | None, path: str) -> str | None:
    value = elem.findtext(path) if elem is not None else None
    value = value.strip() if value is not None else None
    return value or None


def _seclabel(elem: ET.Element) -> dict:
    return {"model": elem.get("model"), "type": elem.get("type"), "relabel": elem.get("relabel"),
            "label": _text(elem, "label"), "imagelabel": _text(elem, "imagelabel")}


def parse_domain_xml(raw: bytes) -> dict:
    """A defined (`<domain>`) or live (`<domstatus>`) document -> {name, uuid, state, pid, hostdevs,
    mdevs, seclabels}; `state` and `pid` are None for a definition. Raises DomainXMLError."""
    # libvirt writes UTF-8. Parsing the decoded text makes expat ignore any encoding declaration, so a
    # DTD cannot hide from the check below in UTF-16 or another encoding.
    try:
        text = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise DomainXMLError("not UTF-8 (libvirt writes UTF-8); refused") from exc
    if any(marker in text for marker in _REFUSED):
        raise DomainXMLError("has a DTD or entity declarations (libvirt writes none); refused")
    try:
        top = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DomainXMLError(f"not well-formed XML ({exc})") from exc
    except (LookupError, ValueError) as exc:  # an encoding declaration Python does not know, or cannot use
        raise DomainXMLError(f"unreadable XML ({exc.__class__.__name__}: {str(exc)[:80]})") from exc
    state = pid = None
    if top.tag == "domstatus":
        state, pid = (top.get("state") or "").strip() or None, parse_int(top.get("pid"))
        domain = top.find("domain")
        if domain is None:
            raise DomainXMLError("<domstatus> without a <domain>")
    elif top.tag == "domain":
        domain = top
    else:
        raise DomainXMLError(f"root element <{top.tag[:40]}>, expected <domain> or <domstatus>")
    hostdevs, mdevs = set(), set()
    for hostdev in domain.iterfind("devices/hostdev"):
        if hostdev.get("mode", "subsystem") != "subsystem":
            continue
        if hostdev.get("type") == "pci":
            bdf = address_bdf(hostdev.find("source/address"))
            if bdf:
                hostdevs.add(bdf)
        elif hostdev.get("type") == "mdev":
            address = hostdev.find("source/address")
            uuid = address.get("uuid") if address is not None else None
            if uuid:
                mdevs.add(uuid.strip().lower())
    # An SR-IOV VF given as a network interface (`<interface type='hostdev'>`) is assigned the same way.
    for iface in domain.iterfind("devices/interface"):
        if iface.get("type") == "hostdev":
            bdf = address_bdf(iface.find("source/address"))
            if bdf:
                hostdevs.add(bdf)
    return {
        "name": _text(domain, "name"),
        "uuid": _text(domain, "uuid"),
        "state": state,
        "pid": pid,
        "hostdevs": sorted(hostdevs),
        "mdevs": sorted(mdevs),
        "seclabels": [_seclabel(s) for s in domain.findall("seclabel")],
    }


def merge_domains(defined: dict[str, dict], live: dict[str, dict]) -> list[dict]:
    """One entry per domain name. An active domain's live XML is what QEMU runs (hot-plugged devices,
    the dynamic label it was given); a definition alone is a VM that is not running (state `defined`)."""
    out = []
    for name in sorted(set(defined) | set(live)):
        source = live.get(name) or defined[name]
        out.append({
            "name": name,
            "uuid": source["uuid"] or (defined.get(name) or {}).get("uuid"),
            "state": (source["state"] or "running") if name in live else "defined",
            "pid": source["pid"] if name in live else None,
            "persistent": name in defined,
            "hostdevs": source["hostdevs"],
            "mdevs": source["mdevs"],
            "seclabels": source["seclabels"],
        })
    return out


# ---- reading ------------------------------------------------------------------------------

def _bounded_strings(rd: Reader, path: str, dom: dict) -> dict:
    for key in ("name", "uuid", "state"):
        dom[key] = bounded(rd, path, dom[key])
    for label in dom["seclabels"]:
        for key in label:
            label[key] = bounded(rd, path, label[key])
    dom["mdevs"] = [u for u in dom["mdevs"] if bounded(rd, path, u) is not None]
    return dom


def _read_xml(rd: Reader, kernel_path: str) -> bytes | None:
    """The file's first MAX_XML + 1 bytes; None (and no warning) when permission is denied, which the
    caller counts into one line: every domain file is root-only, so an unprivileged agent meets them all."""
    try:
        with open(rd.root.fspath(kernel_path), "rb") as f:
            return f.read(MAX_XML + 1)
    except PermissionError:
        return None
    except OSError:
        return rd.binary(kernel_path, MAX_XML + 1)  # gone meanwhile, a directory…: warned with its reason


def _domain(rd: Reader, path: str, raw: bytes) -> dict | None:
    try:
        return _bounded_strings(rd, path, parse_domain_xml(raw))
    except DomainXMLError as exc:
        rd.warn(path, f"{exc}; skipped")
        return None


def _read_dir(rd: Reader, directory: str) -> dict[str, dict]:
    domains: dict[str, dict] = {}
    denied = 0
    for entry in rd.listdir(directory, missing_ok=True):
        if not entry.endswith(".xml"):
            continue  # autostart/, networks/, <name>.pid, channel/ …
        path = f"{directory}/{rd.printable(directory, entry)}"
        raw = _read_xml(rd, f"{directory}/{entry}")
        if raw is None:
            denied += os.path.isfile(rd.root.fspath(f"{directory}/{entry}"))
            continue
        if len(raw) > MAX_XML:
            rd.warn(path, f"longer than {MAX_XML} bytes; skipped")
            continue
        dom = rd.isolated(path, "skipped", None, _domain, rd, path, raw)
        if dom is None:
            continue
        name = dom["name"] or entry[: -len(".xml")]
        if not dom["name"]:
            rd.warn(path, "no <name>; named after the file")
        if len(name) > NAME_MAX:
            continue
        dom["name"] = rd.printable(path, name)
        domains[dom["name"]] = dom
    if denied:
        rd.warn(f"{directory}/*.xml", f"{denied} domain file{'s' if denied > 1 else ''} unreadable (permission denied): "
                                      "their VM assignments and labels are not visible (needs root)")
    return domains


def collect(rd: Reader) -> dict:
    """{"domains": [...]}; empty when libvirt is not installed (the directories do not exist)."""
    return {"domains": merge_domains(_read_dir(rd, DEFINED_DIR), _read_dir(rd, LIVE_DIR))}


def empty() -> dict:
    return {"domains": []}
