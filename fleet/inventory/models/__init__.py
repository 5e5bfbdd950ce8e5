from .changes import Change
from .hosts import Host, Label
from .topology import Device, Group, Holder, Mdev, PasidUser, Unit, VfioNode

__all__ = ["Change", "Device", "Group", "Holder", "Host", "Label", "Mdev", "PasidUser", "Unit", "VfioNode"]
