"""The ownership model on every real capture, against what the holders' own logs say the kernel
answered (ground-truth/holder-*.log), lspci's drivers and bridge tree, and the setup's VmPin/VmLck."""
import pytest

from agent.ownership import KERNEL, ownership
from agent.paths import Root
from agent.snapshot import build
from tests.agent import groundtruth, groundtruth_iommufd
from tests.agent.captures import CAPTURE_NAMES

HELD = [n for n in CAPTURE_NAMES if n != "shared-bridge-group"]


@pytest.fixture(scope="module")
def models(captures_root):
    return {name: ownership(build(Root.of(captures_root / name))) for name in CAPTURE_NAMES}


def reached_by(model, pid):
    return {b for b, d in model.devices.items() if any(r.pid == pid for r in d.reach)}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_each_holder_reaches_exactly_what_the_kernel_gave_it(capture, models, name):
    # A device fd from GET_DEVICE_FD, a cdev VFIO_DEVICE_BIND_IOMMUFD accepted, an opened /dev/uioN.
    logs = groundtruth_iommufd.holder_logs(capture(name))
    for pid, log in logs.items():
        assert reached_by(models[name], pid) == log.reached, (pid, log)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_no_bridge_and_no_host_driven_device_is_ever_reached(capture, models, name):
    root = capture(name)
    bridges = {p for p in groundtruth.lspci_tree_parents(root).values() if p}
    drivers = {b: f["driver"] for b, f in groundtruth.lspci_drivers(root).items()}
    for bdf, d in models[name].devices.items():
        if bdf in bridges or drivers.get(bdf) not in ("vfio-pci", "uio_pci_generic"):
            assert d.reach == [] and d.refused == [], (bdf, d)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_a_refused_group_fd_or_cdev_bind_is_recorded_refused_and_owns_nothing(capture, models, name):
    model = models[name]
    for pid, log in groundtruth_iommufd.holder_logs(capture(name)).items():
        refused = {b for b, d in model.devices.items() if any(r.pid == pid for r in d.refused)}
        if log.set_container_refused or log.bind_refused:
            assert refused == log.named and not reached_by(model, pid)
            assert all(r.certainty == KERNEL for b in refused for r in model.devices[b].refused)
        else:
            assert refused == set()
        for group, viable in log.viable.items():
            assert model.groups[group].viable is viable


@pytest.mark.parametrize("name", HELD)
def test_address_spaces_are_the_holders_containers_and_iommufd_contexts(capture, models, name):
    root = capture(name)
    status = groundtruth_iommufd.setup_status(root)
    for pid, log in groundtruth_iommufd.holder_logs(root).items():
        spaces = [s for s in models[name].address_spaces if s.pid == pid]
        containers = sorted(fd for fd, path in log.opened.items() if path == "/dev/vfio/vfio")
        assert sorted(s.fd for s in spaces if s.kind == "vfio-container") == containers
        assert sorted(s.fd for s in spaces if s.kind == "iommufd") == sorted(log.iommufd_fds)
        if len(spaces) != 1:
            continue
        (space,) = spaces
        # What the one space maps: the devices attached to an IOAS, or whose group SET_CONTAINER took.
        attached = set(log.attached_ioas) if space.kind == "iommufd" else set(log.device_fds)
        assert set(space.devices) == attached
        if pid in status:
            assert (space.pinned_kb, space.locked_kb) == (status[pid]["VmPin"], status[pid]["VmLck"])


def test_a_vm_on_iommufd_with_two_cdevs_has_one_context_mapping_both(capture, models):
    root = capture("iommufd-two-devices-one-ioas")
    cdevs = groundtruth_iommufd.vfio_cdevs(root)
    logs = groundtruth_iommufd.holder_logs(root)
    (pid,) = [p for p, log in logs.items() if len(log.bound) == 2]
    (space,) = [s for s in models["iommufd-two-devices-one-ioas"].address_spaces if s.pid == pid]
    assert (space.kind, space.backend) == ("iommufd", "iommufd")
    assert set(space.devices) == logs[pid].bound == {cdevs[c.rsplit("/", 1)[-1]] for c in logs[pid].cdevs.values()}


def test_legacy_and_iommufd_side_by_side_each_vm_on_its_own_backend(capture, models):
    logs = groundtruth_iommufd.holder_logs(capture("legacy-and-iommufd"))
    backends = {s.pid: s.backend for s in models["legacy-and-iommufd"].address_spaces}
    assert backends == {pid: "iommufd" if log.iommufd_fds else "legacy" for pid, log in logs.items()}
    assert sorted(backends.values()) == ["iommufd", "legacy"]
