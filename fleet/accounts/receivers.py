"""Audit of logins, and the failure count of the login throttle: Django's own authentication signals.

Every other audited action is recorded by the service or admin that performs it, calling
`audit_record` itself; there are no generic model-signal receivers.
"""
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .context import client_addr
from .services import audit_record
from .throttle import login_failure_record, login_failures_clear

@receiver(user_logged_in, dispatch_uid="audit-login")
def _record_login(sender, request, user, **kwargs):
    addr = client_addr(request) if request else None
    audit_record(actor=user, action="login", subject=f"user {user.get_username()}", remote_addr=addr)
    login_failures_clear(username=user.get_username(), remote_addr=addr)


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _record_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(actor=user, action="logout", subject=f"user {user.get_username()}", remote_addr=client_addr(request) if request else None)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _record_login_failed(sender, credentials, request=None, **kwargs):
    # Django already masks the password in `credentials`; keep only the username.
    username = str(credentials.get("username", ""))[:150]
    addr = client_addr(request) if request else None
    audit_record(actor="anonymous", action="login_failed", subject=f"user {username}", remote_addr=addr)
    login_failure_record(username=username, remote_addr=addr)
