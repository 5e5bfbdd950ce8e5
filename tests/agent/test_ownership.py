"""The ownership model: who can reach each device, through what, how surely — never more than the kernel grants."""
import re

import pytest

from agent.ownership import ARGV, INFERRED, KERNEL, VIA_CDEV, VIA_CDEV_REFUSED, VIA_GROUP, VIA_GROUP_REFUSED, ownership
from agent.paths import Root
from agent.snapshot import build


def _dev(bdf, driver, *, bridge=False, group=1):
    return {"bdf": bdf, "driver": driver, "is_bridge": bridge, "iommu_group": group}


def _doc(devices, groups, holders, *, kernel="6.1.0-56-amd64", cdevs=(), nodes=()):
    return {"host": {"kernel": kernel}, "devices": devices, "groups": groups, "holders": holders,
            "vfio": {"cdevs": list(cdevs), "nodes": list(nodes)}}


BRIDGE_GROUP = [{"id": 4, "devices": ["0000:01:00.0", "0000:02:01.0", "0000:02:02.0"]}]


def test_a_group_fd_on_a_non_viable_group_owns_nothing_and_is_recorded_refused():
    # The case issue 12 names: a VM keeps /dev/vfio/4 open on {bridge, 02:01.0 on vfio-pci, 02:02.0 on e1000}
    # (shared-bridge-group: GET_STATUS flags 0, SET_CONTAINER EPERM, no device fd).
    doc = _doc([_dev("0000:01:00.0", None, bridge=True, group=4), _dev("0000:02:01.0", "vfio-pci", group=4),
                _dev("0000:02:02.0", "e1000", group=4)], BRIDGE_GROUP,
               [{"pid": 266, "nodes": ["/dev/vfio/4", "/dev/vfio/vfio"], "devices": ["0000:02:01.0", "0000:02:02.0"]}])
    model = ownership(doc)
    assert not model.groups[4].viable and model.groups[4].blockers == {"0000:02:02.0": "e1000"}
    assert all(d.owner is None for d in model.devices.values())
    assert model.devices["0000:02:02.0"].owner_kind == "host"  # a host DMA driver is never owned by a userspace holder
    assert [(r.pid, r.via) for r in model.devices["0000:02:01.0"].refused] == [(266, VIA_GROUP_REFUSED)]
    assert model.devices["0000:02:02.0"].refused == []  # nothing VFIO could have handed out
    [container] = model.address_spaces
    assert container.groups == {} and container.devices == {}


def test_a_viable_held_group_gives_its_vfio_endpoints_but_never_the_bridge():
    # shared-group-all-vfio: both NICs on vfio-pci, group held by tenant-b-vm2; the bridge is not exposed by VFIO.
    doc = _doc([_dev("0000:01:00.0", None, bridge=True, group=4), _dev("0000:02:01.0", "vfio-pci", group=4),
                _dev("0000:02:02.0", "vfio-pci", group=4)], BRIDGE_GROUP,
               [{"pid": 271, "nodes": ["/dev/vfio/4", "/dev/vfio/vfio"], "vm_pinned_kb": 1024,
                 "claims": [{"device": "0000:02:01.0", "source": "qemu-argv", "backend": "legacy"}]}])
    model = ownership(doc)
    assert model.groups[4].viable
    assert model.devices["0000:01:00.0"].owner is None and model.devices["0000:01:00.0"].owner_kind == "unbound"
    assert (model.owner_of("0000:02:01.0").via, model.owner_of("0000:02:01.0").certainty) == (VIA_GROUP, ARGV)
    assert model.owner_of("0000:02:02.0").certainty == INFERRED
    [container] = model.address_spaces
    assert (container.kind, container.backend, container.groups, container.pinned_kb) == ("vfio-container", "legacy", {4: INFERRED}, 1024)
    assert set(container.devices) == {"0000:02:01.0", "0000:02:02.0"}


def test_cdevs_name_their_devices_by_link_and_attach_to_the_holders_one_iommufd_context():
    # iommufd-two-devices-one-ioas: tenant-n-vm21 holds vfio0, vfio1 and /dev/iommu (6.12: fdinfo says nothing more).
    devices = [_dev("0000:01:00.0", "vfio-pci", group=5), _dev("0000:02:00.0", "vfio-pci", group=6)]
    groups = [{"id": 5, "devices": ["0000:01:00.0"]}, {"id": 6, "devices": ["0000:02:00.0"]}]
    cdevs = [{"name": "vfio0", "device": "0000:01:00.0"}, {"name": "vfio1", "device": "0000:02:00.0"}]
    holder = {"pid": 336, "nodes": ["/dev/iommu", "/dev/vfio/devices/vfio0", "/dev/vfio/devices/vfio1"],
              "claims": [{"device": "0000:01:00.0", "source": "qemu-argv", "backend": "iommufd"}]}
    model = ownership(_doc(devices, groups, [holder], kernel="6.12.115", cdevs=cdevs))
    assert {b: (d.owner.via, d.owner.certainty) for b, d in model.devices.items()} == {
        "0000:01:00.0": (VIA_CDEV, KERNEL), "0000:02:00.0": (VIA_CDEV, KERNEL)}
    [ctx] = model.address_spaces
    assert (ctx.kind, ctx.backend) == ("iommufd", "iommufd")
    assert ctx.devices == {"0000:01:00.0": ARGV, "0000:02:00.0": INFERRED}


def test_a_cdev_of_a_non_viable_group_is_refused():
    devices = [_dev("0000:02:01.0", "vfio-pci", group=4), _dev("0000:02:02.0", "e1000", group=4)]
    groups = [{"id": 4, "devices": ["0000:02:01.0", "0000:02:02.0"]}]
    holder = {"pid": 9, "nodes": ["/dev/iommu", "/dev/vfio/devices/vfio0"]}
    model = ownership(_doc(devices, groups, [holder], kernel="6.12.115", cdevs=[{"name": "vfio0", "device": "0000:02:01.0"}]))
    assert model.owner_of("0000:02:01.0") is None
    assert [r.via for r in model.devices["0000:02:01.0"].refused] == [VIA_CDEV_REFUSED]
    assert model.address_spaces[0].devices == {}


def test_before_5_19_a_bridge_on_a_host_driver_did_not_block_the_group():
    devices = [_dev("0000:01:00.0", "shpchp", bridge=True, group=4), _dev("0000:02:01.0", "vfio-pci", group=4)]
    groups = [{"id": 4, "devices": ["0000:01:00.0", "0000:02:01.0"]}]
    assert not ownership(_doc(devices, groups, [], kernel="5.19.0")).groups[4].viable
    assert ownership(_doc(devices, groups, [], kernel="5.15.0-91-generic")).groups[4].viable


def test_several_containers_in_one_holder_leave_attachments_unknown():
    devices = [_dev("0000:02:00.0", "vfio-pci", group=5)]
    holder = {"pid": 5, "fds": [{"fd": 3, "kind": "group", "group": 5}, {"fd": 4, "kind": "container"},
                                {"fd": 5, "kind": "container"}]}
    model = ownership(_doc(devices, [{"id": 5, "devices": ["0000:02:00.0"]}], [holder]))
    assert [(a.fd, a.attachment_known, a.groups) for a in model.address_spaces] == [(4, False, {}), (5, False, {})]
    assert model.owner_of("0000:02:00.0").pid == 5


def _device_fds_in_log(text: str) -> set[str]:
    """BDFs for which the holder's own log says GET_DEVICE_FD returned an fd (`device 0000:02:01.0 fd=6 flags=…`)."""
    return set(re.findall(r"device ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) fd=[0-9]+ flags=", text))


@pytest.mark.parametrize("name", ["isolated-nics", "shared-group-all-vfio", "shared-bridge-group", "sriov-nvme",
                                  "iommu-passthrough", "no-iommu"])
def test_on_real_captures_holders_reach_exactly_the_devices_the_kernel_gave_them_fds_for(capture, name):
    root = capture(name)
    model = ownership(build(Root(root)))
    for log in sorted((root / "ground-truth").glob("holder-*.log")):
        text = log.read_text()
        pid = int(re.search(r"\[holder pid ([0-9]+)\]", text).group(1))
        got = _device_fds_in_log(text)
        if "/dev/uio" in text:
            continue  # the UIO holder's log names no VFIO device fd; checked below
        assert set(model.reached_by(pid)) == got, log.name
    if name == "no-iommu":
        uio = [d for d in model.devices.values() if d.owner and d.owner.via == "uio"]
        assert [d.bdf for d in uio] and all(d.owner.certainty == KERNEL for d in uio)
