"""The openIMIS individuals template must load unchanged (DOMAIN): first_name, last_name, dob and a
column per schema field; group_code, individual_role and recipient_info optional; no sex column."""

import pytest

from schemes.bulk import services
from schemes.bulk.models import UploadStatus
from schemes.registry.models import Individual
from tests.factories import RegistryFieldFactory, UserFactory
from tests.schemes.bulk.test_individuals import errors_of, receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def national_clerk(member_roles):
    RegistryFieldFactory(name="income", field_type="decimal", min_value=0)
    return UserFactory(role="Clerk", national=True)


def test_a_file_with_only_names_dates_of_birth_and_schema_fields_is_imported_sex_not_recorded(
        national_clerk, django_capture_on_commit_callbacks):
    upload = receive(national_clerk, [["Asha", "Mollel", "1980-02-01", "120000"], ["Baraka", "Ngowi", "1981-03-04", ""]],
                     django_capture_on_commit_callbacks, header=["first_name", "last_name", "dob", "income"])

    assert upload.status == UploadStatus.READY
    assert (upload.counts["valid"], upload.counts["errors"]) == (2, 0)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(upload=upload, mode="VALID_ROWS", by=national_clerk)

    assert dict(Individual.objects.values_list("first_name", "sex")) == {"Asha": "", "Baraka": ""}
    assert Individual.objects.get(first_name="Asha").attributes == {"income": "120000"}


def test_a_sex_column_still_refuses_what_is_not_a_sex_and_leaves_a_blank_not_recorded(
        national_clerk, django_capture_on_commit_callbacks):
    upload = receive(national_clerk, [["Asha", "Mollel", "1980-02-01", "X"], ["Baraka", "Ngowi", "1981-03-04", ""]],
                     django_capture_on_commit_callbacks, header=["first_name", "last_name", "dob", "gender"])

    assert [row["errors"] for row in errors_of(upload)] == [
        "gender: 'X' is not F, M or O (or leave it empty: not recorded)."]
    assert upload.counts["valid"] == 1
