"""The shapes the read API answers with. Plain field lists: no logic lives here."""
from rest_framework import serializers

from fleet.inventory.models import Change, Device, Group, Holder, Host
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
            "agent_euid", "iommu_enabled", "iommu_mode", "vfio_noiommu", "vfio_iommufd", "device_count", "group_count",
            "assigned_count", "warnings", "truncated",
        ]
        bounded = ["cmdline", "warnings"]


class DeviceSerializer(BoundedSerializer):
    host = _hostname

    class Meta:
        model = Device
        fields = [
            "id", "host", "bdf", "vendor_id", "device_id", "subsystem_vendor_id", "subsystem_device_id", "class_code",
            "revision", "driver", "driver_override", "group_number", "iommu_unit", "parent_bdf", "numa_node", "link",
            "is_bridge", "header_type", "multifunction", "sriov", "physfn_bdf", "capabilities", "owner_kind",
            "owner_vm", "owner_pid", "truncated",
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
            "devices", "device_fds", "vm_pinned_kb", "start_time", "truncated",
        ]
        bounded = ["cmdline", "cgroup", "nodes", "groups", "devices"]


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
