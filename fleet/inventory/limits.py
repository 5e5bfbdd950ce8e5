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

# Per-host cardinalities and the document's shape (issue 10 item 1). A hostile host can fill every list
# to the schema's cap (65,536) with a few MB of JSON, and what it sends is what the search, the policy
# engine and every page then iterate. The largest real hosts sit far below: the DGX-2H of
# tests/fixtures/hwloc/ has a few hundred PCI functions and groups, the 480-device bench host 23 holders.
# Past a cap the snapshot is refused at receive with a 400 naming the cap and the path (docs/snapshot.md).
MAX_DEVICES = 4096  # devices[]: PCI functions, VFs included
MAX_GROUPS = 4096  # groups[]
MAX_UNITS = 1024  # iommu.units[]
MAX_DRIVERS = 256  # distinct devices[].driver names (a busy real host: ~30)
MAX_NODES = 16384  # vfio.nodes[]
MAX_HOLDERS = 4096  # holders[]: processes holding a device or node
MAX_HOLDER_REFS = 65536  # groups + devices + nodes named by all holders together
MAX_MDEVS = 4096  # mdevs[]
MAX_PASID_USERS = 4096  # pasid.users[]
# Nesting: the schema's deepest path is 6 levels (devices[].capabilities.acs.cap.sv); every object also
# takes unknown keys (forward compatibility), whose values are free-form JSON. 64 levels leaves room and
# keeps every recursive walk (hashing, validation, the apply) far from Python's recursion limit.
MAX_JSON_DEPTH = 64
# seq: the agent seeds its counter with the clock in milliseconds and adds one per collection
# (agent/spool.py), so a real seq is ~1.8e12 and reaches 2**53 in some 280,000 years; anything above is
# not from an agent, and one huge value would supersede every later report of the host.
MAX_SEQ = 2**53 - 1
