"""Masking of sensitive values (national ID, phone, sensitive attributes) for users without the permission."""

SENSITIVE_PERMISSION = "registry.view_sensitive_data"


def can_view_sensitive(user):
    return bool(user and user.is_active and user.has_perm(SENSITIVE_PERMISSION))


MASK = "•"
MASKED_MESSAGE = ("This value is masked (•), as exports show it to users who may not see it: put the real value, "
                  "or leave the cell empty.")


def is_masked(text):
    """A value that came out of a masked export: importing it would overwrite the real one."""
    return MASK in text


def mask(value, visible=3):
    """Keep the last `visible` characters of long values (enough to tell IDs apart on a list);
    hide short values entirely, where three characters would give most of it away."""
    if not value:
        return value
    text = str(value)
    if len(text) < 2 * visible:
        return MASK * len(text)
    return MASK * (len(text) - visible) + text[-visible:]


def masked_for(user, value):
    return value if can_view_sensitive(user) else mask(value)
