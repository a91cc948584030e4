"""How the provider API knows who calls: a provider token (`Authorization: Token <secret>`), never a
session. A token authenticates as its provider's service user, whose reach for the request is the
provider's payment points' locations; the throttle counts requests per token."""

import datetime
import hashlib
import secrets

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from sites.scoping import Scope

from .models import PaymentPoint, ProviderToken

# Secrets start with a fixed marker so secret scanners (and people) recognise a leaked one.
SECRET_MARKER = "mzp_"
KEYWORDS = (b"token", b"bearer")
# last_used_at is written at most this often: not one UPDATE per request.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def new_secret():
    return SECRET_MARKER + secrets.token_urlsafe(32)


def secret_hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def provider_scope(provider):
    """The locations a provider's token reaches: those under its payment points (a provider with no
    point reaches nothing)."""
    paths = sorted(set(PaymentPoint.objects.filter(provider=provider).values_list("location__path", flat=True)))
    kept = []
    for path in paths:
        if not any(path.startswith(ancestor) for ancestor in kept):
            kept.append(path)
    return Scope(national=False, paths=tuple(kept))


class ProviderTokenAuthentication(BaseAuthentication):
    """The only authentication of the API. The secret is looked up by its SHA-256 (a random 256-bit
    secret: nothing to learn from the lookup's timing)."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the header as 'Authorization: Token <secret>'.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = (ProviderToken.objects.select_related("provider", "user")
                 .filter(secret_hash=secret_hash(secret), revoked_at__isnull=True).first())
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
            ProviderToken.objects.filter(pk=token.pk).update(last_used_at=now)
        # The service user's scope, for the selectors and services this request calls, is the
        # provider's points (scope_for reads this per-request cache); its stored access is empty.
        token.user._mizani_scope = provider_scope(token.provider)
        return token.user, token

    def authenticate_header(self, request):
        # Answering 401 (not 403) to a missing or bad token needs a WWW-Authenticate challenge.
        return 'Token realm="api"'


class ProviderTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the authentication (registered by being defined)."""

    target_class = ProviderTokenAuthentication
    name = "providerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A payment provider's token: 'Authorization: Token <secret>' (or 'Bearer <secret>')."}


class HasProviderToken(BasePermission):
    """Every API route: a request authenticated by a provider token, nothing else."""

    message = "This API takes a payment provider's token."

    def has_permission(self, request, view):
        return isinstance(request.auth, ProviderToken) and bool(request.user and request.user.is_authenticated)


class ProviderTokenThrottle(SimpleRateThrottle):
    """Requests per token (rate `provider_token` of DEFAULT_THROTTLE_RATES). Requests not made with a
    provider token (Wagtail's admin API) are not counted here."""

    scope = "provider_token"

    def get_rate(self):
        # Read at each request, not once at import as DRF does, so a changed setting applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ProviderToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
