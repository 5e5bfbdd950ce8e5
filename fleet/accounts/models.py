"""Who did what (the audit log) and the API tokens users read the fleet with."""
from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One audited action: a login, a token issued or revoked, a label/role/intent change, a waiver.

    `actor` is kept as text as well as a link so the trail survives the user's deletion.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=300, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.subject}"


class ApiToken(models.Model):
    """A personal token for the read API. Only the sha256 of the secret is stored; the secret is shown once.

    Tokens are read-only unless `write` is set, and never carry more than their user's role allows.
    `scopes` grants single further calls (SCOPES): `preflight` lets a VM-start hook POST a pre-flight
    (a dry run: it changes nothing but the audit log) with an otherwise read-only token.
    """

    SCOPES = ("preflight",)

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    write = models.BooleanField(default=False)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user", "-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else ("read-write" if self.write else "read-only")
        return f"API token {self.prefix}… of {self.user} ({state})"


class LoginFailure(models.Model):
    """One failed login for a user name from an address, kept for the lockout window (`fleet.accounts.throttle`).

    Not the audit trail (that keeps every failure for good): operational state, pruned once it is
    older than the window. `username` is as typed (case-folded), so it need not name a real user.
    """

    username = models.CharField(max_length=150)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["username", "remote_addr", "at"], name="accounts_loginfail_key_at_idx")]

    def __str__(self) -> str:
        return f"failed login for {self.username} from {self.remote_addr or '?'} at {self.at:%Y-%m-%d %H:%M:%S}"
