from wagtail.users.apps import WagtailUsersAppConfig


class MizaniUsersConfig(WagtailUsersAppConfig):
    """Wagtail's users app, with the user admin of sites/users.py (superusers guarded)."""

    user_viewset = "sites.users.UserViewSet"
