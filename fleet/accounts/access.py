"""View decorators that turn the role questions of `roles.py` into 302-to-login / 403 answers."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from .services import audit_record

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def require_capability(check):
    """Anonymous users go to the login page; logged-in users without the capability get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not check(request.user):
                if request.method not in SAFE_METHODS:
                    # A refused change is a security fact too: who tried what, from where.
                    audit_record(actor=request.user, action="access.denied", subject=request.path[:300],
                                 after={"method": request.method, "view": view.__name__},
                                 remote_addr=request.META.get("REMOTE_ADDR"))
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
