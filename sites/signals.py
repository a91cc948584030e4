from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed, post_migrate, post_save, pre_save
from django.dispatch import receiver
from wagtail.log_actions import get_active_log_context

from .audit import audit, audit_event
from .models import Location, UserAccess

User = get_user_model()


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


# Who may do what, and where, changes through several screens (Wagtail's users and groups, our user
# access); the audit follows the data, so every path is covered. The actor is Wagtail's log context,
# set for every admin request.

def _actor():
    return get_active_log_context().user


@receiver(m2m_changed, sender=User.groups.through)
def audit_role_change(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    if reverse:  # a group's member list was edited: `instance` is the group, pk_set the users
        users, changed = User.objects.filter(pk__in=pk_set or []), [instance.name]
    else:
        users = [instance]
        changed = sorted(Group.objects.filter(pk__in=pk_set or []).values_list("name", flat=True))
    for user in users:
        audit(user, "mizani.access_change", by=_actor(), data={
            "roles_" + action.removeprefix("post_"): changed})


@receiver(m2m_changed, sender=UserAccess.locations.through)
def audit_location_change(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"} or reverse:
        return
    codes = sorted(Location.objects.filter(pk__in=pk_set or []).values_list("code", flat=True))
    audit(instance.user, "mizani.access_change", by=_actor(), data={
        "locations_" + action.removeprefix("post_"): codes})


GUARDED_USER_FLAGS = ("is_superuser", "is_staff", "is_active")


@receiver(pre_save, sender=User)
def remember_user_flags(sender, instance, **kwargs):
    instance._flags_before = (
        User.objects.filter(pk=instance.pk).values(*GUARDED_USER_FLAGS).first() if instance.pk else None)


@receiver(post_save, sender=User)
def audit_user_flags(sender, instance, created, **kwargs):
    before = getattr(instance, "_flags_before", None) or {}
    changed = {flag: getattr(instance, flag) for flag in GUARDED_USER_FLAGS
               if before.get(flag, False) != getattr(instance, flag)}
    if changed and not (created and changed == {"is_active": True}):
        audit(instance, "mizani.access_change", by=_actor(), data=changed)


@receiver(m2m_changed, sender=Group.permissions.through)
def audit_role_permissions(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"} or reverse:
        return
    codes = sorted(f"{app}.{code}" for app, code in Permission.objects.filter(pk__in=pk_set or []).values_list(
        "content_type__app_label", "codename"))
    audit(instance, "mizani.access_change", by=_actor(), data={
        "role": instance.name, "permissions_" + action.removeprefix("post_"): codes})


@receiver(post_save, sender=UserAccess)
def audit_scope_change(sender, instance, created, **kwargs):
    audit(instance.user, "mizani.access_change", by=_actor(), data={"national_scope": instance.national_scope})


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
