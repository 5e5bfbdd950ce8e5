from django.contrib import admin

from fleet.accounts.admin_audit import AuditedAdmin

from .models import Host, Label


@admin.register(Label)
class LabelAdmin(AuditedAdmin):
    search_fields = ["name"]

    def audit_values(self, obj) -> dict:
        # Deleting a label takes it off every host: say which.
        return {"name": obj.name, "hosts": sorted(obj.hosts.values_list("hostname", flat=True))}


@admin.register(Host)
class HostAdmin(AuditedAdmin):
    """Operators set a host's role, labels and enrollment here. A host that has reported is retired
    (enrollment), never deleted: deleting it would take its violations and change history with it."""

    list_display = ["hostname", "role", "enrollment", "last_seen", "stale", "kernel", "iommu_mode"]
    list_filter = ["role", "enrollment", "stale", "iommu_mode"]
    search_fields = ["hostname", "machine_id"]
    filter_horizontal = ["labels"]
    fields = ["hostname", "machine_id", "role", "labels", "enrollment"]

    def audit_subject(self, obj) -> str:
        return f"host {obj.hostname}"

    def has_delete_permission(self, request, obj=None):
        if obj is None:  # the changelist's bulk delete: never
            return False
        return super().has_delete_permission(request, obj) and not (obj.changes.exists() or obj.violations.exists())
