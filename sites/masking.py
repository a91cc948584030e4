"""Masking of sensitive values (national ID, phone, sensitive attributes) for users without the permission."""

SENSITIVE_PERMISSION = "registry.view_sensitive_data"


def can_view_sensitive(user):
    return bool(user and user.is_active and user.has_perm(SENSITIVE_PERMISSION))


def mask(value, visible=3):
    """Keep the last `visible` characters of long values (enough to tell IDs apart on a list);
    hide short values entirely, where three characters would give most of it away."""
    if not value:
        return value
    text = str(value)
    if len(text) < 2 * visible:
        return "•" * len(text)
    return "•" * (len(text) - visible) + text[-visible:]


def masked_for(user, value):
    return value if can_view_sensitive(user) else mask(value)
