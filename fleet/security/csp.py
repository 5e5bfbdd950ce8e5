"""Content-Security-Policy without 'unsafe-inline': pages load their scripts and styles from /static/ only.

Sent in every mode, demo included, so a template that slips an inline script in breaks in
development rather than in production. `FLEET_CSP` overrides the policy; an empty value
turns the header off.
"""
from django.conf import settings

DEFAULT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "FLEET_CSP", DEFAULT_POLICY)
        self.report_only = getattr(settings, "FLEET_CSP_REPORT_ONLY", False)

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            header = "Content-Security-Policy-Report-Only" if self.report_only else "Content-Security-Policy"
            response.headers.setdefault(header, self.policy)
        return response
