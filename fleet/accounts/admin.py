from django.contrib import admin

from .models import ApiToken, AuditEntry
from .services import api_token_revoke


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the trail is appended to by the code, never edited by hand."""

    list_display = ["at", "actor_name", "action", "subject", "remote_addr"]
    list_filter = ["action"]
    search_fields = ["actor_name", "subject", "action"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued with `manage.py api_token create` (the secret is printed once); here they are listed and revoked."""

    list_display = ["prefix", "user", "name", "write", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["write"]
    readonly_fields = ["user", "name", "prefix", "write", "created_at", "last_used_at", "revoked_at"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)
