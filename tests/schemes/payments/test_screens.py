"""The payment screens: payment plans (create, inspect, change through approval, formula tester),
the cycle schedule, the "generate payroll" button, the payroll page and its actions, cycles,
providers and points through their services (audited)."""

import csv
import datetime
import html
import io
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from wagtail.models import ModelLogEntry

from schemes.payments import services
from schemes.payments.models import (
    PaymentCycle,
    PaymentLine,
    PaymentPlan,
    PaymentPoint,
    PaymentProvider,
    Payroll,
    PayrollStatus,
)
from schemes.payments.reconciliation import reconcile_batch
from schemes.payments.viewsets import PaymentPlanViewSet
from schemes.plans.models import BenefitPlan, PlanField
from tests.factories import PASSWORD, UserFactory
from workflows.models import ApprovalRequest, ApprovalRule, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide

pytestmark = pytest.mark.django_db


def logged_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def designer(db):
    return UserFactory(username="designer", role="Scheme administrator", national=True)


@pytest.fixture
def plan_change_workflow(checkers):
    _users, group = checkers
    definition = WorkflowDefinition.objects.create(operation="payments.change_plan")
    WorkflowStep.objects.create(definition=definition, group=group, rule=ApprovalRule.ANY)
    return definition


def plan_form(benefit_plan, **overrides):
    data = {"code": "CG-NEW", "name": "New child grant payments", "benefit_plan": benefit_plan.pk,
            "formula": "300 + 50 * household_size", "criteria": "", "target_statuses": ["ACTIVE"],
            "ceiling_per_beneficiary": "1000.00", "limit_per_transaction": "", "periodicity": "2",
            "currency": "TZS"}
    data.update(overrides)
    return data


# --- payment plans --------------------------------------------------------------------------------


def test_a_designer_creates_a_payment_plan_with_the_rules_editor(client, designer, benefit_plan):
    client = logged_in(client, designer)
    page = client.get(reverse("payments_plan:add") + f"?benefit_plan={benefit_plan.pk}")
    assert page.status_code == 200
    assert b"rule-builder" in page.content or b"data-rule" in page.content

    response = client.post(reverse("payments_plan:add"), plan_form(benefit_plan))

    payment_plan = PaymentPlan.objects.get(code="CG-NEW")
    assert response.status_code == 302
    assert response["Location"] == reverse("payments_plan:inspect", args=[payment_plan.pk])
    assert payment_plan.formula_text == "300 + 50 * household_size"
    assert payment_plan.formula["rule"]  # the checked AST is stored
    assert payment_plan.ceiling_per_beneficiary == Decimal("1000.00")
    assert ModelLogEntry.objects.filter(action="mizani.payment_plan_change", object_id=str(payment_plan.pk)).exists()
    assert client.get(reverse("payments_plan:index")).status_code == 200
    record = client.get(reverse("payments_plan:inspect", args=[payment_plan.pk]))
    assert b"300 + 50 * household_size" in record.content


def test_a_formula_that_does_not_check_is_shown_on_its_field_and_nothing_is_created(client, designer, benefit_plan):
    response = logged_in(client, designer).post(reverse("payments_plan:add"),
                                                plan_form(benefit_plan, formula="salary * 2"))

    assert response.status_code == 200
    assert "Unknown field" in response.content.decode()
    assert not PaymentPlan.objects.filter(code="CG-NEW").exists()


def test_a_currency_is_upper_cased_and_one_that_is_not_a_code_is_refused_on_its_field(client, designer,
                                                                                     benefit_plan):
    client = logged_in(client, designer)

    client.post(reverse("payments_plan:add"), plan_form(benefit_plan, currency=" tzs"))
    refused = client.post(reverse("payments_plan:add"), plan_form(benefit_plan, code="CG-X", name="X", currency="T$"))

    assert PaymentPlan.objects.get(code="CG-NEW").currency == "TZS"
    assert refused.status_code == 200 and not PaymentPlan.objects.filter(code="CG-X").exists()
    assert refused.context["form"].errors["currency"] == [
        "Give the currency's ISO 4217 code: three capital letters, such as USD, EUR, KES or TZS."]


def test_a_change_of_currency_asks_for_the_amounts_in_the_new_currency(client, designer, payment_plan, checkers,
                                                                      plan_change_workflow):
    """1,200 TZS is not 1,200 USD: amounts left as they were are refused until given again, or kept on purpose."""
    BenefitPlan.objects.filter(pk=payment_plan.benefit_plan_id).update(currency="USD")  # the programme now pays in USD
    client = logged_in(client, designer)
    url = reverse("payments_plan:edit", args=[payment_plan.pk])
    same = plan_form(payment_plan.benefit_plan, code=payment_plan.code, name=payment_plan.name,
                     formula=payment_plan.formula_text, ceiling_per_beneficiary="1200.00",
                     limit_per_transaction="1000.00", currency="usd")

    asked = client.post(url, same)
    given_again = client.post(url, {**same, "ceiling_per_beneficiary": "90.00"})

    errors = asked.context["form"].errors
    assert asked.status_code == 200 and not ApprovalRequest.objects.exists()
    assert errors["ceiling_per_beneficiary"] == [
        "This is 1,200.00 TZS: the currency becomes USD. Give the ceiling per beneficiary in USD, or keep 1,200.00 USD "
        "by ticking the box below."]
    assert "limit_per_transaction" in errors
    assert "Keep these amounts as they are, in USD" in asked.content.decode()
    # The ceiling given again, the limit still as it was: only the limit is asked for.
    assert list(given_again.context["form"].errors) == ["limit_per_transaction"]

    kept = client.post(url, {**same, "amounts_in_new_currency": "on"})

    request = ApprovalRequest.objects.get(operation="payments.change_plan")
    assert kept.status_code == 302 and ["Currency", "TZS", "USD"] in request.summary["diff"]
    assert "amounts_in_new_currency" not in request.payload["fields"]


def test_the_amounts_are_not_asked_for_when_the_currency_stays_or_no_amount_is_set(client, designer, payment_plan,
                                                                                  checkers, plan_change_workflow):
    BenefitPlan.objects.filter(pk=payment_plan.benefit_plan_id).update(currency="USD")
    client = logged_in(client, designer)
    url = reverse("payments_plan:edit", args=[payment_plan.pk])
    form = plan_form(payment_plan.benefit_plan, code=payment_plan.code, name=payment_plan.name,
                     formula=payment_plan.formula_text, ceiling_per_beneficiary="1200.00",
                     limit_per_transaction="1000.00")

    same_currency = client.get(url)
    cleared = client.post(url, {**form, "currency": "USD", "ceiling_per_beneficiary": "",
                                "limit_per_transaction": ""})

    assert "amounts_in_new_currency" not in same_currency.context["form"].fields
    assert cleared.status_code == 302


def test_a_formula_change_waits_for_a_checker(client, designer, payment_plan, checkers, plan_change_workflow,
                                              django_capture_on_commit_callbacks):
    before = payment_plan.formula_text
    response = logged_in(client, designer).post(
        reverse("payments_plan:edit", args=[payment_plan.pk]),
        plan_form(payment_plan.benefit_plan, code=payment_plan.code, name=payment_plan.name,
                  formula="1000 - 10 * household_size", ceiling_per_beneficiary="1200.00",
                  limit_per_transaction="1000.00"))

    request = ApprovalRequest.objects.get(operation="payments.change_plan")
    assert response.status_code == 302 and response["Location"] == reverse("workflows_approvals:inspect",
                                                                            args=[request.pk])
    assert PaymentPlan.objects.get(pk=payment_plan.pk).formula_text == before
    assert ["Formula", before, "1000 - 10 * household_size"] in request.summary["diff"]

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])

    assert PaymentPlan.objects.get(pk=payment_plan.pk).formula_text == "1000 - 10 * household_size"


def test_a_plan_change_to_a_code_taken_already_is_refused_before_approval(client, designer, payment_plan,
                                                                         plan_change_workflow):
    services.payment_plan_create(fields={
        "code": "CG-OTHER", "name": "Other", "benefit_plan": payment_plan.benefit_plan, "formula": "100",
        "periodicity": 2, "currency": "TZS", "target_statuses": ["ACTIVE"]}, by=designer)

    response = logged_in(client, designer).post(
        reverse("payments_plan:edit", args=[payment_plan.pk]),
        plan_form(payment_plan.benefit_plan, code="CG-OTHER", name=payment_plan.name, formula=payment_plan.formula_text,
                  ceiling_per_beneficiary="1200.00", limit_per_transaction="1000.00"))

    assert response.status_code == 200
    assert "code" in response.context["form"].errors
    assert not ApprovalRequest.objects.filter(operation="payments.change_plan").exists()


def test_the_formula_tester_shows_inputs_and_amounts_and_saves_nothing(client, accountant, payment_plan, people):
    response = logged_in(client, accountant).post(
        reverse("payments_plan:formula_tester", args=[payment_plan.pk]),
        {"formula": "100 * household_size", "criteria": "", "ceiling_per_beneficiary": "550",
         "limit_per_transaction": "", "target_statuses": ["ACTIVE"]})

    text = response.content.decode()
    assert response.status_code == 200
    assert "<code>household_size</code> = 5" in text
    assert "500.00" in text and "550.00" in text  # five people: 500; six: 600 capped at 550
    assert PaymentPlan.objects.get(pk=payment_plan.pk).formula_text != "100 * household_size"
    assert not Payroll.objects.exists()


def test_a_viewer_cannot_create_or_change_payment_plans(client, payment_plan, geo):
    viewer = UserFactory(role="Viewer", national=True)
    client = logged_in(client, viewer)
    assert client.get(reverse("payments_plan:add")).status_code in (302, 403)
    assert client.get(reverse("payments_plan:inspect", args=[payment_plan.pk])).status_code == 404


def followed_subjects(page, name):
    """{benefit plan id: (rules subject, the builder's field names)} a rule field follows
    (static/plans/rules_follow.js), from the new-payment-plan page."""
    field = str(page.context["form"][name])
    assert 'data-rules-follow="benefit_plan"' in field
    subjects = json.loads(html.unescape(re.search(r'data-rules-subjects="([^"]*)"', field).group(1)))
    return {int(value): (entry["subject"], {spec["name"] for spec in json.loads(entry["fields"])})
            for value, entry in subjects.items()}


def test_a_new_payment_plans_rules_follow_the_benefit_plan_chosen_before_saving(client, designer, benefit_plan):
    PlanField.objects.create(plan=benefit_plan, name="school_grade", label="School grade", field_type="integer")
    household_plan = BenefitPlan.objects.create(code="HH", name="Household grant", plan_type="HOUSEHOLD")

    page = logged_in(client, designer).get(reverse("payments_plan:add"))

    assert '<select name="benefit_plan"' in page.content.decode()  # the select rules_follow.js listens to
    assert "plans/rules_follow.js" in page.content.decode()
    for name in ("formula", "criteria"):
        subjects = followed_subjects(page, name)
        assert {plan_id: subject for plan_id, (subject, _names) in subjects.items()} == {
            benefit_plan.pk: f"plan:{benefit_plan.pk}.INDIVIDUAL", household_plan.pk: f"plan:{household_plan.pk}.HOUSEHOLD"}
        assert "school_grade" in subjects[benefit_plan.pk][1] and "school_grade" not in subjects[household_plan.pk][1]
        assert "first_name" in subjects[benefit_plan.pk][1] and "first_name" not in subjects[household_plan.pk][1]


def test_a_new_payment_plan_offers_only_the_benefit_plans_the_user_may_see(designer, benefit_plan):
    form_class = PaymentPlanViewSet("payments_plan").get_form_class()
    blind = UserFactory(national=True)  # may not view benefit plans

    assert list(form_class(for_user=designer).fields["benefit_plan"].queryset) == [benefit_plan]
    form = form_class(plan_form(benefit_plan), for_user=blind)
    assert not form.is_valid() and "benefit_plan" in form.errors
    assert 'data-rules-subjects="{}"' in str(form["formula"])


def test_an_existing_payment_plans_rules_stay_on_its_benefit_plan(client, designer, payment_plan):
    page = logged_in(client, designer).get(reverse("payments_plan:edit", args=[payment_plan.pk]))

    formula = str(page.context["form"]["formula"])
    assert "data-rules-follow" not in formula
    assert f"plan:{payment_plan.benefit_plan.pk}.INDIVIDUAL" in html.unescape(formula)


# --- cycles, providers, points ----------------------------------------------------------------------


def test_the_schedule_form_creates_six_cycles_every_two_months(client, accountant):
    client = logged_in(client, accountant)
    assert b"Generate a schedule" in client.get(reverse("payments_cycle:index")).content

    response = client.post(reverse("payments_cycle:schedule"), {
        "prefix": "CG", "first_start": "2026-01-01", "periodicity": "2", "count": "6"})

    assert response.status_code == 302
    assert list(PaymentCycle.objects.order_by("start_date").values_list("code", flat=True)) == [
        "CG-2026-01", "CG-2026-03", "CG-2026-05", "CG-2026-07", "CG-2026-09", "CG-2026-11"]
    assert ModelLogEntry.objects.filter(action="mizani.payment_cycle").count() == 1

    again = client.post(reverse("payments_cycle:schedule"), {
        "prefix": "CG", "first_start": "2026-05-01", "periodicity": "2", "count": "2"})
    assert again.status_code == 200 and "exist already" in again.content.decode()
    assert PaymentCycle.objects.count() == 6


def test_cycles_providers_and_points_are_written_by_their_services_and_audited(client, accountant, geo):
    client = logged_in(client, accountant)
    client.post(reverse("payments_cycle:add"), {"code": "C1", "start_date": "2026-01-01", "end_date": "2026-01-31"})
    client.post(reverse("payments_provider:add"), {"code": "MPESA", "name": "M-Pesa"})
    provider = PaymentProvider.objects.get(code="MPESA")
    client.post(reverse("payments_point:add"), {"code": "P-A", "name": "Agent A", "provider": provider.pk,
                                                "location": geo.district_a.pk})
    point = PaymentPoint.objects.get(code="P-A")
    client.post(reverse("payments_point:edit", args=[point.pk]), {
        "code": "P-A", "name": "Agent A (market)", "provider": provider.pk, "location": geo.district_a.pk})
    cycle = PaymentCycle.objects.get(code="C1")
    refused = client.post(reverse("payments_cycle:edit", args=[cycle.pk]), {
        "code": "C1", "start_date": "2026-02-01", "end_date": "2026-01-31"})

    assert refused.status_code == 200  # ends before it starts
    assert PaymentCycle.objects.get(pk=cycle.pk).start_date == datetime.date(2026, 1, 1)
    assert PaymentPoint.objects.get(pk=point.pk).name == "Agent A (market)"
    actions = list(ModelLogEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions.count("mizani.payment_cycle") == 1
    assert actions.count("mizani.payment_provider") == 1
    assert actions.count("mizani.payment_point") == 2
    point_change = ModelLogEntry.objects.filter(action="mizani.payment_point").order_by("pk").last()
    assert point_change.data["diff"] == [["name", "Agent A", "Agent A (market)"]]


@pytest.fixture
def district_accountant(geo):
    return UserFactory(username="accountant_a", role="Accountant", locations=[geo.district_a])


def test_a_district_accountant_creates_a_point_in_their_district(client, district_accountant, geo):
    provider = services.provider_create(fields={"code": "MPESA", "name": "M-Pesa"}, by=district_accountant)
    client = logged_in(client, district_accountant)
    page = client.get(reverse("payments_point:add")).content.decode()
    assert reverse("location_chooser:choose") in page and "mizani/chooser_init.js" in page
    assert '<select name="location"' not in page

    response = client.post(reverse("payments_point:add"), {
        "code": "P-A", "name": "Agent A", "provider": provider.pk, "location": geo.village_a.pk})

    assert response.status_code == 302 and response["Location"] == reverse("payments_point:index")
    point = PaymentPoint.objects.get(code="P-A")
    assert point.location == geo.village_a
    assert ModelLogEntry.objects.filter(action="mizani.payment_point", object_id=str(point.pk)).exists()
    assert point.name in client.get(reverse("payments_point:index")).content.decode()


def test_a_point_outside_the_users_district_is_refused_on_the_location_field(client, district_accountant, geo):
    provider = services.provider_create(fields={"code": "MPESA", "name": "M-Pesa"}, by=district_accountant)
    point = services.point_create(fields={"code": "P-A", "name": "Agent A", "provider": provider,
                                          "location": geo.village_a}, by=district_accountant)
    client = logged_in(client, district_accountant)

    created = client.post(reverse("payments_point:add"), {
        "code": "P-B", "name": "Agent B", "provider": provider.pk, "location": geo.village_b.pk})
    moved = client.post(reverse("payments_point:edit", args=[point.pk]), {
        "code": "P-A", "name": "Agent A", "provider": provider.pk, "location": geo.district_b.pk})

    for response in (created, moved):
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert list(errors) == ["location"], errors
        assert errors["location"][0] in response.content.decode()
    assert list(PaymentPoint.objects.values_list("code", "location")) == [("P-A", geo.village_a.pk)]
    assert ModelLogEntry.objects.filter(action="mizani.payment_point").count() == 1  # the first one's creation


def test_a_point_without_a_location_is_refused_on_the_location_field(client, accountant):
    provider = services.provider_create(fields={"code": "MPESA", "name": "M-Pesa"}, by=accountant)

    response = logged_in(client, accountant).post(reverse("payments_point:add"), {
        "code": "P-X", "name": "Nowhere", "provider": provider.pk, "location": ""})

    assert response.status_code == 200
    assert "location" in response.context["form"].errors
    assert not PaymentPoint.objects.exists()


def test_a_cycle_with_a_payroll_keeps_its_dates(payment_plan, cycle, people, accountant,
                                                 django_capture_on_commit_callbacks):
    from django.core.exceptions import ValidationError

    with django_capture_on_commit_callbacks(execute=True):
        services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    with pytest.raises(ValidationError, match="has payrolls"):
        services.cycle_change(cycle=cycle, fields={"start_date": datetime.date(2025, 1, 2)}, by=accountant)


def test_a_viewer_cannot_add_providers(client, geo):
    viewer = UserFactory(role="Viewer", national=True)
    response = logged_in(client, viewer).post(reverse("payments_provider:add"), {"code": "X", "name": "X"})
    assert response.status_code in (302, 403)
    assert not PaymentProvider.objects.exists()


# --- generating and the payroll page ------------------------------------------------------------------


def test_generate_payroll_starts_the_job_and_the_page_shows_its_progress(client, accountant, payment_plan, cycle,
                                                                          people):
    client = logged_in(client, accountant)
    plan_page = client.get(reverse("payments_plan:inspect", args=[payment_plan.pk])).content.decode()
    assert "Generate payroll" in plan_page and cycle.code in plan_page

    response = client.post(reverse("payments_plan:generate", args=[payment_plan.pk]), {"cycle": cycle.pk})

    payroll = Payroll.objects.get()
    assert response["Location"] == reverse("payments_payroll:inspect", args=[payroll.pk])
    assert payroll.status == PayrollStatus.GENERATING  # the job runs once the request commits
    page = client.get(response["Location"]).content.decode()
    assert "data-job-live" in page
    assert reverse("workflows_jobs:status", args=[payroll.job_id]) in page
    assert "mizani/job_progress.js" in page
    again = client.post(reverse("payments_plan:generate", args=[payment_plan.pk]), {"cycle": cycle.pk})
    assert again["Location"] == response["Location"] and Payroll.objects.count() == 1


@pytest.fixture
def sealed(payment_plan, cycle, people, accountant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    return Payroll.objects.get(pk=payroll.pk)


def test_the_payroll_page_shows_the_seal_totals_and_the_lines_held_back(client, accountant, sealed):
    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()

    assert sealed.seal_hash in page
    assert "3,400.00 TZS" in page
    assert re.search(r"Still due</a></td><td>4</td><td>3,400.00", page)
    assert "1 line above 1,000.00 TZS" in page and "Not released" in page
    assert re.search(r'data-testid="payroll-status">Generated: to submit for approval<', page)
    assert "Submit for approval" in page
    assert "Submit the lines above the limit for approval" in page
    assert f"{reverse('payments_line:index')}?payroll={sealed.pk}" in page
    assert "data-job-live" not in page


def test_a_payroll_with_nobody_to_pay_offers_discarding_not_submitting(client, accountant, payment_plan, cycle,
                                                                        people, superuser,
                                                                        django_capture_on_commit_callbacks):
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"criteria": "household_size > 50"})
    with django_capture_on_commit_callbacks(execute=True):
        empty = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)
    client = logged_in(client, accountant)
    url = reverse("payments_payroll:inspect", args=[empty.pk])

    page = client.get(url).content.decode()
    refused = client.post(reverse("payments_payroll:submit", args=[empty.pk]), follow=True).content.decode()
    discarded = client.post(reverse("payments_payroll:discard", args=[empty.pk]), follow=True).content.decode()

    assert re.search(r'data-testid="nobody-to-pay">CG-PAY CG-2025-01 has no lines', page)
    assert "Submit for approval" not in page and "Discard this payroll" in page
    assert "there is nothing for a checker to approve" in refused
    assert "is discarded: a payroll can be generated again for cycle CG-2025-01" in discarded
    assert Payroll.objects.get(pk=empty.pk).status == PayrollStatus.REJECTED
    assert "Discard this payroll" not in discarded


def test_a_payrolls_screens_and_exports_keep_its_currency_when_the_plans_changes(client, accountant, sealed,
                                                                                 payment_plan, superuser):
    services.payment_plan_change(payment_plan=payment_plan, fields={"currency": "usd"}, by=superuser)
    client = logged_in(client, accountant)

    payroll_page = client.get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()
    plan_page = client.get(reverse("payments_plan:inspect", args=[payment_plan.pk])).content.decode()
    cycle_page = client.get(reverse("payments_cycle:inspect", args=[sealed.cycle_id])).content.decode()
    export = client.get(reverse("payments_payroll:index") + "?export=csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))

    assert PaymentPlan.objects.get(pk=payment_plan.pk).currency == "USD"
    assert re.search(r'data-testid="payroll-currency">TZS<', payroll_page)
    assert "3,400.00 TZS" in payroll_page and "USD" not in payroll_page
    assert "<td>3,400.00 TZS</td>" in plan_page and "<dt>Currency</dt><dd>USD" in plan_page
    assert "<td>3,400.00 TZS</td>" in cycle_page
    assert [(row["Total"], row["Currency"]) for row in rows] == [("3400.00", "TZS")]


def test_amounts_show_two_decimals_with_the_payrolls_currency(client, accountant, sealed):
    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()

    assert "1 line above 1,000.00 TZS, 1,100.00 TZS in all" in page
    assert re.search(r"Still due</a></td><td>4</td><td>3,400.00</td>", page)
    amounts = re.findall(r"<td>([\d,]+(?:\.\d+)?)</td></tr>", page)  # the totals tables' last cells
    assert amounts and all(re.fullmatch(r"\d{1,3}(,\d{3})*\.\d\d", amount) for amount in amounts)


def test_a_district_accountant_sees_totals_of_their_district_only(client, sealed, geo):
    district = UserFactory(role="Accountant", locations=[geo.district_b])
    page = logged_in(client, district).get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()

    assert re.search(r"Still due</a></td><td>1</td><td>600.00", page)
    assert "3,400.00 TZS" in page  # the seal is the payroll's own


def test_submit_then_export_links_per_payment_point_and_the_follow_up(client, accountant, sealed, checkers,
                                                                      payroll_workflow, geo, people,
                                                                      django_capture_on_commit_callbacks):
    provider = services.provider_create(fields={"code": "BANK", "name": "Bank"}, by=accountant)
    point = services.point_create(fields={"code": "PT-A", "name": "Branch A", "provider": provider,
                                          "location": geo.district_a}, by=accountant)
    client = logged_in(client, accountant)
    response = client.post(reverse("payments_payroll:submit", args=[sealed.pk]))
    request = ApprovalRequest.objects.get(operation="payments.approve_payroll")
    assert response["Location"] == reverse("workflows_approvals:inspect", args=[request.pk])
    page = client.get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()
    assert "Submit for approval</button>" not in page  # waiting for its decision

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checkers[0][0])
    page = client.get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()
    assert f"?point={point.pk}" in page
    assert "left out of every export until released" in page
    export = client.get(reverse("payments_payroll:export_csv", args=[sealed.pk]) + f"?point={point.pk}")
    rows = b"".join(export.streaming_content).decode().strip().splitlines()
    assert len(rows) == 1 + 2  # district A: three and six (five_with_baby is above the limit)

    line = PaymentLine.objects.get(payroll=sealed, beneficiary_id=people["six"].pk)
    reconcile_batch(payroll=sealed, by=accountant, rows=[{"code": line.code, "paid": False, "receipt": ""}])
    assert "Follow-up payroll of the unpaid lines" not in client.get(
        reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()  # not before the closing
    services.payroll_close(payroll=sealed, mark_due_unpaid=True, by=accountant)
    assert "Follow-up payroll of the unpaid lines" in client.get(
        reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        follow = client.post(reverse("payments_payroll:follow_up", args=[sealed.pk]))
    follow_up = Payroll.objects.get(follow_up_of=sealed)
    assert follow["Location"] == reverse("payments_payroll:inspect", args=[follow_up.pk])
    assert follow_up.line_count == sealed.line_count
    page = client.get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()
    assert re.search(r'data-testid="follow-up">Follow-up payroll <a [^>]+>[^<]+</a> is still to be submitted for '
                     r"approval\.</p>", page)


def test_the_payroll_page_shows_the_difference_to_the_previous_cycle(client, accountant, sealed, payment_plan,
                                                                     people, superuser,
                                                                     django_capture_on_commit_callbacks):
    from schemes.plans.services import beneficiary_change_status

    beneficiary_change_status(beneficiary=people["single_b"], action="suspend", reason="moved", by=superuser)
    following = PaymentCycle.objects.get(code="CG-2025-03")
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=following, by=accountant)

    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect", args=[payroll.pk])).content.decode()

    assert re.search(r"<dt>New</dt><dd>0</dd>\s*<dt>Removed</dt><dd>1 \(600.00 TZS before\)</dd>", page)
    assert "<td>Removed</td>" in page


def test_the_formula_tester_says_how_many_it_leaves_out_and_refuses_a_division_by_zero(client, accountant,
                                                                                        payment_plan, people):
    client = logged_in(client, accountant)
    url = reverse("payments_plan:formula_tester", args=[payment_plan.pk])
    fields = {"criteria": "", "ceiling_per_beneficiary": "", "limit_per_transaction": "", "target_statuses": ["ACTIVE"]}

    by_size = client.post(url, {**fields, "formula": "1200 / (household_size - 3)"}).content.decode()
    by_zero = client.post(url, {**fields, "formula": "1000 / 0"})

    # Four active: "three" (3 people) divides by zero, so it is left out; single_b (1): -600, left out.
    assert re.search(r"Of the 4 beneficiaries .* the formula pays 2 and leaves out 2 \(no amount\): 1 for whom it "
                     r"gives no value \(a value it reads is unknown, or it divides by zero for them\), 1 for whom it "
                     r"gives zero or less\.", by_size)
    assert by_zero.status_code == 200 and by_zero.context["result"] is None
    assert "Division by zero: this divisor is always 0" in by_zero.content.decode()


def test_the_formula_testers_sample_says_why_a_row_is_paid_nothing_and_shows_cents(client, accountant, payment_plan,
                                                                                  people, geo):
    from tests.factories import IndividualFactory
    from tests.schemes.payments.conftest import enrol

    # In no household: the household size it reads is unknown.
    alone = enrol(payment_plan.benefit_plan, IndividualFactory(location=geo.village_a))
    page = logged_in(client, accountant).post(reverse("payments_plan:formula_tester", args=[payment_plan.pk]), {
        "formula": "1000 / (household_size - 3)", "criteria": "", "ceiling_per_beneficiary": "",
        "limit_per_transaction": "", "target_statuses": ["ACTIVE"]}).content.decode()

    def row(beneficiary):
        cells = re.search(rf"<tr><td>{re.escape(str(beneficiary))}</td>\s*<td>.*?</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td></tr>", page,
                          re.S)
        return cells.groups()

    assert row(people["three"]) == ("no value", "nothing: division by zero for this beneficiary")
    assert row(people["six"]) == ("333.33", "333.33")  # 1000 / 3: cents, not 333.3333333333
    assert row(people["single_b"]) == ("-500.00", "nothing: the formula gives zero or less")
    assert row(alone) == ("no value", "nothing: a value it reads is unknown")


def test_the_formula_tester_warns_of_amounts_too_large_for_a_line(client, accountant, payment_plan, people):
    page = logged_in(client, accountant).post(reverse("payments_plan:formula_tester", args=[payment_plan.pk]), {
        "formula": "100000000000000000 * household_size", "criteria": "", "ceiling_per_beneficiary": "",
        "limit_per_transaction": "", "target_statuses": ["ACTIVE"]}).content.decode()

    assert re.search(r'data-testid="formula-too-large">4 amounts are above the largest amount a payment line holds '
                     r"\(9,999,999,999,999,999.99 TZS\): a payroll with this formula would be refused", page)
    assert "too large: a line holds at most 9,999,999,999,999,999.99" in page


def test_overlapping_payment_points_made_before_the_rule_are_flagged(client, accountant, geo):
    provider = services.provider_create(fields={"code": "BANK", "name": "Bank"}, by=accountant)
    # As made before points were refused to overlap (the service refuses it now).
    PaymentPoint.objects.create(code="PT-DA", name="District A", provider=provider, location=geo.district_a)
    village = PaymentPoint.objects.create(code="PT-VA", name="Village A", provider=provider, location=geo.village_a)
    alone = services.point_create(fields={"code": "PT-B", "name": "District B", "provider": provider,
                                          "location": geo.district_b}, by=accountant)
    client = logged_in(client, accountant)

    listing = client.get(reverse("payments_point:index")).content.decode()
    covered = client.get(reverse("payments_point:edit", args=[village.pk])).content.decode()
    other = client.get(reverse("payments_point:edit", args=[alone.pk])).content.decode()

    warning = f"Payment point PT-DA (Bank, {geo.district_a}) covers point PT-VA (Bank, {geo.village_a})"
    assert warning in listing and warning in covered
    assert "point-overlaps" not in other and alone.code in listing
    assert "two providers may pay them" in listing


def test_the_payroll_history_shows_its_submission_and_withdrawal(client, accountant, sealed, payroll_workflow):
    from workflows.services import approval_cancel

    approval_cancel(request=services.payroll_submit(payroll=sealed, by=accountant), by=accountant)
    page = logged_in(client, accountant).get(reverse("payments_payroll:history", args=[sealed.pk])).content.decode()

    assert "Payroll submitted" in page and "Payroll withdrawn" in page


def test_posts_are_refused_to_a_viewer(client, sealed, geo):
    viewer = UserFactory(role="Viewer", national=True)
    client = logged_in(client, viewer)
    for name in ("submit", "release_over_limit", "follow_up"):
        assert client.post(reverse(f"payments_payroll:{name}", args=[sealed.pk])).status_code == 404
    assert not ApprovalRequest.objects.exists()



def test_payment_search_reads_a_payrolls_lines_in_index_order(client, accountant, approved_payroll):
    """One payroll's lines by beneficiary, all lines newest payroll first: what the (payroll,
    beneficiary) index gives as it is read (a page of a million-line payroll reads twenty lines)."""
    client = logged_in(client, accountant)
    ids = sorted(approved_payroll.lines.values_list("beneficiary_id", flat=True))

    one = client.get(reverse("payments_line:index"), {"payroll": approved_payroll.pk}).context["object_list"]
    every = client.get(reverse("payments_line:index")).context["object_list"]

    assert [line.beneficiary_id for line in one] == ids
    assert [line.beneficiary_id for line in every] == ids[::-1]
    assert one.query.order_by[:2] == ("payroll_id", "beneficiary_id")


# --- found in a QA walk: statuses, who is left out, cycles, amounts ---------------------------------


def test_a_generated_payroll_reads_to_submit_until_submitted_then_waiting(client, accountant, sealed, checkers,
                                                                          payroll_workflow):
    client = logged_in(client, accountant)
    page_url = reverse("payments_payroll:inspect", args=[sealed.pk])
    generated = "Generated: to submit for approval"

    page = client.get(page_url).content.decode()
    listing = client.get(reverse("payments_payroll:index")).content.decode()
    filtered = client.get(reverse("payments_payroll:index") + "?status=GENERATED").content.decode()
    waiting_filter = client.get(reverse("payments_payroll:index") + "?status=PENDING_APPROVAL").content.decode()
    assert re.search(rf'data-testid="payroll-status">{generated}<', page) and "Submit for approval</button>" in page
    assert generated in listing and "Waiting for approval" not in listing.split("<tbody")[-1]
    assert sealed.name in filtered.split("<tbody")[-1] and sealed.name not in waiting_filter.split("<tbody")[-1]

    client.post(reverse("payments_payroll:submit", args=[sealed.pk]))

    page = client.get(page_url).content.decode()
    assert re.search(r'data-testid="payroll-status">Waiting for approval<', page)
    assert "Submit for approval</button>" not in page
    assert generated not in client.get(reverse("payments_payroll:index")).content.decode().split("<tbody")[-1]


def test_the_payroll_page_says_who_in_the_statuses_paid_is_left_out_and_why(client, accountant, payment_plan, cycle,
                                                                            people, superuser, geo,
                                                                            django_capture_on_commit_callbacks):
    from tests.factories import IndividualFactory
    from tests.schemes.payments.conftest import enrol

    enrol(payment_plan.benefit_plan, IndividualFactory(location=geo.village_a))  # in no household
    services.payment_plan_change(payment_plan=payment_plan, by=superuser, fields={"formula": "100 * household_size"})
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=cycle, by=accountant)

    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect", args=[payroll.pk])).content.decode()

    assert "<dt>Lines</dt><dd>4 lines</dd>" in page
    assert re.search(r'data-testid="left-out">1 active beneficiary left out: a value the formula reads is unknown '
                     r"\(household_size\)\.<", page)


def test_a_cycle_reads_open_once_paid_and_offers_no_open(client, accountant, approved_payroll, cycles):
    client = logged_in(client, accountant)
    paid = client.get(reverse("payments_cycle:inspect", args=[approved_payroll.cycle_id])).content.decode()
    unpaid = client.get(reverse("payments_cycle:inspect", args=[cycles[2].pk])).content.decode()

    assert re.search(r'data-testid="cycle-status">Open<', paid)
    assert "Open the cycle" not in paid and "Close the cycle" in paid
    assert re.search(r'data-testid="cycle-status">Planned<', unpaid) and "Open the cycle" in unpaid


def test_a_payment_line_shows_yes_or_no_and_its_inputs_as_a_table(client, accountant, approved_payroll, people):
    from tests.schemes.payments.conftest import line_of

    line = line_of(approved_payroll, people["five_with_baby"])
    page = logged_in(client, accountant).get(reverse("payments_line:inspect", args=[line.pk])).content.decode()

    assert re.search(r"Flagged over limit</dt>\s*<dd>\s*Yes\s*</dd>", page, re.I) or ">Yes<" in page
    assert "False" not in page and "True" not in page and "{&#x27;" not in page
    inputs = re.search(r'<table class="listing" data-testid="line-inputs">.*?</table>', page, re.S).group(0)
    assert '<th scope="row"><code>children_under_5</code></th><td>1</td>' in inputs
    assert '<th scope="row"><code>household_size</code></th><td>5</td>' in inputs
    assert "1,100.00 TZS" in page


def test_export_links_list_only_the_payment_points_with_lines(client, accountant, approved_payroll, geo):
    provider = services.provider_create(fields={"code": "BANK", "name": "Bank"}, by=accountant)
    with_lines = services.point_create(fields={"code": "PT-B", "name": "Branch B", "provider": provider,
                                               "location": geo.district_b}, by=accountant)
    without = services.point_create(fields={"code": "PT-Z", "name": "Branch Z", "provider": provider,
                                            "location": geo.other_region}, by=accountant)

    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect",
                                                     args=[approved_payroll.pk])).content.decode()

    exports = re.search(r'<ul data-testid="exports">.*?</ul>', page, re.S).group(0)
    assert f"?point={with_lines.pk}" in exports and "1 line still due (CSV)" in exports
    assert f"?point={without.pk}" not in exports and "Branch Z" not in exports


def test_payroll_lists_show_amounts_with_thousands_separated(client, accountant, approved_payroll):
    client = logged_in(client, accountant)
    payrolls = client.get(reverse("payments_payroll:index")).content.decode()
    lines = client.get(reverse("payments_line:index") + f"?payroll={approved_payroll.pk}").content.decode()

    assert "3,400.00" in payrolls and "3400.00" not in payrolls
    assert "1,100.00" in lines and "1100.00" not in lines


def test_a_cycle_whose_closed_payroll_left_a_line_unpaid_says_so_not_that_all_is_paid(client, accountant,
                                                                                      approved_payroll, people):
    """QA: "Every payroll of this cycle is paid and closed" showed under the warning of unpaid lines."""
    from tests.schemes.payments.conftest import line_of

    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": line.code, "paid": True, "receipt": f"R-{line.pk}"}
        for line in approved_payroll.lines.filter(status="DUE", flagged_over_limit=False)])
    services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    cycle_url = reverse("payments_cycle:inspect", args=[approved_payroll.cycle_id])
    client = logged_in(client, accountant)

    page = client.get(cycle_url).content.decode()  # the line above the limit, never released, left unpaid
    assert 'data-testid="cycle-left-unpaid"' in page and 'data-testid="cycle-settled"' not in page
    assert line_of(approved_payroll, people["five_with_baby"]).status == "UNPAID"


def test_the_payroll_page_names_line_statuses_as_the_reports_do(client, accountant, approved_payroll, people):
    from tests.schemes.payments.conftest import line_of

    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": line_of(approved_payroll, people["three"]).code, "paid": True, "receipt": "R1"},
        {"code": line_of(approved_payroll, people["six"]).code, "paid": False, "receipt": ""}])

    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect",
                                                     args=[approved_payroll.pk])).content.decode()

    totals = re.search(r'data-testid="totals-by-status">.*?</table>', page, re.S).group(0)
    assert re.findall(r"status=\w+\">([^<]+)</a></td><td>(\d+)</td>", totals) == [
        ("Still due", "2"), ("Paid", "1"), ("Failed (unpaid)", "1")]
    assert "Unpaid" not in totals


# --- a closed benefit plan; the difference in full; labels, not codes -----------------------------------


def close_benefit_plan(payment_plan):
    plan = BenefitPlan.objects.get(pk=payment_plan.benefit_plan_id)
    plan.close()
    plan.save()


def test_a_payroll_of_a_closed_plan_offers_discarding_not_submitting(client, accountant, sealed):
    close_benefit_plan(sealed.payment_plan)
    client = logged_in(client, accountant)

    page = client.get(reverse("payments_payroll:inspect", args=[sealed.pk])).content.decode()

    assert (f'data-testid="not-paying">Child grant (CG) is closed: its payrolls are no longer paid; discard {sealed}.'
            in page)
    assert "Submit for approval" not in page and "Discard this payroll" in page
    response = client.post(reverse("payments_payroll:discard", args=[sealed.pk]))
    assert response.status_code == 302 and Payroll.objects.get(pk=sealed.pk).status == PayrollStatus.REJECTED


def test_a_closed_plans_payment_plan_page_offers_no_generation(client, accountant, payment_plan, cycle):
    close_benefit_plan(payment_plan)
    client = logged_in(client, accountant)

    page = client.get(reverse("payments_plan:inspect", args=[payment_plan.pk])).content.decode()
    refused = client.post(reverse("payments_plan:generate", args=[payment_plan.pk]), {"cycle": cycle.pk}, follow=True)

    assert "Generate payroll" not in page
    assert "Child grant (CG) is closed: its payrolls are no longer paid, and no payroll is generated for it." in page
    assert "is closed: its payrolls are no longer paid" in refused.content.decode()
    assert not Payroll.objects.exists()


def test_the_payment_plan_page_names_statuses_and_offers_only_its_cycles(client, accountant, payment_plan, cycles,
                                                                        superuser):
    services.cycle_schedule_generate(prefix="EG", first_start=datetime.date(2025, 1, 1), periodicity=1, count=2,
                                     by=superuser)
    services.payment_plan_change(payment_plan=payment_plan, by=superuser,
                                 fields={"target_statuses": ["ACTIVE", "SUSPENDED"]})

    page = logged_in(client, accountant).get(reverse("payments_plan:inspect", args=[payment_plan.pk])).content.decode()

    assert 'data-testid="statuses-paid">Active, Suspended<' in page
    select = re.search(r'<select name="cycle".*?</select>', page, re.S).group(0)
    assert [code for code in re.findall(r">(\S+) \(", select)] == ["CG-2025-01", "CG-2025-03", "CG-2025-05"]
    assert "EG-2025" not in select


def test_the_difference_says_how_many_it_shows_and_links_to_all_of_them(client, accountant, sealed, payment_plan,
                                                                        people, superuser, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    from schemes.payments import views
    from schemes.plans.services import beneficiary_change_status

    monkeypatch.setattr(views, "DIFF_SAMPLE", 1)
    for name in ("single_b", "three"):
        beneficiary_change_status(beneficiary=people[name], action="suspend", reason="moved", by=superuser)
    following = PaymentCycle.objects.get(code="CG-2025-03")
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(payment_plan=payment_plan, cycle=following, by=accountant)
    client = logged_in(client, accountant)

    page = client.get(reverse("payments_payroll:inspect", args=[payroll.pk])).content.decode()
    export = client.get(reverse("payments_payroll:diff_csv", args=[payroll.pk]))

    csv_url = reverse("payments_payroll:diff_csv", args=[payroll.pk])
    assert re.search(r"<dt>Removed</dt><dd>2 \(1,400.00 TZS before\)</dd>", page)
    assert page.count("<td>Removed</td>") == 1
    assert re.search(r'data-testid="diff-more-removed"><td colspan="4">The first 1 of 2 removed, by beneficiary: '
                     rf'<a href="{csv_url}">every difference \(CSV\)</a>', page)
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["Change", "Line", "Beneficiary ID", "First name", "Last name", "Amount before", "Amount now",
                       "Currency"]
    assert sorted((row[0], row[2], row[5], row[6]) for row in rows[1:]) == sorted([
        ("Removed", str(people["single_b"].pk), "600.00", ""), ("Removed", str(people["three"].pk), "800.00", "")])
    assert ModelLogEntry.objects.filter(action="mizani.export", object_id=str(payroll.pk), data__rows=2).exists()


def test_the_difference_export_has_only_the_users_locations(client, sealed, payment_plan, people, geo, superuser,
                                                            accountant, django_capture_on_commit_callbacks):
    from schemes.plans.services import beneficiary_change_status

    for name in ("single_b", "three"):
        beneficiary_change_status(beneficiary=people[name], action="suspend", reason="moved", by=superuser)
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(
            payment_plan=payment_plan, cycle=PaymentCycle.objects.get(code="CG-2025-03"), by=accountant)
    district_a = UserFactory(username="accountant_a", role="Accountant", locations=[geo.district_a])

    export = logged_in(client, district_a).get(reverse("payments_payroll:diff_csv", args=[payroll.pk]))

    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode("utf-8-sig"))))
    assert [row[2] for row in rows[1:]] == [str(people["three"].pk)]


def test_payment_search_shows_the_over_limit_flag_as_yes_or_no(client, accountant, approved_payroll):
    page = logged_in(client, accountant).get(
        reverse("payments_line:index") + f"?payroll={approved_payroll.pk}").content.decode()

    cells = re.findall(r"<td[^>]*>\s*(True|False|Yes|No)\s*</td>", page)
    assert sorted(cells) == ["No", "No", "No", "Yes"]


# --- closing a cycle with unpaid lines; the exports of lines still due; the cycles' list -------------------


def test_a_cycle_closes_with_unpaid_lines_only_once_the_accountant_leaves_them_unpaid(client, accountant,
                                                                                      approved_payroll):
    cycle_url = reverse("payments_cycle:inspect", args=[approved_payroll.cycle_id])
    payroll_url = reverse("payments_payroll:inspect", args=[approved_payroll.pk])
    client = logged_in(client, accountant)
    refused = client.post(reverse("payments_cycle:close", args=[approved_payroll.cycle_id]), follow=True)
    assert "has payrolls approved and not yet closed (CG-PAY CG-2025-01): their lines can still be paid" in html.unescape(
        refused.content.decode())
    assert ("No follow-up payroll of the unpaid lines" not in client.get(payroll_url).content.decode())  # none unpaid
    services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)

    page = client.get(cycle_url).content.decode()
    assert re.search(r'data-testid="cycle-left-unpaid"><a href="[^"]+">CG-PAY CG-2025-01</a> has unpaid lines and no '
                     r"follow-up payroll: once the cycle is closed they can no longer be paid\.", page)
    assert 'data-testid="cycle-settled"' not in page  # "every payroll is paid" would contradict it
    client.post(reverse("payments_cycle:close", args=[approved_payroll.cycle_id]))
    assert PaymentCycle.objects.get(pk=approved_payroll.cycle_id).status == "OPEN"
    assert "Follow-up payroll of the unpaid lines</button>" in client.get(payroll_url).content.decode()

    client.post(reverse("payments_cycle:close", args=[approved_payroll.cycle_id]), {"leave_unpaid": "on"})

    assert PaymentCycle.objects.get(pk=approved_payroll.cycle_id).status == "CLOSED"
    page = client.get(payroll_url).content.decode()
    assert "Follow-up payroll of the unpaid lines</button>" not in page
    assert ('data-testid="no-follow-up">No follow-up payroll of the unpaid lines: Cycle CG-2025-01 is closed, its '
            "unpaid lines left unpaid when it was closed") in page


def test_an_approved_payrolls_unpaid_lines_say_they_are_followed_up_once_it_is_closed(client, accountant,
                                                                                     approved_payroll, people):
    from tests.schemes.payments.conftest import line_of

    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": line_of(approved_payroll, people["six"]).code, "paid": False, "receipt": ""}])

    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect",
                                                     args=[approved_payroll.pk])).content.decode()

    assert ('data-testid="no-follow-up">No follow-up payroll of the unpaid lines: Only a closed (reconciled) '
            "payroll's unpaid lines can be paid again: close the payroll first.") in html.unescape(page)


def export_rows(client, url):
    response = client.get(url)
    return response, list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_the_export_sends_only_the_lines_still_due_unless_asked_for_all(client, accountant, approved_payroll, people,
                                                                       geo):
    from tests.schemes.payments.conftest import line_of

    provider = services.provider_create(fields={"code": "BANK", "name": "Bank"}, by=accountant)
    point = services.point_create(fields={"code": "PT-A", "name": "Branch A", "provider": provider,
                                          "location": geo.district_a}, by=accountant)
    three, six = line_of(approved_payroll, people["three"]), line_of(approved_payroll, people["six"])
    reconcile_batch(payroll=approved_payroll, by=accountant, rows=[
        {"code": three.code, "paid": True, "receipt": "R-3"}, {"code": six.code, "paid": False, "receipt": ""}])
    client = logged_in(client, accountant)
    url = reverse("payments_payroll:export_csv", args=[approved_payroll.pk])

    page = client.get(reverse("payments_payroll:inspect", args=[approved_payroll.pk])).content.decode()
    due = re.search(r'<ul data-testid="exports">.*?</ul>', page, re.S).group(0)
    every = re.search(r'<ul data-testid="exports-all">.*?</ul>', page, re.S).group(0)
    assert "Branch A (Bank): District A" not in due  # its two lines released for payment are paid or unpaid
    # The record holds every line, the one above the transaction limit (withheld from payment) too.
    assert f"?lines=all&amp;point={point.pk}" in every and "3 lines in all (CSV)" in every

    response, rows = export_rows(client, url)
    assert [row["Code"] for row in rows] == [line_of(approved_payroll, people["single_b"]).code]
    assert response["Content-Disposition"].endswith('cg-pay-cg-2025-01.csv"')
    _response, rows = export_rows(client, f"{url}?lines=all&point={point.pk}")
    statuses = {row["Code"]: row["Status"] for row in rows}
    assert (statuses[three.code], statuses[six.code], sorted(statuses.values())) == ("Paid", "Unpaid",
                                                                                     ["Due", "Paid", "Unpaid"])
    entry = ModelLogEntry.objects.filter(action="mizani.export").latest("pk")
    assert (entry.data["lines"], entry.data["rows"]) == ("all", 3)

    services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    page = client.get(reverse("payments_payroll:inspect", args=[approved_payroll.pk])).content.decode()
    assert 'data-testid="exports"' not in page and "Export for the payment providers" not in page
    assert "The payroll's lines, as a record" in page and 'data-testid="exports-all"' in page
    response, rows = export_rows(client, url)
    assert len(rows) == 4 and response["Content-Disposition"].endswith('cg-pay-cg-2025-01-all-lines.csv"')


def test_the_cycles_list_opens_the_cycles_page_and_keeps_edit_in_the_menu(client, accountant, cycle):
    page = logged_in(client, accountant).get(reverse("payments_cycle:index")).content.decode()

    title = re.search(rf'<a href="([^"]+)"[^>]*>\s*{cycle.code}\s*</a>', page)
    assert title.group(1) == reverse("payments_cycle:inspect", args=[cycle.pk])
    assert reverse("payments_cycle:edit", args=[cycle.pk]) in page


def test_the_difference_export_writes_amounts_with_cents(client, accountant, approved_payroll, payment_plan, people,
                                                         superuser, django_capture_on_commit_callbacks):
    from tests.schemes.payments.conftest import FORMULA, line_of

    services.payment_plan_change(payment_plan=payment_plan, fields={"formula": f"{FORMULA} + 1"}, by=superuser)
    with django_capture_on_commit_callbacks(execute=True):
        payroll = services.payroll_generate_start(
            payment_plan=payment_plan, cycle=PaymentCycle.objects.get(code="CG-2025-03"), by=accountant)

    _response, rows = export_rows(logged_in(client, accountant), reverse("payments_payroll:diff_csv",
                                                                         args=[payroll.pk]))

    three = {row["Beneficiary ID"]: row for row in rows}[str(people["three"].pk)]
    assert (three["Change"], three["Amount before"], three["Amount now"]) == ("Changed amount", "800.00", "801.00")
    assert line_of(approved_payroll, people["three"]).amount == Decimal("800.00")


def test_a_follow_up_payrolls_page_says_what_it_pays(client, accountant, approved_payroll,
                                                     django_capture_on_commit_callbacks):
    services.payroll_close(payroll=approved_payroll, mark_due_unpaid=True, by=accountant)
    with django_capture_on_commit_callbacks(execute=True):
        follow_up = services.payroll_follow_up_start(payroll=approved_payroll, by=accountant)

    page = logged_in(client, accountant).get(reverse("payments_payroll:inspect", args=[follow_up.pk])).content.decode()

    assert "No earlier cycle of this payment plan has a payroll" not in page
    assert re.search(r"A follow-up payroll pays the unpaid lines of <a [^>]+>CG-PAY CG-2025-01</a>, at their amounts",
                     page)
