from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from .admin_audit import AuditedAdmin, UndeletableAdmin
from .models import ApiToken, AuditEntry
from .services import api_token_revoke


@admin.register(AuditEntry)
class AuditEntryAdmin(UndeletableAdmin):
    """Read-only: the trail is appended to by the code, never edited by hand."""

    list_display = ["at", "actor_name", "action", "subject", "remote_addr"]
    list_filter = ["action"]
    search_fields = ["actor_name", "subject", "action"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    """Tokens are issued with `manage.py api_token create` (the secret is printed once); here they are listed and revoked."""

    list_display = ["prefix", "user", "name", "write", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["write"]
    readonly_fields = ["user", "name", "prefix", "write", "created_at", "last_used_at", "revoked_at"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    def audit_subject(self, obj) -> str:
        return f"API token {obj.prefix}… of user {obj.user.get_username()}"

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token)


# Users and their roles (groups) are edited here too: the same audit as every other admin write.
admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    def audit_subject(self, obj) -> str:
        return f"user {obj.get_username()}"


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    def audit_subject(self, obj) -> str:
        return f"role group {obj.name}"
