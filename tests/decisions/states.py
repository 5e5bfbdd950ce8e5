"""Hand-made hosts for the finder and the pre-flight, each standing for a real case (named per function),
put into the inventory and synced the way ingest does."""
from __future__ import annotations

from datetime import datetime, timezone

from fleet.inventory.models import Host
from tests.policy.dbhosts import apply_and_sync, host_named
from tests.policy.states import device, holder, node, root_port, state

AT = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
GPU, AUDIO, NVME = "030200", "040300", "010802"


def gpu(bdf: str, group: int, driver: str | None = "vfio-pci", parent: str | None = None) -> dict:
    return device(bdf, driver=driver, group=group, parent=parent, cls=GPU, vendor="10de", device_id="1db5")


def put(hostname: str, devices, holders=(), nodes=(), *, role: str = "gpu-passthrough") -> Host:
    host = host_named(hostname)
    host.role = role
    host.save(update_fields=["role"])
    apply_and_sync(host, state(hostname=hostname, devices=devices, holders=holders, nodes=nodes), AT)
    return Host.objects.get(pk=host.pk)


def gpu_server() -> Host:
    """A GPU server: two GPUs alone behind ACS-capable root ports (one idle on vfio-pci, one on nvidia), a consumer GPU
    still on nvidia with its HDMI audio function (snd_hda_intel) in one group, and a GPU that firmware put in the boot NVMe's group."""
    return put("gpu-a", [
        root_port("0000:00:01.0", 1), gpu("0000:01:00.0", 10, parent="0000:00:01.0"),
        root_port("0000:00:02.0", 2), gpu("0000:02:00.0", 11, driver="nvidia", parent="0000:00:02.0"),
        gpu("0000:03:00.0", 12, driver="nvidia"), device("0000:03:00.1", driver="snd_hda_intel", group=12, cls=AUDIO, vendor="10de", device_id="10f8"),
        gpu("0000:04:00.0", 13), device("0000:05:00.0", driver="nvme", group=13, cls=NVME, vendor="144d", device_id="a808"),
    ])


def shared_gpu_host() -> Host:
    """A DGX-like host whose switch lacks ACS: GPUs 0a:00.0 and 0b:00.0 share group 20, and a VM holds 0a:00.0 only
    (its QEMU names that device; the other GPU is idle). `vm:none` lists 0b:00.0; it is not free."""
    vm = holder(4242, vm="acme-vm1", groups=[20], devices=["0000:0a:00.0"])
    return put("gpu-b", [gpu("0000:0a:00.0", 20), gpu("0000:0b:00.0", 20, driver=None), gpu("0000:0c:00.0", 21)],
               holders=[vm], nodes=[node("/dev/vfio/20", group=20, uid=64055)])
