"""Config-space decoding on literal bytes, and the unknown-versus-absent rules for cut reads."""
import struct

from agent.collectors import config_space, pci
from agent.paths import Root
from agent.sysfs import Reader
from tests.agent import groundtruth as gt


def config(header_type=0x00, status_caps=True, size=4096):
    """A blank function: vendor 8086, the header type given, capability list bit as asked."""
    cfg = bytearray(size)
    struct.pack_into("<HH", cfg, 0, 0x8086, 0x1234)
    struct.pack_into("<H", cfg, 0x06, 0x10 if status_caps else 0)
    cfg[0x0E] = header_type
    return cfg


def add_std(cfg, off, cap_id, nxt, body=b""):
    cfg[off], cfg[off + 1] = cap_id, nxt
    cfg[off + 2: off + 2 + len(body)] = body


def add_ext(cfg, off, cap_id, nxt, body=b""):
    struct.pack_into("<I", cfg, off, cap_id | (1 << 16) | (nxt << 20))
    cfg[off + 4: off + 4 + len(body)] = body


def pcie_endpoint_with(ext_caps):
    """A PCIe endpoint (PCIe cap at 0x40) whose extended list holds `ext_caps` [(id, body)] from 0x100."""
    cfg = config()
    cfg[0x34] = 0x40
    add_std(cfg, 0x40, 0x10, 0x00, struct.pack("<H", 0x0002))  # version 2, port type 0 (endpoint)
    off = 0x100
    for i, (cap_id, body) in enumerate(ext_caps):
        nxt = off + 0x40 if i + 1 < len(ext_caps) else 0
        add_ext(cfg, off, cap_id, nxt, body)
        off = nxt
    return bytes(cfg)


def test_header_only_read_reports_every_capability_as_unknown():
    caps = config_space.decode(bytes(config()[:64]))
    assert caps["header_type"] == "normal"
    c = caps["capabilities"]
    assert c["config_bytes"] == 64 and c["extended_readable"] is False
    assert [c[k] for k in ("pcie", "acs", "ats", "pri", "pasid", "sriov")] == [None] * 6


def test_header_only_read_is_unknown_even_when_the_status_register_says_no_list():
    c = config_space.decode(bytes(config(status_caps=False)[:64]))["capabilities"]
    assert [c[k] for k in ("pcie", "acs", "ats", "pri", "pasid", "sriov")] == [None] * 6


def test_real_root_port_cut_to_64_bytes_keeps_header_facts_but_no_capabilities(capture):
    raw = (capture("isolated-nics") / "sys/bus/pci/devices/0000:00:02.0/config").read_bytes()
    full, cut = config_space.decode(raw), config_space.decode(raw[:64])
    assert (cut["header_type"], cut["multifunction"]) == (full["header_type"], full["multifunction"]) == ("bridge", False)
    assert full["capabilities"]["acs"]["present"] is True
    assert cut["capabilities"]["acs"] is None and cut["capabilities"]["pcie"] is None


def test_pasid_ats_and_pri_are_decoded_from_their_extended_capabilities():
    # Stands for a DSA/IAA-class endpoint (no capture has one): PASID width 20, Exec+, Priv-, enabled;
    # ATS enabled; PRI present but disabled.
    cfg = pcie_endpoint_with([
        (0x1B, struct.pack("<HH", 0x1402, 0x0001)),  # PASID cap: width 20, Exec; ctl: Enable
        (0x0F, struct.pack("<HH", 0x0000, 0x8000)),  # ATS cap; ctl: Enable
        (0x13, struct.pack("<HH", 0x0000, 0x0000)),  # PRI ctl: disabled
    ])
    c = config_space.decode(cfg)["capabilities"]
    assert c["pasid"] == {"present": True, "enabled": True, "width": 20, "exec": True, "priv": False}
    assert c["ats"] == {"present": True, "enabled": True}
    assert c["pri"] == {"present": True, "enabled": False}
    assert c["acs"] == {"present": False}
    assert c["pcie"] == {"present": True, "port_type": "endpoint"}


def test_acs_bits_map_to_their_flags():
    # SV|RR|CR|UF capable (the kernel's isolation minimum), only SV and RR enabled.
    cfg = pcie_endpoint_with([(0x0D, struct.pack("<HH", 0x001D, 0x0005))])
    acs = config_space.decode(cfg)["capabilities"]["acs"]
    assert acs["cap"] == {"sv": True, "tb": False, "rr": True, "cr": True, "uf": True, "ec": False, "dt": False}
    assert acs["ctl"] == {"sv": True, "tb": False, "rr": True, "cr": False, "uf": False, "ec": False, "dt": False}


def test_a_looping_standard_list_terminates():
    cfg = config(size=256)
    cfg[0x34] = 0x40
    add_std(cfg, 0x40, 0x05, 0x50)
    add_std(cfg, 0x50, 0x01, 0x40)  # points back: a hostile or broken device
    c = config_space.decode(bytes(cfg))["capabilities"]
    assert c["pcie"] == {"present": False, "port_type": None}


def test_a_looping_extended_list_terminates():
    cfg = bytearray(pcie_endpoint_with([(0x0D, b"\0" * 4)]))
    add_ext(cfg, 0x100, 0x0D, 0x100)  # next points at itself
    c = config_space.decode(bytes(cfg))["capabilities"]
    assert c["acs"]["present"] is True and c["pasid"]["present"] is False


def test_conventional_function_has_extended_capabilities_absent_not_unknown():
    cfg = config(size=256, status_caps=False)
    c = config_space.decode(bytes(cfg))["capabilities"]
    assert c["extended_readable"] is False
    assert c["pcie"] == {"present": False, "port_type": None}
    assert c["acs"] == {"present": False} and c["sriov"]["present"] is False


def test_pcie_function_with_only_256_bytes_has_extended_capabilities_unknown():
    cfg = pcie_endpoint_with([(0x0D, b"\0" * 4)])[:256]
    c = config_space.decode(cfg)["capabilities"]
    assert c["pcie"]["present"] is True
    assert [c[k] for k in ("acs", "ats", "pri", "pasid", "sriov")] == [None] * 5


def test_header_type_and_multifunction_come_from_byte_0x0e():
    assert config_space.decode(bytes(config(header_type=0x81)))["header_type"] == "bridge"
    assert config_space.decode(bytes(config(header_type=0x81)))["multifunction"] is True
    assert config_space.decode(bytes(config(header_type=0x02)))["header_type"] == "cardbus"


def test_cut_config_files_give_unknown_capabilities_and_a_warning(writable_capture):
    # Stands for a non-root read, where the kernel returns only the first 64 bytes of `config`.
    root = writable_capture("isolated-nics")
    cfg = root / "sys/bus/pci/devices/0000:01:00.0/config"
    cfg.write_bytes(cfg.read_bytes()[:64])
    rd = Reader(Root.of(root))
    devices = pci.collect(rd)
    config_space.decorate(rd, devices)
    dev = next(d for d in devices if d["bdf"] == "0000:01:00.0")
    assert dev["capabilities"]["pcie"] is None and dev["capabilities"]["acs"] is None
    assert dev["header_type"] == "normal" and dev["is_bridge"] is False
    assert any(w.startswith("/sys/bus/pci/devices/0000:01:00.0/config: config space cut to 64 bytes")
               for w in rd.warnings.as_list())


def test_unreadable_config_falls_back_to_the_class_for_is_bridge(writable_capture):
    root = writable_capture("shared-bridge-group")
    (root / "sys/bus/pci/devices/0000:01:00.0/config").unlink()
    rd = Reader(Root.of(root))
    devices = pci.collect(rd)
    config_space.decorate(rd, devices)
    bridge = next(d for d in devices if d["bdf"] == "0000:01:00.0")
    lspci_class = gt.lspci_dnn(root)["0000:01:00.0"]["class4"]
    assert lspci_class == "0604"
    assert bridge["is_bridge"] is True and bridge["header_type"] is None
    assert bridge["capabilities"]["config_bytes"] is None and bridge["capabilities"]["acs"] is None
    assert "/sys/bus/pci/devices/0000:01:00.0/config: missing" in rd.warnings.as_list()
