from django.contrib import admin

from .models import Host, Label


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["hostname", "role", "enrollment", "last_seen", "stale", "kernel", "iommu_mode"]
    list_filter = ["role", "enrollment", "stale", "iommu_mode"]
    search_fields = ["hostname", "machine_id"]
    filter_horizontal = ["labels"]
    fields = ["hostname", "machine_id", "role", "labels", "enrollment"]
