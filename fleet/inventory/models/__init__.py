from .changes import Change
from .hosts import Host, Label
from .spaces import AddressSpace, Attachment
from .topology import Device, Group, Holder, Mdev, PasidUser, Unit, VfioNode

__all__ = ["AddressSpace", "Attachment", "Change", "Device", "Group", "Holder", "Host", "Label", "Mdev", "PasidUser", "Unit",
           "VfioNode"]
