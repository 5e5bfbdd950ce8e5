"""Admin: the intent tables are editable (each save is one audited intent change that re-evaluates the
fleet); violations and the intent's history are read here and never deleted."""
from django.contrib import admin

from fleet.accounts.admin_audit import AuditedAdmin, UndeletableAdmin

from . import services
from .models import (
    DeviceExpectation, GroupBaseline, HostRole, IntentChange, IntentSettings, Tenant, Violation, ViolationEvent, Waiver,
)


class IntentAdmin(AuditedAdmin):
    """Every write is an `intent_edit`: the IntentChange (TOML before/after, who) is its audit entry."""

    audited_by_service = True

    def _edit(self, request, summary, write):
        services.intent_edit(write=write, user=request.user, source="admin", summary=summary)

    def save_model(self, request, obj, form, change):
        self._edit(request, f"{'edit' if change else 'add'} {obj._meta.verbose_name} {obj}",
                   lambda: super(IntentAdmin, self).save_model(request, obj, form, change))

    def delete_model(self, request, obj):
        self._edit(request, f"delete {obj._meta.verbose_name} {obj}", lambda: super(IntentAdmin, self).delete_model(request, obj))

    def delete_queryset(self, request, queryset):
        self._edit(request, f"delete {queryset.count()} {queryset.model._meta.verbose_name_plural}",
                   lambda: super(IntentAdmin, self).delete_queryset(request, queryset))


@admin.register(Tenant)
class TenantAdmin(IntentAdmin):
    list_display = ("name", "vm_patterns", "cgroup_patterns", "workload_patterns", "labels", "pasid_quota")
    search_fields = ("name",)


@admin.register(HostRole)
class HostRoleAdmin(IntentAdmin):
    list_display = ("name", "host_patterns", "host_labels", "expects_assignment", "expected_drivers")
    search_fields = ("name",)


@admin.register(DeviceExpectation)
class DeviceExpectationAdmin(IntentAdmin):
    list_display = ("name", "role", "host_pattern", "bdf", "vendor_device", "class_prefix", "driver", "owner")
    search_fields = ("name", "bdf", "vendor_device")


@admin.register(GroupBaseline)
class GroupBaselineAdmin(IntentAdmin):
    list_display = ("hostname", "accepted_at", "accepted_by")
    search_fields = ("hostname",)


@admin.register(IntentSettings)
class IntentSettingsAdmin(IntentAdmin):
    list_display = ("allowed_userspace_drivers", "host_pasid_quota", "stale_after_seconds")


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IntentChange)
class IntentChangeAdmin(ReadOnlyMixin, UndeletableAdmin):
    list_display = ("at", "by", "source", "summary")
    list_filter = ("source",)
    readonly_fields = ("at", "by", "source", "summary", "before", "after")


class WaiverInline(ReadOnlyMixin, admin.TabularInline):
    model = Waiver
    extra = 0
    readonly_fields = ("justification", "expires_at", "created_by", "created_at", "revoked_at", "revoked_by", "expired_at")
    can_delete = False


class EventInline(ReadOnlyMixin, admin.TabularInline):
    model = ViolationEvent
    extra = 0
    readonly_fields = ("kind", "at", "by", "detail")
    can_delete = False


@admin.register(Violation)
class ViolationAdmin(ReadOnlyMixin, UndeletableAdmin):
    """Read here; waive and acknowledge on the violations page, through the triage services that keep the history."""

    list_display = ("host", "rule", "severity", "subject_kind", "subject_id", "status", "opened_at", "waived_until")
    list_filter = ("status", "severity", "rule")
    search_fields = ("host__hostname", "subject_id", "message")
    readonly_fields = [f.name for f in Violation._meta.fields]
    inlines = [WaiverInline, EventInline]
