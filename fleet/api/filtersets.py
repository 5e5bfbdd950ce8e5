"""Filters of the read API, the same questions the pages answer (fleet overview, device search, violations)."""
from datetime import timezone

import django_filters as filters
from django import forms
from django.db.models import Q

from fleet.inventory.models import AddressSpace, Change, Device, Group, Holder, Host
from fleet.inventory.selectors import shared_spaces
from fleet.policy.models import Violation
from fleet.web.selectors.tenants import tenant_vm_q


class _UtcDateTimeField(filters.fields.IsoDateTimeField):
    """An ISO 8601 time turned into UTC here: PostgreSQL refuses offsets past ±15:59 that Python accepts."""

    def clean(self, value):
        value = super().clean(value)
        if value is None:
            return None
        try:
            return value.astimezone(timezone.utc)
        except OverflowError as exc:
            raise forms.ValidationError("Time out of range.") from exc


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = _UtcDateTimeField


class HostFilter(filters.FilterSet):
    hostname = filters.CharFilter(lookup_expr="icontains")
    role = filters.CharFilter()
    label = filters.CharFilter(field_name="labels__name", distinct=True)
    kernel = filters.CharFilter(lookup_expr="icontains")
    iommu_mode = filters.CharFilter()
    stale = filters.BooleanFilter()
    enrollment = filters.ChoiceFilter(choices=Host.Enrollment.choices)

    class Meta:
        model = Host
        fields = ["hostname", "role", "label", "kernel", "iommu_mode", "stale", "enrollment"]


class _HostScoped(filters.FilterSet):
    host = filters.CharFilter(field_name="host__hostname")


class DeviceFilter(_HostScoped):
    bdf = filters.CharFilter()
    vendor_device = filters.CharFilter(method="filter_vendor_device", label="vendor:device, e.g. 8086:1521 (either side may be empty)")
    vendor_id = filters.CharFilter()
    device_id = filters.CharFilter()
    class_code = filters.CharFilter(lookup_expr="startswith", label="class code or its prefix (02 = network, 0300 = VGA)")
    driver = filters.CharFilter()
    owner_kind = filters.ChoiceFilter(choices=Device.OwnerKind.choices)
    vm = filters.CharFilter(field_name="owner_vm")
    group = filters.NumberFilter(field_name="group_number")
    role = filters.CharFilter(field_name="host__role")
    label = filters.CharFilter(field_name="host__labels__name", distinct=True)

    class Meta:
        model = Device
        fields = ["host", "bdf", "vendor_id", "device_id", "class_code", "driver", "owner_kind", "vm", "group", "role", "label"]

    def filter_vendor_device(self, queryset, name, value):
        vendor, _, device = value.lower().partition(":")
        q = Q()
        if vendor:
            q &= Q(vendor_id=vendor)
        if device:
            q &= Q(device_id=device)
        return queryset.filter(q)


class GroupFilter(_HostScoped):
    number = filters.NumberFilter()
    type = filters.CharFilter()

    class Meta:
        model = Group
        fields = ["host", "number", "type"]


class HolderFilter(_HostScoped):
    vm = filters.CharFilter()
    kind = filters.CharFilter()
    pid = filters.NumberFilter()

    class Meta:
        model = Holder
        fields = ["host", "vm", "kind", "pid"]


class AddressSpaceFilter(_HostScoped):
    backend = filters.ChoiceFilter(choices=AddressSpace.Backend.choices)
    kind = filters.ChoiceFilter(choices=[("vfio-container", "vfio-container"), ("iommufd", "iommufd")])
    vm = filters.CharFilter()
    pid = filters.NumberFilter()
    tenant = filters.CharFilter(method="filter_tenant", max_length=100,
                                label="tenant name: spaces of its VMs (the intent's vm_patterns, else T or T-*)")
    shared = filters.ChoiceFilter(choices=[("true", "true"), ("false", "false")], method="filter_shared",
                                  label="mapping more than one device or group, or another VM's device")

    class Meta:
        model = AddressSpace
        fields = ["host", "backend", "kind", "vm", "pid", "tenant", "shared"]

    def filter_tenant(self, queryset, name, value):
        return queryset.filter(tenant_vm_q(value, field="vm"))

    def filter_shared(self, queryset, name, value):
        shared = shared_spaces().values("pk")
        return queryset.filter(pk__in=shared) if value == "true" else queryset.exclude(pk__in=shared)


class ChangeFilter(_HostScoped):
    kind = filters.ChoiceFilter(choices=Change.Kind.choices)
    since = UtcDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = Change
        fields = ["host", "kind", "since", "until"]


class ViolationFilter(_HostScoped):
    rule = filters.CharFilter()
    severity = filters.ChoiceFilter(choices=Violation._meta.get_field("severity").choices)
    status = filters.ChoiceFilter(choices=Violation.Status.choices)
    subject_kind = filters.CharFilter()

    class Meta:
        model = Violation
        fields = ["host", "rule", "severity", "status", "subject_kind"]
