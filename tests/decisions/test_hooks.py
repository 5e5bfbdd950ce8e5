"""The VM-start hooks run exactly as libvirt and Proxmox run them (argv, stdin, exit status, stderr) against a
live test server; the system Python in isolated mode, so they prove they need nothing but the standard library."""
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.accounts.services import api_token_issue
from tests.accounts.fleet_data import import_capture
from tests.agent.groundtruth import lspci_drivers

pytestmark = pytest.mark.django_db(transaction=True)
HOOKS = Path(__file__).resolve().parents[2] / "deploy" / "hooks"
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
CAPTURE = "shared-bridge-group"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def setup(live_server, capture, users, tmp_path):
    root = capture(CAPTURE)
    host = import_capture(root)
    drivers = lspci_drivers(root)
    token_file = tmp_path / "token"
    token_file.write_text(api_token_issue(user=users["viewer"], scopes=("preflight",))[1] + "\n")
    token_file.chmod(0o600)

    def config(server=live_server.url, unreachable="closed") -> dict:
        path = tmp_path / f"preflight-{unreachable}.conf"
        path.write_text(f"[preflight]\nserver = {server}\ntoken_file = {token_file}\ntimeout = 10\n"
                        f"unreachable = {unreachable}\nhost = {host.hostname}\ntenant = acme\n")
        return {**os.environ, "FLEET_PREFLIGHT_CONFIG": str(path)}

    assigned = next(b for b, d in drivers.items() if d["driver"] == "vfio-pci")
    host_nic = next(b for b, d in drivers.items() if d["driver"] == "e1000")
    return {"config": config, "assigned": assigned, "host_nic": host_nic, "tmp": tmp_path}


def hostdev(bdf: str) -> str:
    domain, bus, rest = bdf.split(":")
    slot, function = rest.split(".")
    return (f"<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x{domain}' bus='0x{bus}' "
            f"slot='0x{slot}' function='0x{function}'/></source></hostdev>")


def domain_xml(*bdfs: str) -> str:
    return (f"<domain type='kvm'><name>acme-vm1</name><devices><disk type='file'/>{''.join(hostdev(b) for b in bdfs)}"
            "</devices></domain>")


def libvirt(env, *argv, stdin=""):
    return subprocess.run([PYTHON, "-I", str(HOOKS / "qemu"), *argv], input=stdin, env=env, capture_output=True,
                          text=True, timeout=60)


def proxmox(env, *argv):
    return subprocess.run([PYTHON, "-I", str(HOOKS / "proxmox-preflight.py"), *argv], env=env, capture_output=True,
                          text=True, timeout=60)


def test_libvirt_hook_refuses_a_start_that_breaks_isolation(setup):
    done = libvirt(setup["config"](), "acme-vm1", "prepare", "begin", "-", stdin=domain_xml(setup["assigned"]))
    assert done.returncode == 1, done.stderr
    assert "refused" in done.stderr and "group-mixed-ownership" in done.stderr
    assert f"/sys/bus/pci/devices/{setup['host_nic']}/driver/unbind" in done.stderr  # the plan, for the VM's log


def test_libvirt_hook_lets_a_whole_group_start(setup):
    xml = domain_xml(setup["assigned"], setup["host_nic"])
    done = libvirt(setup["config"](), "acme-vm1", "prepare", "begin", "-", stdin=xml)
    assert done.returncode == 0, done.stderr


def test_libvirt_hook_ignores_other_operations_and_domains_without_hostdevs(setup):
    env = setup["config"](server=f"http://127.0.0.1:{closed_port()}")
    assert libvirt(env, "acme-vm1", "started", "begin", "-", stdin=domain_xml(setup["assigned"])).returncode == 0
    assert libvirt(env, "acme-vm1", "release", "end", "-", stdin=domain_xml(setup["assigned"])).returncode == 0
    assert libvirt(env, "acme-vm1", "prepare", "begin", "-", stdin=domain_xml()).returncode == 0
    no_config = {**env, "FLEET_PREFLIGHT_CONFIG": str(setup["tmp"] / "missing.conf")}
    assert libvirt(no_config, "acme-vm1", "prepare", "begin", "-", stdin=domain_xml()).returncode == 0
    refused = libvirt(no_config, "acme-vm1", "prepare", "begin", "-", stdin=domain_xml(setup["assigned"]))
    assert refused.returncode == 1 and "cannot read" in refused.stderr


def test_unreachable_server_fails_closed_or_open_as_configured(setup):
    server = f"http://127.0.0.1:{closed_port()}"
    xml = domain_xml(setup["assigned"], setup["host_nic"])
    closed = libvirt(setup["config"](server=server), "acme-vm1", "prepare", "begin", "-", stdin=xml)
    assert closed.returncode == 1 and "unreachable = closed" in closed.stderr
    opened = libvirt(setup["config"](server=server, unreachable="open"), "acme-vm1", "prepare", "begin", "-", stdin=xml)
    assert opened.returncode == 0 and "starting anyway" in opened.stderr


def test_libvirt_hook_refuses_xml_that_does_not_parse(setup):
    done = libvirt(setup["config"](), "acme-vm1", "prepare", "begin", "-", stdin="<domain><devices>")
    assert done.returncode == 1 and "does not parse" in done.stderr


def _pve(setup, conf: str, functions=()) -> dict:
    configs = setup["tmp"] / "qemu-server"
    configs.mkdir(exist_ok=True)
    (configs / "100.conf").write_text(conf)
    sysfs = setup["tmp"] / "sys" / "bus" / "pci" / "devices"
    sysfs.mkdir(parents=True, exist_ok=True)
    for bdf in functions:
        (sysfs / bdf).mkdir(exist_ok=True)
    return {**setup["config"](), "FLEET_PVE_CONFIG_DIR": str(configs), "FLEET_SYSFS": str(setup["tmp"] / "sys")}


def test_proxmox_hookscript_refuses_pre_start_on_deny(setup):
    env = _pve(setup, f"name: acme-vm1\nmemory: 4096\nhostpci0: {setup['assigned']},pcie=1\n"
                      f"\n[before-upgrade]\nhostpci0: {setup['host_nic']}\n")
    done = proxmox(env, "100", "pre-start")
    assert done.returncode == 1 and "acme-vm1" in done.stderr and "refused" in done.stderr
    assert proxmox(env, "100", "post-start").returncode == 0


def test_proxmox_hookscript_reads_host_lists_and_whole_slots(setup):
    a, b = setup["assigned"], setup["host_nic"]
    env = _pve(setup, f"name: acme-vm1\nhostpci0: host={a[5:]};{b[5:]},pcie=1\n")
    assert proxmox(env, "100", "pre-start").returncode == 0, "both NICs named: the whole group goes"
    if a[:-2] == b[:-2]:
        pytest.skip("the capture's NICs share a slot")
    env = _pve(setup, f"name: acme-vm1\nhostpci0: {a[5:-2]}\n", functions=[a])  # bus:slot, every function of it
    done = proxmox(env, "100", "pre-start")
    assert done.returncode == 1 and a in done.stderr


def test_proxmox_mapping_entries_follow_the_unreachable_setting(setup):
    env = _pve(setup, "name: acme-vm1\nhostpci0: mapping=gpu-pool,pcie=1\n")
    done = proxmox(env, "100", "pre-start")
    assert done.returncode == 1 and "mapping=gpu-pool" in done.stderr
