"""The payment forms: a payment point's location is picked in the location chooser among the user's
locations (sites.forms.ScopedRecordForm), never from a select of the whole tree."""

import pytest
from django.urls import reverse

from schemes.payments import services
from schemes.payments.models import PaymentPoint
from schemes.payments.viewsets import PointViewSet
from sites.choosers import LocationChooserWidget
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def district_accountant(geo):
    return UserFactory(username="accountant_a", role="Accountant", locations=[geo.district_a])


@pytest.fixture
def provider(superuser):
    return services.provider_create(fields={"code": "MPESA", "name": "M-Pesa"}, by=superuser)


def point_form(user, data=None, **kwargs):
    form_class = PointViewSet("payments_point").get_form_class()
    return form_class(data, for_user=user, **kwargs)


def point_data(provider, location, **overrides):
    return {"code": "P-A", "name": "Agent A", "provider": provider.pk, "location": location.pk, **overrides}


def test_the_point_form_offers_the_location_chooser_not_a_select_of_every_location(geo, district_accountant):
    form = point_form(district_accountant)
    html = form.as_div()

    assert isinstance(form.fields["location"].widget, LocationChooserWidget)
    assert reverse("location_chooser:choose") in html
    assert "data-mizani-chooser" in html  # started by static/mizani/chooser_init.js, no inline script
    assert "<script" not in html
    assert '<select name="location"' not in html
    assert geo.district_b.name not in html and geo.village_a.name not in html


def test_the_point_form_accepts_the_users_own_locations_only(geo, district_accountant):
    location = point_form(district_accountant).fields["location"]

    assert set(location.queryset) == {geo.district_a, geo.ward_a, geo.village_a}
    assert location.required


def test_a_location_outside_the_users_scope_is_refused_on_the_location_field(geo, district_accountant, provider):
    form = point_form(district_accountant, point_data(provider, geo.village_b))

    assert not form.is_valid()
    assert list(form.errors) == ["location"]


def test_a_point_keeps_its_location_when_edited(geo, district_accountant, provider):
    point = services.point_create(fields={"code": "P-A", "name": "Agent A", "provider": provider,
                                          "location": geo.village_a}, by=district_accountant)

    form = point_form(district_accountant, instance=point)

    assert form.initial["location"] == geo.village_a.pk
    assert f'value="{geo.village_a.pk}"' in form.as_div()


def test_an_edited_point_cannot_move_outside_the_users_scope(geo, district_accountant, provider):
    point = services.point_create(fields={"code": "P-A", "name": "Agent A", "provider": provider,
                                          "location": geo.village_a}, by=district_accountant)

    form = point_form(district_accountant, point_data(provider, geo.district_b), instance=point)

    assert not form.is_valid()
    assert "location" in form.errors
    assert PaymentPoint.objects.get(pk=point.pk).location == geo.village_a


# --- a new payment plan's currency; the cycle a payroll is generated for ---------------------------------


def payment_plan_form(user, data=None, **kwargs):
    from schemes.payments.viewsets import PaymentPlanViewSet

    return PaymentPlanViewSet("payments_plan").get_form_class()(data, for_user=user, **kwargs)


@pytest.fixture
def designer(db):
    return UserFactory(username="designer", role="Scheme administrator", national=True)


def test_a_new_payment_plan_pays_in_its_benefit_plans_currency_by_default(designer, benefit_plan):
    from schemes.plans.models import BenefitPlan
    from sites.models import OrganisationSettings

    assert benefit_plan.currency == "TZS"
    only_plan = payment_plan_form(designer)
    assert (only_plan.initial["benefit_plan"], only_plan.initial["currency"]) == (benefit_plan.pk, "TZS")

    BenefitPlan.objects.create(code="OA", name="Old age grant", currency="KES")
    settings = OrganisationSettings.load()
    settings.currency = "EUR"
    settings.save()
    assert payment_plan_form(designer, initial={"benefit_plan": benefit_plan.pk}).initial["currency"] == "TZS"
    assert payment_plan_form(designer).initial["currency"] == "EUR"  # two plans, none chosen yet


def test_a_payment_plan_in_another_currency_than_its_benefit_plans_is_refused(designer, benefit_plan):
    data = {"code": "CG-USD", "name": "Child grant in dollars", "benefit_plan": benefit_plan.pk, "formula": "100",
            "criteria": "", "target_statuses": ["ACTIVE"], "ceiling_per_beneficiary": "", "limit_per_transaction": "",
            "periodicity": "1", "currency": "USD"}

    refused = payment_plan_form(designer, data)
    assert not refused.is_valid()
    assert refused.errors["currency"] == [
        "Child grant (CG) pays in TZS: a payment plan pays in its benefit plan's currency. Give TZS (to pay in "
        "another currency, change the benefit plan's first)."]
    assert payment_plan_form(designer, {**data, "currency": "tzs"}).is_valid()


def test_the_generate_form_offers_the_plans_cycles_with_the_nearest_open_one_chosen(benefit_plan, superuser):
    import datetime

    from schemes.payments import selectors
    from schemes.payments.forms import GeneratePayrollForm

    monthly_plan = services.payment_plan_create(fields={
        "code": "EG-PAY", "name": "Elderly grant", "benefit_plan": benefit_plan, "formula": "100", "periodicity": 1,
        "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=superuser)
    two_monthly = services.cycle_schedule_generate(prefix="CG", first_start=datetime.date(2025, 1, 1),
                                                   periodicity=2, count=3, by=superuser)
    services.cycle_change_status(cycle=two_monthly[1], action="open", by=superuser)
    monthly = services.cycle_schedule_generate(prefix="EG", first_start=datetime.date(2025, 1, 1), periodicity=1,
                                               count=4, by=superuser)
    services.cycle_change_status(cycle=monthly[2], action="open", by=superuser)

    form = GeneratePayrollForm(cycles=selectors.cycles_to_pay(superuser, monthly_plan),
                               today=datetime.date(2025, 3, 15))

    assert list(form.fields["cycle"].queryset) == monthly
    assert form.initial["cycle"] == monthly[2].pk
    assert str(form["cycle"]).count("<option") == 4 and "CG-2025" not in str(form["cycle"])
    assert f'<option value="{monthly[2].pk}" selected>' in str(form["cycle"])


def test_a_new_payment_plan_pays_in_the_currency_all_the_benefit_plans_pay_in_until_one_is_chosen(designer,
                                                                                                  benefit_plan):
    from schemes.plans.models import BenefitPlan
    from sites.models import OrganisationSettings

    BenefitPlan.objects.create(code="OA", name="Old age grant", currency="TZS")
    assert OrganisationSettings.load().currency == "USD"

    assert payment_plan_form(designer).initial["currency"] == "TZS"  # two plans, both in TZS
