"""IOMMU units from `/sys/class/iommu/*`: vendor, raw registers, decoded features, translated devices."""
from __future__ import annotations

from ..bdf import is_bdf
from ..integers import parse_int
from ..kernel import kernel_tuple
from ..sysfs import Reader

CLASS_IOMMU = "/sys/class/iommu"

# Order of the AMD `features` pair. Kernels that added EFR2 printed `features2:features`
# (EFR2:EFR; QEMU's AMD-Vi showed `0:29d3` under Linux 6.1). The commit "iommu/amd: Consolidate
# feature detection and reporting logic" (IOMMU updates for Linux v6.7) switched the attribute
# to `amd_iommu_efr:amd_iommu_efr2` (EFR:EFR2; `29d3:0` under 6.12). A distribution kernel that
# backported that commit to an older release would be misread: the release is all sysfs tells.
AMD_EFR_FIRST_SINCE = (6, 7)

_FEATURE_BOOLS = ("pasid", "scalable_mode", "page_requests", "interrupt_remapping", "nesting", "pass_through",
                  "caching_mode", "device_tlb", "posted_interrupts", "gt", "ppr")
_FEATURE_INTS = ("pasid_width", "domains_supported", "domains_used")
_INTEL_FILES = ("cap", "ecap", "version", "address", "domains_supported", "domains_used")
_AMD_FILES = ("cap", "features")


def empty_features() -> dict:
    features: dict = {key: None for key in _FEATURE_BOOLS}
    features.update({key: None for key in _FEATURE_INTS})
    return features


def _bit(value: int, n: int) -> bool:
    return bool((value >> n) & 1)


def decode_intel(cap: int | None, ecap: int | None) -> dict:
    """VT-d capability and extended capability registers -> features (DOMAIN.md §4)."""
    f = empty_features()
    if ecap is not None:
        f["device_tlb"] = _bit(ecap, 2)
        f["interrupt_remapping"] = _bit(ecap, 3)
        f["pass_through"] = _bit(ecap, 6)
        f["nesting"] = _bit(ecap, 26)
        f["page_requests"] = _bit(ecap, 29)
        f["pasid"] = _bit(ecap, 40)
        f["scalable_mode"] = _bit(ecap, 43)
        # PSS only means something when PASID is supported.
        f["pasid_width"] = ((ecap >> 35) & 0x1F) + 1 if f["pasid"] else None
    if cap is not None:
        f["caching_mode"] = _bit(cap, 7)
        f["posted_interrupts"] = _bit(cap, 59)
        f["domains_supported"] = 1 << (4 + 2 * (cap & 0x7))
    return f


def split_amd_features(text: str, kernel: str | None) -> tuple[int | None, int | None]:
    """`features` -> (EFR, EFR2). One value is the EFR; a pair's order depends on the kernel
    (see AMD_EFR_FIRST_SINCE). Unknown kernel with a pair -> (None, None): never guess by position."""
    parts = [p.strip() for p in text.strip().split(":")]
    if len(parts) == 1:
        return parse_int(parts[0], base=16), None
    if len(parts) != 2:
        return None, None
    version = kernel_tuple(kernel)
    if version is None:
        return None, None
    a, b = parse_int(parts[0], base=16), parse_int(parts[1], base=16)
    return (a, b) if version >= AMD_EFR_FIRST_SINCE else (b, a)


def decode_amd(efr: int | None) -> dict:
    """AMD Extended Feature Register -> features: PPR bit 1, GT bit 4, PASmax bits 36:32."""
    f = empty_features()
    if efr is None:
        return f
    f["ppr"] = _bit(efr, 1)
    f["gt"] = _bit(efr, 4)
    f["page_requests"] = f["ppr"]
    f["pasid"] = f["gt"] and f["ppr"]
    f["pasid_width"] = ((efr >> 32) & 0x1F) + 1 if f["pasid"] else None
    return f


def detect_vendor(name: str, entries: set[str], device_link: str | None) -> str:
    if "intel-iommu" in entries:
        return "intel"
    if "amd-iommu" in entries:
        return "amd"
    if name.startswith(("smmu3.", "smmu.")):
        return "arm"
    if name.startswith("virtio") or (device_link and "virtio" in device_link):
        return "virtio"
    return "unknown"


def _is_hex(text: str) -> bool:
    return parse_int(text, base=16) is not None


def _is_decimal(text: str) -> bool:
    return parse_int(text) is not None


def _is_version(text: str) -> bool:
    parts = text.split(":")
    return len(parts) == 2 and all(map(_is_decimal, parts))


def _is_hex_or_pair(text: str) -> bool:
    parts = text.split(":")
    return len(parts) in (1, 2) and all(map(_is_hex, parts))


# How the drivers print each register file (drivers/iommu/intel/iommu.c, drivers/iommu/amd/iommu.c):
# hex without 0x, `%d:%d` for the version, decimal counts; AMD `features` is one hex value or a pair.
_REGISTER_FORMATS = {
    "cap": ("a hex register", _is_hex),
    "ecap": ("a hex register", _is_hex),
    "address": ("a hex register", _is_hex),
    "version": ("a major:minor version", _is_version),
    "domains_supported": ("an integer", _is_decimal),
    "domains_used": ("an integer", _is_decimal),
    "features": ("a hex register or pair", _is_hex_or_pair),
}


def _registers(rd: Reader, base: str, subdir: str, files: tuple[str, ...], required: tuple[str, ...]) -> dict:
    """The register texts in their kernel format; a garbled one is left out with a warning, so the
    snapshot never carries it as a register. Only the files every kernel with this driver has are
    warned about when missing."""
    registers = {}
    for fname in files:
        path = f"{base}/{subdir}/{fname}"
        text = rd.text(path, missing_ok=fname not in required)
        if text is None:
            continue
        what, well_formed = _REGISTER_FORMATS[fname]
        if well_formed(text):
            registers[fname] = text
        else:
            rd.warn(path, f"not {what} ({text[:40]!r})")
    return registers


def collect_one(rd: Reader, name: str, kernel: str | None) -> dict:
    base = f"{CLASS_IOMMU}/{name}"
    entries = set(rd.listdir(base))
    device_link = rd.readlink(f"{base}/device", missing_ok=True) if "device" in entries else None
    vendor = detect_vendor(name, entries, device_link)
    registers: dict = {}
    features = empty_features()
    if vendor == "intel":
        # cap, ecap, version and address have been there since the intel-iommu sysfs group (3.17).
        registers = _registers(rd, base, "intel-iommu", _INTEL_FILES, ("cap", "ecap", "version", "address"))
        features = decode_intel(parse_int(registers.get("cap"), base=16), parse_int(registers.get("ecap"), base=16))
        supported = parse_int(registers.get("domains_supported"))
        if supported is not None:
            features["domains_supported"] = supported
        features["domains_used"] = parse_int(registers.get("domains_used"))
    elif vendor == "amd":
        registers = _registers(rd, base, "amd-iommu", _AMD_FILES, ("features",))
        text = registers.get("features")
        if text is not None:
            efr, _efr2 = split_amd_features(text, kernel)
            if efr is None:
                rd.warn(f"{base}/amd-iommu/features",
                        f"cannot tell EFR in {text[:40]!r} (kernel {kernel or 'unknown'}); features unknown")
            features = decode_amd(efr)
    # iommu_device_sysfs_add() gives every unit a `devices/` directory, even one translating nothing.
    devices = sorted(d for d in rd.listdir(f"{base}/devices") if is_bdf(d))
    return {"name": rd.printable(base, name), "vendor": vendor, "devices": devices, "registers": registers, "features": features}


def collect(rd: Reader, kernel: str | None) -> list[dict]:
    """`kernel` is the release the host collector read (the AMD register layout depends on it);
    passed in so one collection reads /proc/version and osrelease once."""
    names = rd.listdir(CLASS_IOMMU, missing_ok=True)
    return [rd.isolated(f"{CLASS_IOMMU}/{name}", "its attributes left unknown", _unknown_unit(rd, name),
                        collect_one, rd, name, kernel) for name in names]


def _unknown_unit(rd: Reader, name: str) -> dict:
    return {"name": rd.printable(CLASS_IOMMU, name), "vendor": "unknown", "devices": [], "registers": {},
            "features": empty_features()}
