"""A refusal for a missing permission says in plain English what the role does not allow: never the
permission's internal code."""

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied

from schemes.bulk.models import PLAN_KINDS, UploadKind
from schemes.bulk.services import kind_permissions
from schemes.payments import reconciliation
from schemes.payments.api_services import MANAGE_TOKENS
from schemes.plans.models import BenefitPlan, PlanType
from schemes.registry.services import DUPLICATE_REVIEW_PERMISSION, MERGE_PERMISSION
from sites import services
from sites.refusals import PERMISSION_PHRASES, permission_refusal
from tests.factories import LocationFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = ("schemes/plans/services.py", "schemes/plans/schema.py", "schemes/registry/services.py",
                   "schemes/registry/approvals.py", "schemes/payments/services.py",
                   "schemes/payments/reconciliation.py", "schemes/payments/api_services.py",
                   "schemes/bulk/services.py", "sites/services.py")


def checked_permissions():
    """Every permission a service checks: the codes written in its checks, its named constants, and
    those built per beneficiary model and per upload kind."""
    written = {code for module in SERVICE_MODULES
               for code in re.findall(r"""(?:require_permission\(by, |has_perm\()"([a-z_]+\.[a-z_]+)"\)""",
                                      (ROOT / module).read_text())}
    named = {DUPLICATE_REVIEW_PERMISSION, MERGE_PERMISSION, reconciliation.PERMISSION, MANAGE_TOKENS}
    per_model = {f"plans.{verb}_{model._meta.model_name}" for verb in ("add", "change")
                 for model in (BenefitPlan(plan_type=t).beneficiary_model for t in PlanType.values)}
    per_kind = {"bulk.add_upload"}
    for kind in UploadKind.values:
        plans = [BenefitPlan(plan_type=t) for t in PlanType.values] if kind in PLAN_KINDS else [None]
        per_kind.update(code for plan in plans for code in kind_permissions(kind, plan))
    return written | named | per_model | per_kind


def test_every_permission_a_service_checks_has_a_phrase():
    assert checked_permissions() - set(PERMISSION_PHRASES) == set()


def test_every_phrase_is_for_a_permission_that_exists():
    existing = {f"{app_label}.{codename}" for app_label, codename in
                Permission.objects.values_list("content_type__app_label", "codename")}

    assert set(PERMISSION_PHRASES) - existing == set()


def test_a_refusal_says_what_the_role_does_not_allow():
    refusal = permission_refusal("registry.delete_household")

    assert isinstance(refusal, PermissionDenied)
    assert str(refusal) == "Your role does not allow you to delete or restore households."


def test_a_permission_without_a_phrase_is_named_by_its_human_name_never_its_code():
    message = str(permission_refusal("registry.view_individual"))

    assert message == "Your role does not allow this: view individual."
    assert "registry" not in message and "view_individual" not in message


def test_a_permission_unknown_to_the_database_is_not_named_at_all():
    assert str(permission_refusal("nowhere.do_something")) == "Your role does not allow this."


def test_a_service_refusal_names_no_permission_code(geo):
    viewer = UserFactory(role="Viewer", locations=[geo.district_a])

    with pytest.raises(PermissionDenied, match=r"^Your role does not allow you to delete locations\.$"):
        services.location_delete(location=LocationFactory(parent=geo.village_a), by=viewer)
