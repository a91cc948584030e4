"""Targeting by score: the score in SQL is the score in Python, the deepest cut-off above a record
wins (else the default, else nobody qualifies), the simulation counts what a plain count finds (by
region, in the user's locations), and enrolment with a scoring adds exactly those who qualify.

Scores and cut-offs are multiples of 0.25 or 0.5, which SQLite's floating point holds exactly."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from schemes.plans import services, targeting
from schemes.plans.catalogues import candidate_catalogue
from schemes.plans.models import Beneficiary, BenefitPlan, HouseholdBeneficiary, PlanCutoff, PlanType
from schemes.registry.models import Household, Individual
from schemes.rules.compiler import evaluate, to_sql
from schemes.rules.forms import rule_text
from schemes.rules.nodes import to_json
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)
from workflows.models import ApprovalRequest, WorkflowDefinition, WorkflowStep

pytestmark = pytest.mark.django_db

CRITERIA = "age >= 18"


@pytest.fixture
def plan(db):
    return BenefitPlan.objects.create(code="PMT", name="Poverty grant", status="ACTIVE")


@pytest.fixture
def people(geo):
    """Scored by `income` alone, so each person's score is their income."""
    RegistryFieldFactory(name="income", field_type="decimal")
    RegistryFieldFactory(name="kids", field_type="integer")

    def person(name, location, income, **attributes):
        if income is not None:
            attributes["income"] = str(income)
        return IndividualFactory(first_name=name, location=location, attributes=attributes)

    return {
        "village_a_low": person("Asha", geo.village_a, 30),  # village A's own cut-off 30: in
        "village_a_high": person("Amani", geo.village_a, 35),  # deeper 30 wins over district A's 40: out
        "ward_a": person("Wema", geo.ward_a, 35),  # district A's 40: in
        "district_b": person("Bahati", geo.village_b, 45),  # the region's 50: in
        "district_b_high": person("Baraka", geo.village_b, 55),  # out
        "other_region": person("Zawadi", geo.other_village, 20),  # default 20: in
        "other_region_high": person("Zuberi", geo.other_village, 25),  # out
        "nowhere": person("Nuru", None, 15),  # no location: default 20, in
        "unknown_income": person("Siri", geo.village_a, None),  # NULL score: never in
    }


def scoring_for(geo, *, default="20", formula="income"):
    return {"formula": formula, "default_cutoff": default,
            "cutoffs": {str(geo.region.pk): "50", str(geo.district_a.pk): "40", str(geo.village_a.pk): "30"}}


def qualifying_names(queryset, plan, scoring):
    return set(targeting.qualifying(queryset, plan=plan, scoring=scoring).values_list("first_name", flat=True))


def with_permission(user, codename):
    user.user_permissions.add(Permission.objects.get(content_type__app_label="plans", codename=codename))
    return type(user).objects.get(pk=user.pk)  # a fresh object: permissions are cached per instance


# --- the score and the cut-offs ---------------------------------------------------------------


def test_the_score_in_sql_is_the_score_in_python_record_by_record_nulls_included(plan, people, member_roles):
    household = HouseholdFactory()
    MembershipFactory(household=household, individual=people["village_a_low"], role=member_roles["HEAD"])
    MembershipFactory(household=household, individual=people["unknown_income"], role=member_roles["SON"])
    catalogue = candidate_catalogue(plan)
    node = targeting.score_node("100 - income / 4 - 2.5 * household_size + (10 if sex == 'M' else 0)", catalogue)

    scored = Individual.objects.annotate(score=to_sql(node, catalogue, "number")).order_by("pk")

    in_sql = [record.score for record in scored]
    in_python = [evaluate(node, catalogue, record) for record in scored]
    assert in_sql == in_python
    assert in_python[0] == Decimal("100") - Decimal("7.5") - Decimal("5")  # Asha, in a household of two
    assert in_python[1:] == [None] * (len(in_python) - 1)  # no income or no household: NULL


def test_the_deepest_cutoff_above_a_record_wins_elsewhere_the_default(plan, people, geo):
    scoring = scoring_for(geo)

    cutoffs = dict(Individual.objects.annotate(cutoff=targeting.cutoff_expression(scoring, "location__path"))
                   .values_list("first_name", "cutoff"))

    assert {name: Decimal(cutoff) for name, cutoff in cutoffs.items()} == {
        "Asha": 30, "Amani": 30, "Siri": 30, "Wema": 40, "Bahati": 50, "Baraka": 50, "Zawadi": 20, "Zuberi": 20,
        "Nuru": 20}
    assert qualifying_names(Individual.objects.all(), plan, scoring) == {"Asha", "Wema", "Bahati", "Zawadi", "Nuru"}


def test_without_a_cutoff_nobody_qualifies(plan, people, geo):
    scoring = {"formula": "income", "cutoffs": {str(geo.district_a.pk): "40"}, "default_cutoff": None}

    assert qualifying_names(Individual.objects.all(), plan, scoring) == {"Asha", "Amani", "Wema"}
    assert qualifying_names(Individual.objects.all(), plan, {**scoring, "cutoffs": {}}) == set()


def test_qualifying_is_one_filter_on_the_same_statement(plan, people, geo, django_assert_num_queries):
    matching = Individual.objects.filter(first_name__startswith="A")
    catalogue = candidate_catalogue(plan)
    with django_assert_num_queries(2):  # the cut-off locations' paths, then the people
        assert len(targeting.qualifying(matching, plan=plan, scoring=scoring_for(geo), catalogue=catalogue)) == 1


# --- checking a scoring -----------------------------------------------------------------------


@pytest.mark.parametrize("formula, message", [
    ("first_name", r"must give a number, but it gives text\. \(line 1, column 1\)"),
    ("2 * incme", r"Unknown field 'incme'.*\(line 1, column 5\)"),
    ("income +", r"Not a valid expression"),
    ("", "Write a score formula"),
])
def test_a_bad_formula_is_refused_with_its_position(plan, people, formula, message):
    with pytest.raises(ValidationError, match=message) as refused:
        targeting.validate_scoring({"formula": formula}, candidate_catalogue(plan))

    assert list(refused.value.message_dict) == ["formula"]


@pytest.mark.parametrize("scoring, part, message", [
    ({"cutoffs": {"999999": "10"}}, "cutoffs", "No location with id 999999"),
    ({"cutoffs": {"north": "10"}}, "cutoffs", "'north' is not a location id"),
    ({"cutoffs": {"99999999999999999": "10"}}, "cutoffs", "No location with id 99999999999999999"),
    ({"cutoffs": ["north"]}, "cutoffs", "per location id"),
    ({"default_cutoff": "ten"}, "default_cutoff", "'ten' is not a number"),
    ({"default_cutoff": "1.23456"}, "default_cutoff", "at most 14 digits and 4 decimals"),
    ({"default_cutoff": "Infinity"}, "default_cutoff", "not a number"),
])
def test_a_bad_cutoff_is_refused_naming_the_part(plan, people, scoring, part, message):
    with pytest.raises(ValidationError) as refused:
        targeting.validate_scoring({"formula": "income", **scoring}, candidate_catalogue(plan))

    assert message in refused.value.message_dict[part][0]


def test_a_scoring_is_normalised_to_a_checked_ast_and_plain_decimal_strings(plan, people, geo):
    checked = targeting.validate_scoring(
        {"formula": "income * 2", "default_cutoff": Decimal("1E+1"),
         "cutoffs": {geo.region.pk: Decimal("12.50"), str(geo.district_a.pk): ""}}, candidate_catalogue(plan))

    assert checked == {"formula": {"binary": "*", "left": {"field": "income"},
                                   "right": {"literal": "2", "type": "number"}},
                       "formula_text": "income * 2", "cutoffs": {str(geo.region.pk): "12.50"},
                       "default_cutoff": "10"}
    assert targeting.validate_scoring(checked, candidate_catalogue(plan)) == checked


def test_the_plans_saved_scoring(plan, geo):
    assert targeting.plan_scoring(plan) is None
    plan.score_formula = {"text": "income", "rule": {"field": "income"}}
    plan.score_cutoff = Decimal("20.5")
    PlanCutoff.objects.create(plan=plan, location=geo.region, cutoff=Decimal("50"))

    assert targeting.plan_scoring(plan) == {"formula": {"field": "income"}, "formula_text": "income",
                                            "cutoffs": {str(geo.region.pk): "50.0000"}, "default_cutoff": "20.5"}


# --- simulation -------------------------------------------------------------------------------


def test_a_simulation_counts_only_the_users_locations(plan, people, geo, clerk_a, clerk_b):
    seen_by_a = targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring_for(geo), by=clerk_a)
    seen_by_b = targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring_for(geo), by=clerk_b)

    assert (seen_by_a["matching"], seen_by_a["qualifying"]) == (4, 2)  # Asha, Amani, Wema, Siri; Asha, Wema
    assert (seen_by_b["matching"], seen_by_b["qualifying"]) == (2, 1)
    assert [row["region"] for row in seen_by_a["by_region"]] == [geo.region.name]
    assert [row["name"].split()[0] for row in seen_by_a["sample"]] == ["Asha", "Wema"]


def test_counts_by_region_are_what_plain_counts_find(plan, people, geo, national_clerk):
    scoring = scoring_for(geo)
    result = targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring, by=national_clerk,
                                amount=Decimal("12.35"))

    adults = Individual.objects.filter(dob__year__lte=2007)
    rows = {row["id"]: row for row in result["by_region"]}
    for region in (geo.region, geo.other_region):
        in_region = adults.filter(location__path__startswith=region.path)
        assert (rows[region.pk]["region"], rows[region.pk]["matching"], rows[region.pk]["qualifying"]) == (
            region.name, in_region.count(), targeting.qualifying(in_region, plan=plan, scoring=scoring).count())
    assert (rows[None]["region"], rows[None]["matching"], rows[None]["qualifying"]) == ("No location", 1, 1)
    assert result["by_region"][-1]["id"] is None  # "No location" comes last
    assert (rows[geo.region.pk]["coverage_percent"], rows[geo.region.pk]["cutoff"]) == (Decimal("50.0"), Decimal(50))
    assert (rows[geo.other_region.pk]["coverage_percent"], rows[geo.other_region.pk]["cutoff"]) == (
        Decimal("50.0"), Decimal(20))
    assert (result["matching"], result["qualifying"]) == (9, 5)
    assert result["coverage_percent"] == Decimal("55.6")
    assert result["cost"] == Decimal("61.75") and isinstance(result["cost"], Decimal)
    assert [row["score"] for row in result["sample"]] == [30, 35, 45, 20, 15]


def test_a_simulation_counts_who_left_the_plan_apart_and_leaves_them_out_of_the_cost(plan, people, geo,
                                                                                     national_clerk):
    # Qualifying: Asha, Wema, Bahati, Zawadi, Nuru. Asha graduated, Wema was rejected, Bahati is enrolled.
    services.enrolment_execute(plan=plan, rule="first_name in ['Asha', 'Bahati']", target_status="ACTIVE",
                               by=national_clerk)
    services.enrolment_execute(plan=plan, rule="first_name == 'Wema'", target_status="POTENTIAL", by=national_clerk)
    for name, action in (("Asha", "graduate"), ("Wema", "reject")):
        services.beneficiary_change_status(beneficiary=Beneficiary.objects.get(individual__first_name=name),
                                           action=action, reason="Left", by=national_clerk)

    result = targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring_for(geo), by=national_clerk,
                                amount=Decimal("10"))

    assert {key: result[key] for key in ("qualifying", "already_enrolled", "would_add", "graduated_earlier",
                                         "rejected_earlier")} == {
        "qualifying": 5, "already_enrolled": 1, "would_add": 2, "graduated_earlier": 1, "rejected_earlier": 1}
    assert result["cost"] == Decimal("30")  # Bahati, Zawadi and Nuru


def test_a_simulation_without_an_amount_has_no_cost_and_needs_the_permission_to_enrol(plan, people, geo,
                                                                                        viewer_a, clerk_a):
    assert targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring_for(geo), by=clerk_a)["cost"] is None
    with pytest.raises(PermissionDenied):
        targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring_for(geo), by=viewer_a)


def test_a_household_plan_scores_households_by_their_fields(geo, member_roles, national_clerk):
    plan = BenefitPlan.objects.create(code="HH", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")
    sizes = {"HH-BIG": (geo.village_a, 4), "HH-MID": (geo.village_b, 3), "HH-SMALL": (geo.other_village, 1)}
    for code, (location, size) in sizes.items():
        household = HouseholdFactory(code=code, location=location)
        for role in ["HEAD", "SON", "DAUGHTER", "SON"][:size]:
            MembershipFactory(household=household, individual=IndividualFactory(location=location),
                              role=member_roles[role])
    scoring = {"formula": "100 - 10 * household_size", "cutoffs": {str(geo.district_b.pk): "60"},
               "default_cutoff": "70"}
    clerk = with_permission(national_clerk, "add_householdbeneficiary")

    result = targeting.simulate(plan=plan, rule="household_size >= 1", scoring=scoring, by=clerk)

    assert {row["name"]: row["score"] for row in result["sample"]} == {"HH-BIG": 60}  # HH-MID's 70 > B's 60
    assert (result["matching"], result["qualifying"]) == (3, 1)
    catalogue = candidate_catalogue(plan)
    node = targeting.score_node(scoring["formula"], catalogue)
    assert {h.code: evaluate(node, catalogue, h) for h in Household.objects.all()} == {
        "HH-BIG": 60, "HH-MID": 70, "HH-SMALL": 90}

    added = services.enrolment_execute(plan=plan, rule="household_size >= 1", target_status="POTENTIAL",
                                       by=clerk, scoring=scoring)
    assert added == 1 and HouseholdBeneficiary.objects.get(plan=plan).household.code == "HH-BIG"


def test_enrolment_with_a_scoring_adds_exactly_those_who_qualify(plan, people, geo, national_clerk):
    scoring = targeting.validate_scoring(scoring_for(geo), candidate_catalogue(plan))

    preview = services.enrolment_preview(plan=plan, rule=CRITERIA, target_status="POTENTIAL", by=national_clerk,
                                         scoring=scoring)
    added = services.enrolment_execute(plan=plan, rule=CRITERIA, target_status="POTENTIAL", by=national_clerk,
                                       scoring=scoring)

    assert preview["would_add"] == added == 5
    assert set(Beneficiary.objects.filter(plan=plan).values_list("individual__first_name", flat=True)) == {
        "Asha", "Wema", "Bahati", "Zawadi", "Nuru"}


# --- the simulation page ----------------------------------------------------------------------


def refused(response):
    """Wagtail turns a PermissionDenied in the admin into a redirect home with a message."""
    return response.status_code == 403 or (response.status_code == 302
                                           and response["Location"] == reverse("wagtailadmin_home"))


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def saved_plan(plan, geo):
    plan.criteria = {"POTENTIAL": {"text": CRITERIA, "rule": to_json(services.criteria_node(
        CRITERIA, candidate_catalogue(plan)))}}
    plan.score_formula = {"text": "income", "rule": {"field": "income"}}
    plan.score_cutoff = Decimal("20")
    plan.save()
    PlanCutoff.objects.create(plan=plan, location=geo.region, cutoff=Decimal("50"))
    PlanCutoff.objects.create(plan=plan, location=geo.village_a, cutoff=Decimal("30"))
    definition = WorkflowDefinition.objects.create(operation="plans.enrol")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    UserFactory(role="Checker", locations=[geo.district_a])
    return plan


def simulation_form(geo, **overrides):
    return {"target_status": "POTENTIAL", "criteria": CRITERIA, "formula": "income", "default_cutoff": "20",
            f"cutoff_{geo.region.pk}": "50", "amount": "10", "submit": "simulate", **overrides}


def test_the_page_starts_from_the_plans_criteria_formula_and_cutoffs(saved_plan, people, geo, clerk_a):
    response = client_for(clerk_a).get(reverse("plans_plan:simulate", args=[saved_plan.pk]))

    form = response.context["form"]
    assert response.status_code == 200
    assert (rule_text(form["criteria"].value()), rule_text(form["formula"].value()),
            form["default_cutoff"].value()) == (CRITERIA, "income", Decimal("20"))
    assert [field.label for field in form.region_fields()] == [f"Cut-off in {geo.region.name}"]  # A's region only
    assert form[f"cutoff_{geo.region.pk}"].value() == Decimal("50")
    assert [cutoff.location for cutoff in form.kept_cutoffs] == [geo.village_a]
    assert "Enrol these" not in response.content.decode()


def test_simulate_then_enrol_these_sends_the_scoring_for_approval(saved_plan, people, geo, clerk_a):
    client = client_for(clerk_a)
    url = reverse("plans_plan:simulate", args=[saved_plan.pk])

    simulated = client.post(url, simulation_form(geo, **{f"cutoff_{geo.region.pk}": "40"}))
    result = simulated.context["result"]
    assert (result["matching"], result["qualifying"], result["cost"]) == (4, 2, Decimal("20.00"))
    assert "Enrol these" in simulated.content.decode() and 'data-testid="by-region"' in simulated.content.decode()
    assert not ApprovalRequest.objects.exists()

    sent = client.post(url, simulation_form(geo, **{f"cutoff_{geo.region.pk}": "40", "submit": "enrol"}))

    request = ApprovalRequest.objects.get(operation="plans.enrol")
    assert sent.status_code == 302 and sent.url == reverse("workflows_approvals:inspect", args=[request.pk])
    # The plan's own cut-off, kept as it is, as people write it (QA: "30.0000" was shown).
    assert request.payload["scoring"]["cutoffs"] == {str(geo.region.pk): "40", str(geo.village_a.pk): "30"}
    assert request.payload["scoring"]["formula"] == {"field": "income"}
    assert request.payload["scoring"]["default_cutoff"] == "20"
    assert request.summary["counts"]["Cost at that amount (enrolled already and added)"] == "20.00 USD"
    assert not Beneficiary.objects.exists()


def test_the_simulated_cost_is_shown_with_thousands_separators(saved_plan, people, geo, clerk_a):
    saved_plan.currency = "TZS"
    saved_plan.save()
    response = client_for(clerk_a).post(reverse("plans_plan:simulate", args=[saved_plan.pk]),
                                        simulation_form(geo, amount="285000", **{f"cutoff_{geo.region.pk}": "40"}))

    assert response.context["result"]["cost"] == Decimal("570000")  # two qualify
    page = response.content.decode()
    assert "<dd>570,000.00 TZS</dd>" in page and "570000" not in page


def test_a_formula_mistake_is_shown_under_the_formula(saved_plan, people, geo, clerk_a):
    response = client_for(clerk_a).post(reverse("plans_plan:simulate", args=[saved_plan.pk]),
                                        simulation_form(geo, formula="income * 'x'", submit="enrol"))

    assert response.context["result"] is None
    assert "needs a number, not text" in str(response.context["form"].errors["formula"])
    assert not ApprovalRequest.objects.exists()


def test_the_page_is_forbidden_without_the_permission_to_enrol(saved_plan, geo, viewer_a):
    client = client_for(viewer_a)
    url = reverse("plans_plan:simulate", args=[saved_plan.pk])

    assert refused(client.get(url))
    assert refused(client.post(url, simulation_form(geo, submit="enrol")))
    assert not ApprovalRequest.objects.exists()


def test_a_household_plan_needs_the_household_permission(geo):
    plan = BenefitPlan.objects.create(code="HH", name="Household grant", plan_type=PlanType.HOUSEHOLD)
    clerk = with_permission(UserFactory(role="Viewer", locations=[geo.district_a]), "add_beneficiary")

    assert refused(client_for(clerk).get(reverse("plans_plan:simulate", args=[plan.pk])))
    assert client_for(with_permission(clerk, "add_householdbeneficiary")).get(
        reverse("plans_plan:simulate", args=[plan.pk])).status_code == 200


# --- who could not be scored ------------------------------------------------------------------


def test_a_simulation_counts_those_who_could_not_be_scored(plan, people, geo, clerk_a, national_clerk):
    seen_by_a = targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring_for(geo), by=clerk_a)
    per_kid = targeting.simulate(plan=plan, rule=CRITERIA, scoring=scoring_for(geo, formula="income / kids"),
                                 by=national_clerk)

    assert (seen_by_a["matching"], seen_by_a["qualifying"], seen_by_a["unscored"]) == (4, 2, 1)  # Siri: no income
    assert [row["unscored"] for row in seen_by_a["by_region"]] == [1]
    assert (per_kid["matching"], per_kid["qualifying"], per_kid["unscored"]) == (9, 0, 9)  # nobody has `kids`


def test_the_page_says_how_many_could_not_be_scored(saved_plan, people, geo, clerk_a):
    url = reverse("plans_plan:simulate", args=[saved_plan.pk])

    none_scored = client_for(clerk_a).post(url, simulation_form(geo, formula="income / (income - income)"))
    one_unscored = client_for(clerk_a).post(url, simulation_form(geo))

    result = none_scored.context["result"]
    assert (result["matching"], result["qualifying"], result["unscored"]) == (4, 0, 4)
    assert ("4 could not be scored (a value missing or a division by zero): nobody could, so nobody qualifies."
            in none_scored.content.decode())
    assert ("1 could not be scored (a value missing or a division by zero): they do not qualify."
            in one_unscored.content.decode())


# --- scheme administrators simulate; those who enrol enrol -------------------------------------


@pytest.fixture
def scheme_admin(geo):
    return UserFactory(username="schemeadmin_a", role="Scheme administrator", locations=[geo.district_a])


def test_a_scheme_administrator_simulates_but_may_not_enrol_these(saved_plan, people, geo, scheme_admin):
    client = client_for(scheme_admin)
    url = reverse("plans_plan:simulate", args=[saved_plan.pk])

    plan_page = client.get(reverse("plans_plan:inspect", args=[saved_plan.pk])).content.decode()
    simulated = client.post(url, simulation_form(geo))
    sent = client.post(url, simulation_form(geo, submit="enrol"))

    assert url in plan_page and reverse("plans_plan:enrol", args=[saved_plan.pk]) not in plan_page
    assert targeting.simulate(plan=saved_plan, rule=CRITERIA, scoring=targeting.plan_scoring(saved_plan),
                              by=scheme_admin)["matching"] == 4
    assert simulated.status_code == 200 and simulated.context["result"]["matching"] == 4
    assert "Enrol these" not in simulated.content.decode()
    assert sent.status_code == 200 and "Enrol these" not in sent.content.decode()
    assert not ApprovalRequest.objects.exists()
