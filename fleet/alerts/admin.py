"""Admin: webhook endpoints (audited edits, the secret write-only) and the delivery log (read-only, kept)."""
from django import forms
from django.contrib import admin

from fleet.accounts.admin_audit import AuditedAdmin, UndeletableAdmin

from .models import Delivery, Endpoint


class EndpointForm(forms.ModelForm):
    secret = forms.CharField(
        max_length=Endpoint._meta.get_field("secret").max_length, required=False, strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="HMAC-SHA256 key the receiver checks X-Fleet-Signature with. Never shown again; leave empty to keep the current one.",
    )

    class Meta:
        model = Endpoint
        fields = ["name", "url", "kind", "secret", "enabled"]

    def clean_secret(self) -> str:
        secret = self.cleaned_data["secret"]
        if secret:
            if len(secret) < 16:
                raise forms.ValidationError("use at least 16 characters: the secret is all that proves a request came from here")
            return secret
        if self.instance.pk is None:
            raise forms.ValidationError("a new endpoint needs a secret")
        return self.instance.secret


@admin.register(Endpoint)
class EndpointAdmin(AuditedAdmin):
    form = EndpointForm
    list_display = ("name", "kind", "url", "enabled", "created_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "url")


@admin.register(Delivery)
class DeliveryAdmin(UndeletableAdmin):
    """The delivery log: every event sent to every endpoint, and how sending went."""

    list_display = ("created_at", "event", "endpoint", "violation_count", "status", "attempts", "response_status",
                    "next_attempt_at", "error")
    list_filter = ("status", "event", "endpoint")
    date_hierarchy = "created_at"
    list_select_related = ("endpoint",)
    readonly_fields = ("endpoint", "event", "violation_count", "status", "attempts", "created_at", "last_attempt_at",
                       "next_attempt_at", "delivered_at", "response_status", "error", "payload")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
