"""Shared fixtures. Arrange with factories (tests/factories.py); act through services and
selectors."""

from types import SimpleNamespace

import pytest

from schemes.registry.models import MemberRole
from tests.factories import UserFactory, build_branch


@pytest.fixture
def member_roles(db):
    """The default member roles, by code (post_migrate creates them; this states the dependency)."""
    MemberRole.ensure_defaults()
    return {code: MemberRole.objects.get(pk=code) for code, _ in MemberRole.DEFAULTS}


@pytest.fixture
def geo(db):
    """One region holding district A and district B, each with one ward and one village, plus a
    second region with its own branch. Records placed anywhere in A are out of B's reach."""
    a = build_branch(prefix="A")
    b = build_branch(region=a.region, prefix="B")
    other = build_branch(prefix="Z")
    return SimpleNamespace(
        region=a.region,
        district_a=a.district,
        ward_a=a.ward,
        village_a=a.village,
        district_b=b.district,
        ward_b=b.ward,
        village_b=b.village,
        other_region=other.region,
        other_village=other.village,
    )


@pytest.fixture
def clerk_a(geo):
    """A data-entry clerk assigned to district A."""
    return UserFactory(username="clerk_a", role="Clerk", locations=[geo.district_a])


@pytest.fixture
def clerk_b(geo):
    return UserFactory(username="clerk_b", role="Clerk", locations=[geo.district_b])


@pytest.fixture
def national_clerk(db):
    return UserFactory(username="clerk_national", role="Clerk", national=True)


@pytest.fixture
def viewer_a(geo):
    return UserFactory(username="viewer_a", role="Viewer", locations=[geo.district_a])


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


def pytest_configure(config):
    # WhiteNoise warns when `collectstatic` has not run; tests that drive the admin through the test
    # Client do not need collected static files.
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning")
