from django.contrib import admin

from .models import HostToken, Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "host", "seq", "status", "received_at", "processed_at", "size"]
    list_filter = ["status"]
    search_fields = ["host__hostname", "content_hash"]
    exclude = ["raw"]
    readonly_fields = ["host", "seq", "content_hash", "collected_at", "received_at", "processed_at", "status", "error", "size", "remote_addr"]


@admin.register(HostToken)
class HostTokenAdmin(admin.ModelAdmin):
    list_display = ["id", "host", "created_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    exclude = ["token_hash"]
    readonly_fields = ["host", "created_at", "revoked_at", "last_used_at"]
