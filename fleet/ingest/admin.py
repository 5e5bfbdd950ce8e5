from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.validators import RegexValidator
from django.template.response import TemplateResponse

from fleet.accounts.admin_audit import AuditedAdmin
from fleet.ingest.services import host_token_create
from fleet.inventory.models import Host

from .models import HostToken, Snapshot

HOSTNAME = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z", "letters, digits, '.', '_' and '-' only, starting with a letter or digit")


class HostTokenIssueForm(forms.Form):
    hostname = forms.CharField(max_length=Host._meta.get_field("hostname").max_length, strip=True,
                               help_text="The host's name as its agent reports it. A new name creates the host, pending enrollment.")

    def clean_hostname(self) -> str:
        hostname = self.cleaned_data["hostname"]
        if not Host.objects.filter(hostname=hostname).exists():  # a host named oddly by its agent keeps its name
            HOSTNAME(hostname)
        return hostname


@admin.register(Snapshot)
class SnapshotAdmin(AuditedAdmin):
    """Agent reports as received: read here, written only by ingest."""

    list_display = ["id", "host", "seq", "status", "received_at", "processed_at", "size"]
    list_filter = ["status"]
    search_fields = ["host__hostname", "content_hash"]
    exclude = ["raw"]
    readonly_fields = ["host", "seq", "content_hash", "collected_at", "received_at", "processed_at", "status", "error", "size", "remote_addr"]

    def audit_subject(self, obj) -> str:
        return f"snapshot {obj.pk} of host {obj.host.hostname} (seq {obj.seq})"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(HostToken)
class HostTokenAdmin(AuditedAdmin):
    """Issuing goes through `host_token_create` (which audits it) and shows the secret once; it is never stored."""

    list_display = ["id", "host", "created_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    exclude = ["token_hash"]
    readonly_fields = ["host", "created_at", "revoked_at", "last_used_at"]

    def audit_subject(self, obj) -> str:
        return f"host token {obj.pk} of host {obj.host.hostname}"

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = HostTokenIssueForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Issue a host token", "form": form}
        if request.method == "POST" and form.is_valid():
            host, secret = host_token_create(hostname=form.cleaned_data["hostname"])
            context.update(title=f"Token for {host.hostname}", secret=secret, host=host)
            return TemplateResponse(request, "admin/accounts/secret_once.html", context)
        return TemplateResponse(request, "admin/accounts/host_token_issue.html", context)
