import pytest

from sites.masking import can_view_sensitive, mask, masked_for
from tests.factories import UserFactory


@pytest.mark.parametrize(
    "value, expected",
    [
        ("NID00000123", "••••••••123"),
        ("123456", "•••456"),
        ("1234", "••••"),  # short values (an amount) are hidden entirely: 3 digits would give it away
        ("123", "•••"),
        ("12", "••"),
        ("", ""),
        (None, None),
        (12345, "•••••"),
    ],
)
def test_mask_keeps_the_last_three_characters_of_long_values_only(value, expected):
    assert mask(value) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, sees",
    [
        ("Clerk", True),
        ("Checker", True),
        ("System administrator", True),
        ("Viewer", False),
        ("Manager", False),
        ("Accountant", False),
        ("Scheme administrator", False),
    ],
)
def test_who_sees_sensitive_values(role, sees):
    user = UserFactory(role=role)

    assert can_view_sensitive(user) is sees
    assert masked_for(user, "NID99887766") == ("NID99887766" if sees else "••••••••766")


@pytest.mark.django_db
def test_inactive_user_and_nobody_see_masked_values():
    assert can_view_sensitive(UserFactory(role="Clerk", is_active=False)) is False
    assert can_view_sensitive(None) is False
    assert can_view_sensitive(UserFactory(is_superuser=True)) is True
