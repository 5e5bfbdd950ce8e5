"""The capacity finder and the group search terms, on hand-made hosts (each standing for a real case),
a real capture's ground truth, and synthetic hosts where SQL and the Python check must agree."""
import pytest

from fleet.decisions.finder import capacity_find
from fleet.decisions.groups import assess_group, group_free_q
from fleet.inventory.models import Device, Host, Label
from fleet.web.device_query import parse_device_query
from fleet.web.selectors.search import devices_matching
from tests.accounts.fleet_data import import_capture
from tests.agent.groundtruth import find_groups, lspci_drivers
from tests.decisions.states import gpu_server, shared_gpu_host

pytestmark = pytest.mark.django_db


def found(q: str, count: int = 10):
    return capacity_find(parse_device_query(q), count=count)


def matching(q: str) -> set[tuple[str, str]]:
    return set(devices_matching(parse_device_query(q)).values_list("host__hostname", "bdf"))


def test_finder_returns_whole_free_groups_fewest_companions_first():
    gpu_server()
    picks = found("class:gpu").picks
    assert [(p["device"], p["companions"]) for p in picks] == [
        ("0000:01:00.0", []), ("0000:02:00.0", []),    # alone in their groups (root ports have their own)
        ("0000:03:00.0", ["0000:03:00.1"]),            # the HDMI audio function goes along
    ]
    assert picks[2]["devices"] == ["0000:03:00.0", "0000:03:00.1"]
    assert [p["rank"] for p in picks] == [1, 2, 3]


def test_a_group_with_the_boot_disk_controller_is_not_free():
    gpu_server()
    assert "0000:04:00.0" not in {p["device"] for p in found("class:gpu").picks}
    members = list(Device.objects.filter(host__hostname="gpu-a", group_number=13).values(
        "bdf", "class_code", "driver", "is_bridge", "owner_pid", "owner_vm"))
    judged = assess_group("0000:04:00.0", members, group_number=13)
    assert not judged.free and judged.reasons == ["host-critical member: 0000:05:00.0"]


def test_vm_none_lists_a_gpu_sharing_a_group_with_an_assigned_gpu_and_group_free_does_not():
    shared_gpu_host()
    assert ("gpu-b", "0000:0b:00.0") in matching("class:gpu vm:none")
    assert matching("class:gpu vm:none group:free") == {("gpu-b", "0000:0c:00.0")}
    assert [p["device"] for p in found("class:gpu").picks] == ["0000:0c:00.0"]


def test_count_bounds_the_picks_and_counts_cover_every_free_group():
    gpu_server()
    shared_gpu_host()
    Host.objects.get(hostname="gpu-a").labels.add(Label.objects.create(name="rack-1"))
    result = found("class:gpu", count=2)
    assert len(result.picks) == 2
    assert result.free_groups == 4  # gpu-a: 10, 11, 12; gpu-b: 21
    assert {r["host"]: r["groups"] for r in result.per_host} == {"gpu-a": 3, "gpu-b": 1}
    assert result.per_label == [{"label": "rack-1", "hosts": 1, "groups": 3}]


def test_group_single_and_the_group_size_column():
    gpu_server()
    assert matching("host:gpu-a class:gpu group:single") == {("gpu-a", "0000:01:00.0"), ("gpu-a", "0000:02:00.0")}
    from fleet.web.selectors.search import devices_search_page
    page = devices_search_page(parse_device_query("host:gpu-a bdf:03:00.0"), 1, per_page=10)
    assert [d["group_size"] for d in page.devices] == [2]


def test_a_group_under_an_open_critical_violation_is_not_free(capture):
    # shared-bridge-group: 02:01.0 on vfio-pci, 02:02.0 on e1000 behind one PCIe-to-PCI bridge (group-mixed-ownership).
    root = capture("shared-bridge-group")
    host = import_capture(root)
    from fleet.policy.services import violations_sync_for_host
    violations_sync_for_host(host=host)
    groups = find_groups(root)
    drivers = lspci_drivers(root)
    nic_group = next(g for g, b in groups if drivers[b]["driver"] == "vfio-pci")
    members = {b for g, b in groups if g == nic_group}
    assert not matching(f"host:{host.hostname} group:{nic_group} group:free")
    assert len(members) == 3  # the bridge and both NICs: the case is what the capture says it is


def test_isolated_nics_free_groups_match_the_captures_ground_truth(capture):
    # Three e1000e NICs, each alone behind its root port; 02:00.0 on vfio-pci is held by tenant-a-vm1 (ps.txt).
    root = capture("isolated-nics")
    host = import_capture(root)
    drivers = lspci_drivers(root)
    groups = find_groups(root)
    held = {"0000:02:00.0"}  # qemu-cmdline.txt / ps.txt: -device vfio-pci,host=0000:02:00.0
    nics = {b for b, d in drivers.items() if d["driver"] in ("e1000e", "vfio-pci")}
    alone = {b for b in nics if sum(1 for g, x in groups if g == next(g2 for g2, y in groups if y == b)) == 1}
    got = {p["device"] for p in found(f"host:{host.hostname} class:nic").picks}
    assert got == alone - held
    assert got  # the capture has free NICs


def test_sql_cut_and_python_check_agree_on_synthetic_hosts():
    # Showcase hosts of the demo fleet: a DGX-2H with idle and held GPUs, the split-group and mixed-ownership DGX-2Hs.
    from fleet.demo.synth import host as synth_host
    from tests.policy.dbhosts import apply_and_sync, host_named
    from tests.decisions.states import AT
    for index in (0, 1, 8):
        doc = synth_host(index)
        apply_and_sync(host_named(doc["host"]["hostname"]), doc, AT)
    free_sql = set(Device.objects.filter(group_free_q()).values_list("host_id", "bdf"))
    from fleet.decisions.finder import _critical_subjects
    critical = _critical_subjects(Host.objects.values_list("id", flat=True))
    rows = list(Device.objects.filter(group_id__isnull=False).values(
        "id", "host_id", "group_id", "group_number", "bdf", "class_code", "driver", "is_bridge", "owner_pid", "owner_vm"))
    by_group: dict = {}
    for r in rows:
        by_group.setdefault(r["group_id"], []).append(r)
    free_py = {(r["host_id"], r["bdf"]) for r in rows if not r["is_bridge"] and assess_group(
        r["bdf"], by_group[r["group_id"]], critical_subjects=critical.get(r["host_id"], set()), group_number=r["group_number"]).free}
    assert free_sql == free_py
    assert free_sql and len(free_sql) < len(rows)


def test_port_and_numa_terms_follow_the_captures_tree(capture):
    # isolated-nics: each NIC sits below its own PCIe root port (lspci -tvnn).
    from tests.agent.groundtruth import lspci_tree_parents
    root = capture("isolated-nics")
    host = import_capture(root)
    parents = lspci_tree_parents(root)
    nic, port = next((b, p) for b, p in sorted(parents.items()) if p and lspci_drivers(root)[b]["driver"] == "e1000e")
    assert matching(f"host:{host.hostname} port:{port[5:]}") == {(host.hostname, nic)}
    numa = Device.objects.get(host=host, bdf=nic).numa_node
    if numa is not None and numa >= 0:
        assert (host.hostname, nic) in matching(f"host:{host.hostname} numa:{numa}")
    assert parse_device_query("numa:x port:zz").errors == ["numa:x needs a NUMA node number", "port:zz is not dddd:bb:dd.f or bb:dd.f"]
