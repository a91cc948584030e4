"""Provider tokens: issued and revoked through audited services by who may manage them, with national
scope (a token is a programme-wide key); the secret is shown once and never stored; the token acts as the provider's service
user. The admin screen under Payments > Payment providers."""

import hashlib

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from wagtail.models import ModelLogEntry

from schemes.payments import services
from schemes.payments.api_services import SERVICE_ROLE, provider_token_create, provider_token_revoke
from schemes.payments.models import PaymentPoint, ProviderToken
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider(geo, accountant):
    provider = services.provider_create(fields={"code": "MPESA", "name": "M-Pesa"}, by=accountant)
    services.point_create(fields={"code": "MP-A", "name": "A", "provider": provider, "location": geo.district_a},
                          by=accountant)
    services.point_create(fields={"code": "MP-B", "name": "B", "provider": provider, "location": geo.district_b},
                          by=accountant)
    return provider


def token_audits(provider):
    return list(ModelLogEntry.objects.filter(action="mizani.provider_token", object_id=str(provider.pk))
                .order_by("pk").values_list("data", flat=True))


def test_a_token_keeps_only_the_hash_of_its_secret(provider, accountant):
    token, secret = provider_token_create(provider=provider, name="Core banking", by=accountant)

    assert secret.startswith("mzp_") and len(secret) > 40
    assert token.prefix == secret[:12]
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = ProviderToken.objects.filter(pk=token.pk).values().get()
    assert secret not in [str(value) for value in stored.values()]
    assert (token.created_by, token.revoked_at, token.name) == (accountant, None, "Core banking")
    assert token_audits(provider) == [{"created": token.prefix, "name": "Core banking"}]


def test_tokens_act_as_one_service_user_per_provider(provider, accountant):
    first, _ = provider_token_create(provider=provider, by=accountant)
    second, _ = provider_token_create(provider=provider, by=accountant)

    user = first.user
    assert second.user == user
    assert user.username == "api-provider-mpesa"
    assert not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == [SERVICE_ROLE]
    assert user.has_perm("payments.reconcile_payroll") and user.has_perm("payments.view_paymentline")
    assert not user.has_perm("wagtailadmin.access_admin")
    assert not hasattr(user, "access") or user.access is None  # no stored reach: the token gives it


def test_a_taken_service_user_name_is_refused_not_reused(provider, accountant):
    UserFactory(username="api-provider-mpesa")

    with pytest.raises(ValidationError):
        provider_token_create(provider=provider, by=accountant)
    assert not ProviderToken.objects.exists()


def test_managing_tokens_takes_the_permission(provider, checkers, accountant):
    checker = checkers[0][0]
    token, _ = provider_token_create(provider=provider, by=accountant)

    with pytest.raises(PermissionDenied):
        provider_token_create(provider=provider, by=checker)
    with pytest.raises(PermissionDenied):
        provider_token_revoke(token=token, by=checker)
    assert Group.objects.get(name="Accountant").permissions.filter(codename="manage_provider_token").exists()


def test_managing_tokens_takes_national_scope(provider, geo, accountant):
    """Even a provider whose points are all in the accountant's district: a point added later elsewhere
    would widen the token."""
    PaymentPoint.objects.filter(provider=provider).exclude(location=geo.district_a).delete()
    district_accountant = UserFactory(role="Accountant", locations=[geo.district_a])

    with pytest.raises(PermissionDenied, match="programme-wide key"):
        provider_token_create(provider=provider, by=district_accountant)
    assert not ProviderToken.objects.exists()
    token, _ = provider_token_create(provider=provider, by=accountant)
    with pytest.raises(PermissionDenied, match="national scope"):
        provider_token_revoke(token=token, by=district_accountant)
    token.refresh_from_db()
    assert token.revoked_at is None


def test_revoking_is_audited_once(provider, accountant):
    token, _ = provider_token_create(provider=provider, by=accountant)

    provider_token_revoke(token=token, by=accountant)
    provider_token_revoke(token=token, by=accountant)

    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == accountant
    assert token_audits(provider)[1:] == [{"revoked": token.prefix, "name": ""}]


# --- the screen ---------------------------------------------------------------------------------------


def test_the_screen_creates_a_token_showing_its_secret_once(client, provider, accountant):
    client.login(username=accountant.username, password=PASSWORD)
    url = reverse("payments_provider:tokens", args=[provider.pk])

    created = client.post(url, {"name": "Core banking"})

    token = ProviderToken.objects.get()
    secret = created.context["secret"]
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    listed = client.get(url).content.decode()
    assert token.prefix in listed and "Core banking" in listed and "Active" in listed
    assert secret not in listed


def test_the_screen_revokes_a_token(client, provider, accountant):
    token, _ = provider_token_create(provider=provider, by=accountant)
    client.login(username=accountant.username, password=PASSWORD)

    response = client.post(reverse("payments_provider:token_revoke", args=[provider.pk, token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "Revoked" in client.get(reverse("payments_provider:tokens", args=[provider.pk])).content.decode()


def test_the_providers_list_links_to_the_tokens_for_who_manages_them(client, provider, accountant, checkers):
    tokens_url = reverse("payments_provider:tokens", args=[provider.pk])
    client.login(username=accountant.username, password=PASSWORD)
    assert tokens_url in client.get(reverse("payments_provider:index")).content.decode()

    client.login(username=checkers[0][0].username, password=PASSWORD)
    assert tokens_url not in client.get(reverse("payments_provider:index")).content.decode()
    # Wagtail answers a PermissionDenied in the admin with a redirect to the dashboard.
    assert client.get(tokens_url).url == reverse("wagtailadmin_home")
    assert client.post(tokens_url, {"name": "x"}).url == reverse("wagtailadmin_home")
    assert not ProviderToken.objects.exists()


def test_revoking_from_the_screen_takes_the_tokens_own_provider(client, provider, accountant):
    other = services.provider_create(fields={"code": "BANK", "name": "Bank"}, by=accountant)
    token, _ = provider_token_create(provider=provider, by=accountant)
    client.login(username=accountant.username, password=PASSWORD)

    response = client.post(reverse("payments_provider:token_revoke", args=[other.pk, token.pk]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_district_accountant_sees_the_refusal_on_the_screen(client, provider, geo):
    district_accountant = UserFactory(role="Accountant", locations=[geo.district_a])
    client.login(username=district_accountant.username, password=PASSWORD)

    response = client.post(reverse("payments_provider:tokens", args=[provider.pk]), {"name": "x"}, follow=True)

    assert "programme-wide key" in response.content.decode()
    assert not ProviderToken.objects.exists()
