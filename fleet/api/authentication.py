"""User API tokens for the read API: `Authorization: Bearer fleet_…` (or `Token fleet_…`)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from fleet.accounts.selectors import api_token_user
from fleet.accounts.services import TOKEN_PREFIX


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be '<keyword> <token>'.")
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        if not secret.startswith(TOKEN_PREFIX):
            # Not one of ours (a host token sent to the read API, say): refuse rather than fall through.
            raise exceptions.AuthenticationFailed("Invalid token.")
        token = api_token_user(secret)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "fleet.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A user API token from `manage.py api_token create USER`."}
