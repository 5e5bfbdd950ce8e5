"""QEMU and libvirt versions from dpkg's status file: hand-made trees standing for a Debian host
(the captures' initramfs roots have no package database)."""
from agent.collectors import software
from agent.paths import Root
from agent.sysfs import Reader
from tests.agent.handmade import write

STATUS = """Package: libvirt-daemon
Status: install ok installed
Version: 9.0.0-4+deb12u2

Package: qemu-system-x86
Status: deinstall ok config-files
Version: 1:7.2+dfsg-7+deb12u5

Package: qemu-system-x86-64
Status: install ok installed
Architecture: amd64
Version: 1:7.2+dfsg-7+deb12u18
"""


def test_installed_packages_give_the_versions_and_a_removed_one_is_not_taken(tmp_path):
    # qemu-system-x86 left only its config files: the installed qemu is the other package's.
    write(tmp_path, "var/lib/dpkg/status", STATUS)
    rd = Reader(Root.of(tmp_path))
    assert software.collect(rd) == {"qemu": "1:7.2+dfsg-7+deb12u18", "libvirt": "9.0.0-4+deb12u2"}
    assert rd.warnings.as_list() == []


def test_without_a_package_database_both_are_unknown(tmp_path):
    rd = Reader(Root.of(tmp_path))
    assert software.collect(rd) == {"qemu": None, "libvirt": None}
    assert rd.warnings.as_list() == []


def test_an_implausible_version_is_unknown_with_a_warning(tmp_path):
    write(tmp_path, "var/lib/dpkg/status", "Package: libvirt0\nStatus: install ok installed\nVersion: " + "9" * 300 + "\n")
    rd = Reader(Root.of(tmp_path))
    assert software.collect(rd)["libvirt"] is None
    assert any(w.startswith("/var/lib/dpkg/status: libvirt version implausibly long") for w in rd.warnings.as_list())
