"""The shapes the read API answers with. Plain field lists: no logic lives here."""
from rest_framework import serializers

from drf_spectacular.utils import extend_schema_field

from fleet.inventory.models import AddressSpace, Change, Device, Group, Holder, Host
from fleet.inventory.selectors import attachments_of
from fleet.policy.models import Violation

from .bounds import BoundedSerializer

_hostname = serializers.SlugRelatedField(slug_field="hostname", read_only=True)


class HostSerializer(BoundedSerializer):
    labels = serializers.SlugRelatedField(many=True, slug_field="name", read_only=True)
    # fleet.ingest.freshness: fresh, stale, apply-failed (latest report failed), apply-pending (waiting too long).
    report_state = serializers.CharField(read_only=True)

    class Meta:
        model = Host
        fields = [
            "hostname", "machine_id", "role", "labels", "enrollment", "last_seen", "stale", "report_state", "applied_seq", "applied_at",
            "collected_at", "kernel", "kernel_version", "cmdline", "tainted", "cpu_count", "memory_bytes", "agent_version",
            "agent_euid", "iommu_enabled", "iommu_mode", "vfio_noiommu", "vfio_iommufd", "vfio_cdev_support", "vfio_modules",
            "software", "device_count", "group_count", "assigned_count", "warnings", "truncated",
        ]
        bounded = ["cmdline", "warnings", "vfio_modules", "software"]


class DeviceSerializer(BoundedSerializer):
    host = _hostname

    class Meta:
        model = Device
        fields = [
            "id", "host", "bdf", "vendor_id", "device_id", "subsystem_vendor_id", "subsystem_device_id", "class_code",
            "revision", "driver", "driver_override", "group_number", "iommu_unit", "parent_bdf", "numa_node", "link",
            "is_bridge", "header_type", "multifunction", "sriov", "physfn_bdf", "capabilities", "owner_kind",
            "owner_vm", "owner_pid", "cdev", "truncated",
        ]
        bounded = ["link", "sriov", "capabilities"]


class GroupSerializer(BoundedSerializer):
    host = _hostname

    class Meta:
        model = Group
        fields = ["id", "host", "number", "type", "name", "unit", "reserved_regions", "member_bdfs", "truncated"]
        bounded = ["reserved_regions", "member_bdfs"]


class HolderSerializer(BoundedSerializer):
    host = _hostname

    class Meta:
        model = Holder
        fields = [
            "id", "host", "pid", "name", "user", "uid", "cmdline", "kind", "vm", "workload", "cgroup", "nodes", "groups",
            "devices", "device_fds", "vm_pinned_kb", "vm_locked_kb", "start_time", "fds", "claims", "truncated",
        ]
        bounded = ["cmdline", "cgroup", "nodes", "groups", "devices", "fds", "claims"]


class _AttachmentSerializer(serializers.Serializer):
    group = serializers.IntegerField(required=False)
    device = serializers.CharField(required=False)
    certainty = serializers.ChoiceField(choices=["kernel", "argv", "inferred"])


class _AddressSpaces(serializers.ListSerializer):
    """A page of address spaces reads the attachments of all of them in one query."""

    def to_representation(self, data):
        spaces = list(data.all() if hasattr(data, "all") else data)
        self.context["attached"] = attachments_of(spaces)
        return super().to_representation(spaces)


class _Attached(serializers.ReadOnlyField):
    def __init__(self, part: str, **kwargs):
        self.part = part
        super().__init__(source="*", **kwargs)

    def to_representation(self, space):
        attached = self.context.get("attached")
        if attached is None or (space.host_id, space.key) not in attached:
            attached = attachments_of([space])
        return attached[(space.host_id, space.key)][self.part]


@extend_schema_field(_AttachmentSerializer(many=True))
class AttachedField(_Attached):
    pass


class AddressSpaceSerializer(BoundedSerializer):
    host = _hostname
    groups = AttachedField("groups", help_text="groups attached, each with its certainty (kernel, argv, inferred)")
    devices = AttachedField("devices", help_text="devices attached, each with its certainty (kernel, argv, inferred)")

    class Meta:
        model = AddressSpace
        list_serializer_class = _AddressSpaces
        fields = ["id", "host", "key", "pid", "fd", "kind", "backend", "vm", "attachment_known", "pinned_kb", "locked_kb",
                  "groups", "devices", "truncated"]
        bounded = ["groups", "devices"]


class ChangeSerializer(BoundedSerializer):
    host = _hostname

    class Meta:
        model = Change
        fields = ["id", "host", "snapshot_id", "at", "kind", "subject", "before", "after", "truncated"]
        bounded = ["before", "after"]


class ViolationSerializer(BoundedSerializer):
    host = _hostname

    class Meta:
        model = Violation
        fields = [
            "id", "host", "rule", "severity", "subject_kind", "subject_id", "message", "evidence", "remediation",
            "status", "opened_at", "updated_at", "last_seen_at", "resolved_at", "waived_until", "acknowledged_at",
            "acknowledged_by", "truncated",
        ]
        bounded = ["message", "evidence", "remediation"]
