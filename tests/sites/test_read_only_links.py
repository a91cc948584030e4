"""Wagtail links an object (in the audit trail, a usage listing) to its admin page through the URL
finder that its viewset registers: for a read-only viewset, the record's page, never an edit view it
does not serve."""

import pytest
import wagtail.admin.urls  # noqa: F401 (registers the admin's viewsets, listed below)
from django.test import Client
from django.urls import reverse
from wagtail.admin.admin_url_finder import AdminURLFinder
from wagtail.admin.viewsets import viewsets
from wagtail.admin.viewsets.model import ModelViewSet

from schemes.bulk.models import Upload, UploadKind
from schemes.payments.models import Payroll
from sites.audit import audit
from tests.schemes.payments import conftest as payments

accountant, benefit_plan, cycle, cycles, payment_plan = (
    payments.accountant, payments.benefit_plan, payments.cycle, payments.cycles, payments.payment_plan)

pytestmark = pytest.mark.django_db


@pytest.fixture
def read_only_records(geo, clerk_a, accountant, payment_plan, cycle):
    """An upload and a payroll, each with an audit entry (as an error file download and a payroll
    export write), so the audit trail lists and links them."""
    upload = Upload.objects.create(stored_name="u1.csv", original_name="people.csv", kind=UploadKind.INDIVIDUALS,
                                   uploaded_by=clerk_a, scope_root=geo.district_a)
    payroll = Payroll.objects.create(name="March", payment_plan=payment_plan, cycle=cycle, created_by=accountant)
    audit(upload, "mizani.export", by=clerk_a)
    audit(payroll, "mizani.export", by=accountant)
    return upload, payroll


def test_a_superusers_audit_trail_and_its_export_link_read_only_records_to_their_pages(read_only_records, superuser):
    upload, payroll = read_only_records
    client = Client()
    client.force_login(superuser)

    page = client.get(reverse("mizani_site_history"))
    export = client.get(reverse("mizani_site_history"), {"export": "csv"})

    assert page.status_code == 200 and export.status_code == 200
    html = page.content.decode()
    assert reverse("bulk_upload:inspect", args=[upload.pk]) in html
    assert reverse("payments_payroll:inspect", args=[payroll.pk]) in html
    assert f"Payroll {payroll.pk}".encode() in b"".join(export.streaming_content)


@pytest.mark.parametrize("viewset", [viewset for viewset in viewsets.viewsets if isinstance(viewset, ModelViewSet)],
                         ids=lambda viewset: viewset.name)
def test_every_model_viewset_links_to_a_page_it_serves(viewset):
    served = {pattern.name for pattern in viewset.get_urlpatterns()}
    url = AdminURLFinder().get_edit_url(viewset.model(pk=1))

    if "edit" in served:
        assert url == reverse(viewset.get_url_name("edit"), args=[1])
    elif "inspect" in served:
        assert url == reverse(viewset.get_url_name("inspect"), args=[1])
    else:
        assert url is None
