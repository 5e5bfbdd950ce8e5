"""libvirt domain XML: which VM a device is assigned to (running or only defined), and its labels.

No capture has libvirt (the captured guests ran QEMU-like processes by hand), so these trees are
hand-made. They stand for a libvirt host with one running VM that got its NIC through iommufd fd
passing (QEMU 8.2+/libvirt 10+: no host= on QEMU's command line, the fd comes over the monitor
socket) and one defined VM that is shut off but still has a VF assigned in its definition. The XML
follows what libvirt writes: the definition under /etc, and the live status (`<domstatus>` around
the running `<domain>`) under /run.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.collectors import holders, libvirt
from agent.paths import Root
from agent.snapshot import SCHEMA_PATH, build
from agent.show import render
from agent.sysfs import Reader
from tests.agent.handmade import link, write

REPO = Path(__file__).resolve().parents[2]

HEADER = """<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:
  virsh edit {name}
or other application using the libvirt API.
-->

"""

RUNNING_DEFINITION = HEADER.format(name="tenant-z") + """<domain type='kvm'>
  <name>tenant-z</name>
  <uuid>6a1c2d8e-3b4f-4c5d-9e0f-1a2b3c4d5e6f</uuid>
  <memory unit='KiB'>4194304</memory>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio' iommufd='yes'/>
      <source>
        <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
      </source>
    </hostdev>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'/>
</domain>
"""

RUNNING_STATUS = HEADER.format(name="tenant-z") + """<domstatus state='running' reason='booted' pid='4242'>
  <taint flag='high-privileges'/>
  <monitor path='/var/lib/libvirt/qemu/domain-7-tenant-z/monitor.sock' type='unix'/>
  <domain type='kvm' id='7'>
    <name>tenant-z</name>
    <uuid>6a1c2d8e-3b4f-4c5d-9e0f-1a2b3c4d5e6f</uuid>
    <devices>
      <emulator>/usr/bin/qemu-system-x86_64</emulator>
      <hostdev mode='subsystem' type='pci' managed='yes'>
        <driver name='vfio' iommufd='yes'/>
        <source>
          <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
        </source>
        <alias name='hostdev0'/>
        <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
      </hostdev>
      <interface type='hostdev' managed='yes'>
        <source>
          <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x2'/>
        </source>
        <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>
      </interface>
    </devices>
    <seclabel type='dynamic' model='selinux' relabel='yes'>
      <label>system_u:system_r:svirt_t:s0:c392,c662</label>
      <imagelabel>system_u:object_r:svirt_image_t:s0:c392,c662</imagelabel>
    </seclabel>
    <seclabel type='dynamic' model='dac' relabel='yes'>
      <label>+107:+107</label>
      <imagelabel>+107:+107</imagelabel>
    </seclabel>
  </domain>
</domstatus>
"""

DEFINED_ONLY = HEADER.format(name="tenant-y") + """<domain type='kvm'>
  <name>tenant-y</name>
  <uuid>0f0e0d0c-0b0a-4908-8706-050403020100</uuid>
  <devices>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='mdev' model='vfio-pci'>
      <source>
        <address uuid='C2177883-F1BB-47F0-914D-32A22E3A8804'/>
      </source>
    </hostdev>
    <hostdev mode='capabilities' type='storage'>
      <source><block>/dev/sdf1</block></source>
    </hostdev>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'/>
</domain>
"""


def libvirt_host(root):
    write(root, "etc/libvirt/qemu/tenant-z.xml", RUNNING_DEFINITION)
    write(root, "etc/libvirt/qemu/tenant-y.xml", DEFINED_ONLY)
    write(root, "etc/libvirt/qemu/networks/default.xml", "<network><name>default</name></network>")
    link(root, "etc/libvirt/qemu/autostart/tenant-z.xml", "/etc/libvirt/qemu/tenant-z.xml")
    write(root, "run/libvirt/qemu/tenant-z.xml", RUNNING_STATUS)
    write(root, "run/libvirt/qemu/tenant-z.pid", "4242")
    # QEMU as libvirt starts it with fd passing: no host=, the VFIO cdev and /dev/iommu come as fds.
    argv = ["/usr/bin/qemu-system-x86_64", "-name", "guest=tenant-z,debug-threads=on",
            "-object", '{"qom-type":"iommufd","id":"iommufd0","fd":"23"}',
            "-device", '{"driver":"vfio-pci","id":"hostdev0","fd":"24","iommufd":"iommufd0"}']
    write(root, "proc/4242/cmdline", "\x00".join(argv) + "\x00")
    write(root, "proc/4242/status", "Name:\tqemu-system-x86\nUid:\t107\t107\t107\t107\n")
    link(root, "proc/4242/fd/23", "/dev/iommu")
    link(root, "proc/4242/fd/24", "/dev/vfio/devices/vfio0")
    return root


def test_a_running_and_a_defined_domain_are_read_with_their_assigned_devices(tmp_path):
    rd = Reader(Root.of(libvirt_host(tmp_path)))
    domains = {d["name"]: d for d in libvirt.collect(rd)["domains"]}
    assert set(domains) == {"tenant-z", "tenant-y"}
    z, y = domains["tenant-z"], domains["tenant-y"]
    # The live XML wins for a running domain: the VF given as a network interface is there too.
    assert (z["state"], z["pid"], z["persistent"]) == ("running", 4242, True)
    assert z["hostdevs"] == ["0000:01:00.0", "0000:01:00.2"]
    assert z["uuid"] == "6a1c2d8e-3b4f-4c5d-9e0f-1a2b3c4d5e6f"
    assert (y["state"], y["pid"], y["hostdevs"]) == ("defined", None, ["0000:01:00.1"])
    assert y["mdevs"] == ["c2177883-f1bb-47f0-914d-32a22e3a8804"]
    assert rd.warnings.as_list() == []


def test_the_dynamic_labels_libvirt_gave_the_running_domain_are_carried(tmp_path):
    rd = Reader(Root.of(libvirt_host(tmp_path)))
    domains = {d["name"]: d for d in libvirt.collect(rd)["domains"]}
    assert domains["tenant-z"]["seclabels"] == [
        {"model": "selinux", "type": "dynamic", "relabel": "yes",
         "label": "system_u:system_r:svirt_t:s0:c392,c662", "imagelabel": "system_u:object_r:svirt_image_t:s0:c392,c662"},
        {"model": "dac", "type": "dynamic", "relabel": "yes", "label": "+107:+107", "imagelabel": "+107:+107"},
    ]
    # A definition does not know its dynamic label until libvirt starts it.
    assert domains["tenant-y"]["seclabels"] == [
        {"model": "selinux", "type": "dynamic", "relabel": "yes", "label": None, "imagelabel": None}]


def test_a_holder_whose_pid_the_live_xml_names_gets_that_vm_and_its_fd_passed_devices(tmp_path):
    rd = Reader(Root.of(libvirt_host(tmp_path)))
    (h,) = holders.collect(rd, {"nodes": []}, libvirt.collect(rd))
    assert (h["pid"], h["vm"], h["kind"]) == (4242, "tenant-z", "qemu")
    assert h["devices"] == ["0000:01:00.0", "0000:01:00.2"]  # no host= anywhere on its command line
    assert h["nodes"] == ["/dev/iommu", "/dev/vfio/devices/vfio0"]


def test_the_snapshot_carries_the_libvirt_section_and_validates(tmp_path):
    root = libvirt_host(tmp_path)
    (root / "sys").mkdir()
    doc = build(Root.of(root))
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert [d["name"] for d in doc["libvirt"]["domains"]] == ["tenant-y", "tenant-z"]
    assert doc["holders"][0]["vm"] == "tenant-z"


def test_show_names_the_vm_of_a_device_no_process_holds_yet(tmp_path):
    root = libvirt_host(tmp_path)
    (root / "sys").mkdir()
    doc = build(Root.of(root))
    doc["devices"] = [{"bdf": "0000:01:00.1", "class": "010802", "vendor_id": "1b36", "device_id": "0010",
                       "driver": "vfio-pci", "parent": None, "iommu_group": None}]
    text = render(doc, color=False)
    line = next(ln for ln in text.splitlines() if "0000:01:00.1" in ln)
    assert "VM tenant-y (libvirt, defined, not running)" in line


def test_no_libvirt_directories_is_an_empty_section_without_warnings(tmp_path):
    rd = Reader(Root.of(tmp_path))
    assert libvirt.collect(rd) == {"domains": []} and rd.warnings.as_list() == []


def test_entity_declarations_are_refused_before_parsing(tmp_path):
    # The "billion laughs": expat would expand it; libvirt never writes a DTD, so any DTD is refused.
    laughs = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
              + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
              + ']><domain><name>&i;</name></domain>')
    write(tmp_path, "etc/libvirt/qemu/evil.xml", laughs)
    rd = Reader(Root.of(tmp_path))
    assert libvirt.collect(rd) == {"domains": []}
    assert rd.warnings.as_list() == [
        "/etc/libvirt/qemu/evil.xml: has a DTD or entity declarations (libvirt writes none); refused; skipped"]
    # The same in UTF-16, where the bytes `<!DOCTYPE` never appear.
    (tmp_path / "etc/libvirt/qemu/evil.xml").write_bytes(laughs.replace('"1.0"?>', '"1.0" encoding="utf-16"?>')
                                                          .encode("utf-16"))
    rd = Reader(Root.of(tmp_path))
    assert libvirt.collect(rd) == {"domains": []}
    assert rd.warnings.as_list() == ["/etc/libvirt/qemu/evil.xml: not UTF-8 (libvirt writes UTF-8); refused; skipped"]


def test_garbled_and_oversized_files_are_skipped_with_warnings_naming_them(tmp_path):
    write(tmp_path, "etc/libvirt/qemu/cut.xml", DEFINED_ONLY[: len(DEFINED_ONLY) // 2])
    write(tmp_path, "etc/libvirt/qemu/other.xml", "<network><name>x</name></network>")
    (tmp_path / "etc/libvirt/qemu/huge.xml").write_bytes(b"<domain>" + b" " * (libvirt.MAX_XML + 1))
    (tmp_path / "etc/libvirt/qemu/bytes.xml").write_bytes(b"\xff\xfe\x00garbage")
    write(tmp_path, "run/libvirt/qemu/tenant-z.xml", RUNNING_STATUS)
    rd = Reader(Root.of(tmp_path))
    domains = libvirt.collect(rd)["domains"]
    # A domain with only live XML is running but transient (no definition under /etc).
    assert [(d["name"], d["state"], d["persistent"]) for d in domains] == [("tenant-z", "running", False)]
    warned = sorted(w.split(":", 1)[0] for w in rd.warnings.as_list())
    assert warned == [f"/etc/libvirt/qemu/{n}.xml" for n in ("bytes", "cut", "huge", "other")]


def test_pci_addresses_in_every_spelling_and_nothing_else_become_bdfs():
    import xml.etree.ElementTree as ET

    def bdf(attrs):
        return libvirt.address_bdf(ET.fromstring(f"<address {attrs}/>"))

    assert bdf("domain='0x0000' bus='0x02' slot='0x00' function='0x0'") == "0000:02:00.0"
    assert bdf("bus='2' slot='31' function='7'") == "0000:02:1f.7"  # decimal, domain left out
    assert bdf("domain='0x10000' bus='0x02' slot='0x00' function='0x0'") is None
    assert bdf("bus='0x02' slot='0x20' function='0x0'") is None
    assert bdf("uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'") is None
    assert libvirt.address_bdf(None) is None



@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, len(RUNNING_STATUS)), flips=st.lists(st.tuples(st.integers(0, len(RUNNING_STATUS) - 1),
                                                                         st.integers(0, 255)), max_size=6),
       prefix=st.sampled_from([b"", b'<?xml version="1.0" encoding="x-no-such"?>', b'<?xml version="1.0" encoding="utf-16"?>',
                               b"\xef\xbb\xbf", b"\xff\xfe"]))
def test_damaged_domain_xml_is_parsed_or_refused_never_raised(cut, flips, prefix):
    raw = bytearray(RUNNING_STATUS.encode()[:cut])
    for at, byte in flips:
        if at < len(raw):
            raw[at] = byte
    try:
        dom = libvirt.parse_domain_xml(prefix + bytes(raw))
    except libvirt.DomainXMLError:
        return
    assert all(re.match(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$", b) for b in dom["hostdevs"])
    assert dom["pid"] is None or dom["pid"] >= 0


UNPRIVILEGED = (
    "import json, sys; sys.path.insert(0, sys.argv[1]);"
    "from agent.collectors import libvirt; from agent.paths import Root; from agent.sysfs import Reader;"
    "rd = Reader(Root.of(sys.argv[2])); doc = libvirt.collect(rd);"
    "print(json.dumps({'doc': doc, 'warnings': rd.warnings.as_list()}))"
)


def test_as_an_unprivileged_agent_root_only_domain_files_make_one_warning():
    # Stands for the systemd unit's unprivileged agent on a libvirt host: the XML files are 0600 root.
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop to uid 65534")
    base = Path(tempfile.mkdtemp(prefix="libvirt-host-"))
    try:
        os.chmod(base, 0o755)
        libvirt_host(base)
        for p in (base / "etc/libvirt/qemu").glob("*.xml"):
            os.chmod(p, 0o600)
        for d in (base / "etc/libvirt/qemu", base / "run/libvirt/qemu"):
            os.chmod(d, 0o755)
        proc = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                               "-c", UNPRIVILEGED, str(REPO), str(base)], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(base)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    # The live file was left world-readable (0644 by write_text): the running domain is still seen.
    assert [d["name"] for d in out["doc"]["domains"]] == ["tenant-z"]
    assert out["warnings"] == ["/etc/libvirt/qemu/*.xml: 2 domain files unreadable (permission denied): "
                               "their VM assignments and labels are not visible (needs root)"]
