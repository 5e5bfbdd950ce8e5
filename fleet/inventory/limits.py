"""How long a snapshot string may be in each current-state column, and what an integer column holds.

The models take their max_length from here, the ingest validation refuses a longer value (through the
row mapping, so a new mapped column is bounded without another list), and tests/ingest/test_limits.py
checks every mapped column against the agent's schema: a value one past the limit is refused with a 400
naming its path, a value at the limit is stored.
"""

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

# Host
HOSTNAME = 253  # a DNS name; the agent truncates to it, and its schema says so
MACHINE_ID = 64
KERNEL_RELEASE = 200
BOOT_TIME = 40
AGENT_VERSION = 40  # truncated, not refused: an agent's version string is not worth a lost report

# PCI devices
BDF = 16
PCI_ID = 4
CLASS_CODE = 6
REVISION = 2
DRIVER = 100
DEVICE_PATH = 512
HEADER_TYPE = 16
OWNER_KIND = 16
CDEV_NAME = 32

# IOMMU units and groups
UNIT_NAME = 100  # also a device's and a group's `iommu_unit`/`unit`
UNIT_VENDOR = 16
GROUP_TYPE = 32
GROUP_NAME = 100

# Device nodes
NODE_PATH = 256
NODE_KIND = 16
NODE_MODE = 6
RDEV = 20

# Holders (processes) and what names them
PROCESS_NAME = 200
USER_NAME = 100
HOLDER_KIND = 16
VM_NAME = 200  # a holder's `vm` and `workload`, a device's owner_vm
CGROUP = 512
START_TIME = 40

# Address spaces (derived by the ownership model: bounded by what it builds from bounded inputs)
ADDRESS_SPACE_KEY = 40  # "<pid>:<fd>", two int32
ADDRESS_SPACE_KIND = 16
ATTACHMENT_KEY = 80  # "<space>/device/<bdf>"
CERTAINTY = 16

# Mediated devices and PASID users
UUID = 36
MDEV_PARENT = 100
MDEV_TYPE = 200
PASID_DEVICE = 100
PASID_SOURCE = 32
