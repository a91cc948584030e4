import pytest
from django.core.exceptions import ValidationError

from schemes.registry import services
from schemes.registry.forms import HouseholdForm
from tests.factories import HouseholdFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("typed", ["BH-1", "bh-1"])
def test_a_household_code_taken_in_any_case_is_named_on_the_code_field(geo, clerk_a, typed):
    HouseholdFactory(code="BH-1", location=geo.village_a)
    form = HouseholdForm(data={"code": typed, "location": geo.village_a.pk}, for_user=clerk_a)
    # The form leaves uniqueness to the service (race-safe, in its transaction): no generic
    # "constraint violated" message from the model's case-insensitive index.
    assert form.is_valid(), form.errors

    with pytest.raises(ValidationError) as refused:
        services.household_create(fields=form.core_values(), attributes=form.attribute_values(), by=clerk_a)
    form.apply_service_errors(refused.value)

    assert form.errors == {"code": ["Another household already has this code (BH-1)."]}
