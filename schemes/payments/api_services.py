"""Changes made for and through the provider API: issuing and revoking a provider's tokens, and a
reconciliation batch posted once per idempotency key."""

import datetime
import hashlib
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from sites.audit import audit
from sites.refusals import require_permission
from sites.scoping import scope_for

from . import reconciliation
from .api_auth import new_secret, secret_hash
from .models import ApiIdempotencyKey, ProviderToken

SERVICE_ROLE = "Payment provider (API)"
MANAGE_TOKENS = "payments.manage_provider_token"


class IdempotencyKeyReused(Exception):
    """The key was first sent with another request: nothing is applied, the first answer stands."""


def _require_token_manager(by, provider):
    """A token reaches every line under its provider's payment points, wherever they are now or will
    be: a programme-wide key, so who issues or revokes it must hold the permission and national scope
    (a district's view of today's points would not bound tomorrow's)."""
    require_permission(by, MANAGE_TOKENS)
    if not scope_for(by).national:
        raise PermissionDenied(f"A token of {provider} is a programme-wide key (it reaches the lines under all "
                               "its payment points, present and future): issuing or revoking it takes national "
                               "scope.")


def _service_user(provider):
    """The provider's service user: the one its tokens act as, created with its first token (no
    password, the provider API role only)."""
    existing = ProviderToken.objects.filter(provider=provider).select_related("user").order_by("pk").first()
    if existing is not None:
        return existing.user
    users = get_user_model()
    username = f"api-provider-{slugify(provider.code)}"
    if users.objects.filter(username=username).exists():
        raise ValidationError(f"The user name {username!r} is taken: rename that user to issue this provider a token.")
    user = users(username=username, first_name=provider.name[:150], last_name="(API)")
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=SERVICE_ROLE))
    return user


@transaction.atomic
def provider_token_create(*, provider, by, name=""):
    """A new token for `provider`: returns (token, secret). The secret is not stored (only its hash):
    show it once."""
    _require_token_manager(by, provider)
    secret = new_secret()
    token = ProviderToken.objects.create(
        provider=provider, name=name.strip(), prefix=secret[:ProviderToken.PREFIX_LENGTH],
        secret_hash=secret_hash(secret), user=_service_user(provider), created_by=by)
    audit(provider, "mizani.provider_token", by=by, data={"created": token.prefix, "name": token.name})
    return token, secret


@transaction.atomic
def provider_token_revoke(*, token, by):
    """The token stops working at once. Revoking a revoked token changes nothing."""
    token = ProviderToken.objects.select_for_update().select_related("provider").get(pk=token.pk)
    _require_token_manager(by, token.provider)
    if token.revoked_at is None:
        token.revoked_at, token.revoked_by = timezone.now(), by
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit(token.provider, "mizani.provider_token", by=by, data={"revoked": token.prefix, "name": token.name})
    return token


def request_fingerprint(payroll, rows):
    """The same request whatever the JSON's key order or spacing."""
    canonical = json.dumps({"payroll": payroll.pk, "rows": rows}, sort_keys=True, separators=(",", ":"),
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_keys_prune(*, now=None):
    """Forget the answers kept for replay longer than MIZANI_API_IDEMPOTENCY_DAYS. The batches they
    answered stay applied and audited; only the replay goes. Returns how many were pruned."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=settings.MIZANI_API_IDEMPOTENCY_DAYS)
    pruned, _ = ApiIdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return pruned


def reconciliation_batch_post(*, token, payroll, rows, idempotency_key, by):
    """Apply a provider's batch once per idempotency key: returns (status, body, replayed). The key's
    row is written first, in the batch's transaction: a second request with the same key waits for
    the first to commit, then replays its answer (or, if the first failed, applies the batch itself).
    The key with another request raises IdempotencyKeyReused. A batch the engine refuses as a whole
    (ValidationError, PermissionDenied) leaves no key behind: it may be sent again as it is."""
    fingerprint = request_fingerprint(payroll, rows)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = ApiIdempotencyKey.objects.create(
                    provider=token.provider, token=token, key=idempotency_key, request_hash=fingerprint,
                    response_status=0)
        except IntegrityError:
            stored = ApiIdempotencyKey.objects.get(provider=token.provider, key=idempotency_key)
            if stored.request_hash != fingerprint:
                raise IdempotencyKeyReused(idempotency_key) from None
            return stored.response_status, stored.response_body, True
        result = reconciliation.reconcile_batch(payroll=payroll, rows=rows, by=by, provider=token.provider)
        body = {"payroll": payroll.pk, "rows": len(rows), **result}
        status = 422 if result["errors"] else 200
        record.response_status, record.response_body = status, body
        record.save(update_fields=["response_status", "response_body"])
        audit(payroll, "mizani.reconcile_api", by=by, data={
            "token": token.prefix, "provider": token.provider.code, "idempotency_key": idempotency_key,
            "rows": len(rows), "paid": result["paid"], "unpaid": result["unpaid"],
            "unchanged": result["unchanged"], "errors": len(result["errors"])})
    return status, body, False
