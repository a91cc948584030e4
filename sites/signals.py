from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from .audit import audit, audit_event


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs):
    audit(user, "mizani.login", by=user, data={"ip": _client_ip(request)})


@receiver(user_login_failed)
def audit_login_failure(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    data = {"username": username, "ip": _client_ip(request)}
    user = get_user_model().objects.filter(username=username).first()
    if user is not None:
        audit(user, "mizani.login_failed", by=None, data=data)
    else:
        audit_event("mizani.login_failed", data=data)


@receiver(post_migrate)
def create_role_presets(sender, app_config, **kwargs):
    # post_migrate is sent once per app with models; act on the last one, when every permission exists.
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if app_config is not with_models[-1]:
        return
    from .roles import ensure_roles

    ensure_roles()


def _client_ip(request):
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "")
