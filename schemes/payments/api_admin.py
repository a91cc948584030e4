"""Admin screens for the provider API: a provider's tokens (list, create showing the secret once,
revoke). Thin: the services check permission and scope and audit."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from sites.refusals import refusal_message

from . import selectors
from .api_services import MANAGE_TOKENS, provider_token_create, provider_token_revoke
from .models import ProviderToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False,
                           help_text="What the token is for, e.g. the provider's payment system.")


def _provider_of(request, pk):
    if not request.user.has_perm(MANAGE_TOKENS):
        raise PermissionDenied
    return get_object_or_404(selectors.providers_for(request.user), pk=pk)


@never_cache
def provider_tokens(request, pk):
    """The provider's tokens; POST creates one and shows its secret, this once."""
    provider = _provider_of(request, pk)
    form = TokenForm(request.POST or None)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _token, secret = provider_token_create(provider=provider, name=form.cleaned_data["name"], by=request.user)
        except (ValidationError, PermissionDenied) as error:
            messages.error(request, refusal_message(error))
            return redirect("payments_provider:tokens", provider.pk)
        form = TokenForm()
    return TemplateResponse(request, "payments/provider_tokens.html", {
        "provider": provider, "form": form, "secret": secret, "page_title": f"API tokens: {provider}",
        "tokens": ProviderToken.objects.filter(provider=provider).select_related("created_by", "revoked_by"),
        # Only the points in the user's locations are named; the others are counted.
        "points": selectors.points_for(request.user).filter(provider=provider).order_by("name"),
        "points_elsewhere": provider.points.exclude(
            pk__in=selectors.points_for(request.user).filter(provider=provider).values("pk")).count(),
    })


@require_POST
def provider_token_revoke_view(request, pk, token_pk):
    provider = _provider_of(request, pk)
    token = get_object_or_404(ProviderToken.objects.filter(provider=provider), pk=token_pk)
    try:
        provider_token_revoke(token=token, by=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Token {token.prefix}… revoked: it no longer works.")
    return redirect("payments_provider:tokens", provider.pk)
