"""An amount with more decimals than its attribute allows, in the individuals file: the row is refused
and its message names the column, as every other bad value in a file is."""

import pytest

from schemes.bulk.models import StagedError, StagedIndividual, UploadStatus
from schemes.registry.models import Individual
from tests.factories import RegistryFieldFactory, UserFactory
from tests.schemes.bulk.test_individuals import errors_of, receive

pytestmark = pytest.mark.django_db

HEADER = ["first_name", "last_name", "dob", "sex", "national_id", "location", "monthly_income"]


@pytest.fixture
def clerk(geo, member_roles):
    RegistryFieldFactory(name="monthly_income", field_type="decimal", min_value=0, decimal_places=2)
    return UserFactory(role="Clerk", locations=[geo.district_a])


def test_an_amount_with_too_many_decimals_is_refused_naming_its_row_and_column(
        clerk, geo, django_capture_on_commit_callbacks):
    """QA: "1234.5678912" in a monthly income was imported as it was."""
    village = geo.village_a.code
    upload = receive(clerk, [
        ["Asha", "Mollel", "1980-02-01", "F", "TZ-001", village, "1234.50"],
        ["Baraka", "Mollel", "1982-06-30", "M", "TZ-002", village, "1234.567"],
        ["Chausiku", "Ngowi", "1975-12-12", "F", "TZ-003", village, "12.500"],
    ], django_capture_on_commit_callbacks, header=HEADER)

    assert upload.status == UploadStatus.READY
    assert (upload.counts["rows"], upload.counts["valid"], upload.counts["errors"]) == (3, 2, 1)
    [error] = StagedError.objects.filter(upload=upload)
    assert (error.row_number, error.column, error.message) == (3, "monthly_income", "At most 2 decimals ('1234.567' "
                                                                                      "has 3).")
    [row] = errors_of(upload)
    assert (row["first_name"], row["row"], row["errors"]) == (
        "Baraka", "3", "monthly_income: At most 2 decimals ('1234.567' has 3).")
    # 12.500 is 12.5 by value: within 2 decimals, stored as every 12.5 is.
    assert dict(StagedIndividual.objects.filter(upload=upload, valid=True).values_list(
        "first_name", "attributes")) == {"Asha": {"monthly_income": "1234.5"}, "Chausiku": {"monthly_income": "12.5"}}
    assert not Individual.objects.exists()
