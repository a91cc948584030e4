"""What a rule may name, read in SQL and in Python, gives the same answer (NULLs included):

- the household catalogue (size, children under 5, people of 60 or more, the head's sex and age, the
  households' typed attributes) over households with and without a head, with no members, with a
  deleted member and with a deleted head;
- a plan's beneficiary catalogue (the subject's catalogue rooted at the beneficiary's person or
  household, extended by the plan's attributes), read over Beneficiary / HouseholdBeneficiary rows;
- the candidate catalogue, where a plan attribute cannot exist yet: NULL, so a rule that needs one
  matches nobody.

Every rule is also checked against the answer worked out by hand, so that SQL and Python cannot agree
on something wrong (or on nothing)."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from schemes.plans import services
from schemes.plans.catalogues import beneficiary_catalogue, candidate_catalogue
from schemes.plans.models import Beneficiary, BenefitPlan, HouseholdBeneficiary, PlanField, PlanType
from schemes.registry.models import Household, Individual, RegistryField, Sex
from schemes.rules import compiler
from schemes.rules.catalogue import builtin_fields, household_catalogue, individual_catalogue
from tests.factories import (
    HouseholdFactory,
    IndividualFactory,
    MembershipFactory,
    RegistryFieldFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 11, 24)
DELETED = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def sql_and_python(queryset, rule, catalogue, label):
    """The labels of the records the rule selects in SQL, and of those it is TRUE for in Python."""
    node = compiler.compile_rule(rule, catalogue, expect="boolean")
    in_sql = {label(record) for record in compiler.filter_queryset(queryset, node, catalogue)}
    in_python = {label(record) for record in queryset if compiler.evaluate(node, catalogue, record) is True}
    return in_sql, in_python


def values_in_sql_and_python(queryset, name, catalogue, label):
    """{label: value} of one field, read by SQL (annotated) and by Python (record by record)."""
    node = compiler.compile_rule(name, catalogue)
    annotated = queryset.annotate(value=compiler.to_sql(node, catalogue))
    in_sql = {label(record): record.value for record in annotated}
    in_python = {label(record): compiler.evaluate(node, catalogue, record) for record in queryset}
    return in_sql, in_python


# --- the household catalogue ------------------------------------------------------------------


@pytest.fixture
def households(geo, member_roles):
    """Seven households (code: what is special about it):

    MAMA  head F 36, a baby (under 5), a grandmother of 76, a deleted child: size 3; income 40, water
    BABA  head M 56, a child of 4: size 2; income 120, no water
    NOHEAD a son and a daughter, no head: size 2, head fields NULL; no attributes at all
    EMPTY no members: size 0, head fields NULL; income 10 stored as JSON null for water
    GONE  its head is deleted, one live child under 5: size 1, head fields NULL
    YOUNG head F of 17, turning 18 tomorrow; water
    OLD   head F 60 today exactly (born on this day in 1966): one person of 60 or more"""
    RegistryFieldFactory(name="income", field_type="decimal", target=RegistryField.Target.HOUSEHOLD)
    RegistryFieldFactory(name="water", field_type="boolean", target=RegistryField.Target.HOUSEHOLD)
    RegistryFieldFactory(name="kids", field_type="integer", target=RegistryField.Target.INDIVIDUAL)

    def household(code, **attributes):
        return HouseholdFactory(code=code, location=geo.village_a, attributes=attributes)

    def member(house, role, born, sex=Sex.FEMALE, **extra):
        person = IndividualFactory(dob=born, sex=sex, location=geo.village_a, **extra)
        MembershipFactory(household=house, individual=person, role=member_roles[role])
        return person

    mama = household("MAMA", income="40", water=True)
    member(mama, "HEAD", datetime.date(1990, 1, 1))
    member(mama, "SON", datetime.date(2024, 6, 1), sex=Sex.MALE)
    member(mama, "GRANDMOTHER", datetime.date(1950, 1, 1))
    member(mama, "DAUGHTER", datetime.date(2023, 1, 1), deleted_at=DELETED)

    baba = household("BABA", income="120", water=False)
    member(baba, "HEAD", datetime.date(1970, 3, 3), sex=Sex.MALE)
    member(baba, "DAUGHTER", datetime.date(2022, 1, 1))

    nohead = household("NOHEAD")
    member(nohead, "SON", datetime.date(2000, 1, 1), sex=Sex.MALE)
    member(nohead, "DAUGHTER", datetime.date(2005, 1, 1))

    household("EMPTY", income="10", water=None)

    gone = household("GONE", income="75.5")
    member(gone, "HEAD", datetime.date(1940, 1, 1), sex=Sex.MALE, deleted_at=DELETED)
    member(gone, "SON", datetime.date(2025, 1, 1), sex=Sex.MALE)

    young = household("YOUNG", water=True)
    member(young, "HEAD", datetime.date(2008, 11, 25))

    old = household("OLD", income="0")
    member(old, "HEAD", datetime.date(1966, 11, 24))


def codes(household):
    return household.code


@pytest.mark.parametrize("rule, expected", [
    ("household_size == 3", {"MAMA"}),  # the deleted member does not count
    ("household_size == 0", {"EMPTY"}),  # no members: zero, not NULL
    ("household_size == 1", {"GONE", "YOUNG", "OLD"}),  # GONE: its deleted head does not count
    ("household_size >= 2 and household_size <= 2", {"BABA", "NOHEAD"}),
    ("children_under_5 >= 1", {"MAMA", "BABA", "GONE"}),  # the deleted child (3 years) does not count
    ("children_under_5 == 0", {"NOHEAD", "EMPTY", "YOUNG", "OLD"}),
    ("elderly_in_household >= 1", {"MAMA", "OLD"}),  # OLD turns 60 today: counted
    ("head_sex == 'F'", {"MAMA", "YOUNG", "OLD"}),
    ("head_sex != 'F'", {"BABA"}),  # no head (or a deleted one): unknown, not "not F"
    ("not (head_sex == 'M')", {"MAMA", "YOUNG", "OLD"}),
    ("head_sex == null", set()),  # NULL compared is unknown
    ("head_sex in ['M', 'O']", {"BABA"}),
    ("head_age >= 56", {"BABA", "OLD"}),  # BABA 56 (born in March), OLD 60 today
    ("head_age < 40", {"MAMA", "YOUNG"}),
    ("head_age == 17", {"YOUNG"}),  # 18 tomorrow
    ("head_age >= 18", {"MAMA", "BABA", "OLD"}),
    ("head_age > 200 or head_sex == 'F'", {"MAMA", "YOUNG", "OLD"}),
    ("head_age + household_size == 39", {"MAMA"}),
    ("income < 50", {"MAMA", "EMPTY", "OLD"}),
    ("income >= 75.5", {"BABA", "GONE"}),
    ("not (income < 50)", {"BABA", "GONE"}),  # no income: unknown either way
    ("water", {"MAMA", "YOUNG"}),
    ("not water", {"BABA"}),  # EMPTY holds JSON null: unknown
    ("water or income > 100", {"MAMA", "YOUNG", "BABA"}),
    ("income / household_size > 10", {"MAMA", "BABA", "GONE"}),  # EMPTY divides by zero: NULL; OLD 0/1
    ("household_size * 2 - children_under_5 >= 3 and head_sex == 'F'", {"MAMA"}),
    # `x != null` is unknown, never true: the condition always takes its `else`
    ("(head_age if head_age != null else 0) >= 0", {"MAMA", "BABA", "NOHEAD", "EMPTY", "GONE", "YOUNG", "OLD"}),
])
def test_household_rules_agree_in_sql_and_python(households, rule, expected):
    catalogue = household_catalogue(today=TODAY)

    in_sql, in_python = sql_and_python(Household.objects.all(), rule, catalogue, codes)

    assert in_sql == in_python == expected


def test_each_household_field_has_the_same_value_in_sql_and_python(households):
    catalogue = household_catalogue(today=TODAY)
    expected = {
        "household_size": {"MAMA": 3, "BABA": 2, "NOHEAD": 2, "EMPTY": 0, "GONE": 1, "YOUNG": 1, "OLD": 1},
        "children_under_5": {"MAMA": 1, "BABA": 1, "NOHEAD": 0, "EMPTY": 0, "GONE": 1, "YOUNG": 0, "OLD": 0},
        "elderly_in_household": {"MAMA": 1, "BABA": 0, "NOHEAD": 0, "EMPTY": 0, "GONE": 0, "YOUNG": 0, "OLD": 1},
        "head_sex": {"MAMA": "F", "BABA": "M", "NOHEAD": None, "EMPTY": None, "GONE": None, "YOUNG": "F",
                     "OLD": "F"},
        "head_age": {"MAMA": 36, "BABA": 56, "NOHEAD": None, "EMPTY": None, "GONE": None, "YOUNG": 17, "OLD": 60},
        "income": {"MAMA": Decimal("40"), "BABA": Decimal("120"), "NOHEAD": None, "EMPTY": Decimal("10"),
                   "GONE": Decimal("75.5"), "YOUNG": None, "OLD": Decimal("0")},
        "water": {"MAMA": True, "BABA": False, "NOHEAD": None, "EMPTY": None, "GONE": None, "YOUNG": True,
                  "OLD": None},
    }

    for name, values in expected.items():
        in_sql, in_python = values_in_sql_and_python(Household.objects.all(), name, catalogue, codes)
        assert in_python == values, name
        assert in_sql == in_python, name


def test_the_household_catalogue_names_household_fields_not_a_persons(households):
    catalogue = household_catalogue(today=TODAY)

    assert {"household_size", "children_under_5", "elderly_in_household", "head_sex", "head_age", "income",
            "water"} <= set(catalogue.names())
    assert not {"kids", "first_name", "age", "dob"} & set(catalogue.names())  # individuals' fields


def test_builtin_fields_are_the_catalogues_own_fields_not_the_attributes(db):
    RegistryFieldFactory(name="kids", field_type="integer")
    RegistryFieldFactory(name="water", target=RegistryField.Target.HOUSEHOLD, field_type="boolean")

    for target, catalogue in ((RegistryField.Target.INDIVIDUAL, individual_catalogue()),
                              (RegistryField.Target.HOUSEHOLD, household_catalogue())):
        builtin = builtin_fields(target)
        assert set(builtin) == set(catalogue.names()) - {"kids", "water"}, target
        assert builtin == {name: catalogue[name].label for name in builtin}, target
    assert {"first_name", "age", "household_size"} <= set(builtin_fields(RegistryField.Target.INDIVIDUAL))
    assert builtin_fields(RegistryField.Target.HOUSEHOLD)["head_age"] == "Age of the head (years)"


def test_an_attribute_named_as_a_builtin_field_does_not_replace_it(db):
    RegistryFieldFactory(name="age", label="Declared age", field_type="integer")

    assert builtin_fields(RegistryField.Target.INDIVIDUAL)["age"] == "Age (years)"
    assert individual_catalogue()["age"].label == "Age (years)"


# --- a plan's beneficiaries: the subject's fields and the plan's attributes ---------------------------


@pytest.fixture
def individual_plan(geo, member_roles):
    """A plan with three attributes; five beneficiaries, some attributes missing or JSON null."""
    RegistryFieldFactory(name="kids", field_type="integer")
    plan = BenefitPlan.objects.create(code="CG", name="Child grant", status="ACTIVE")
    PlanField.objects.create(plan=plan, name="grade", label="Grade", field_type="integer")
    PlanField.objects.create(plan=plan, name="verified", label="Verified", field_type="boolean")
    PlanField.objects.create(plan=plan, name="school", label="School", field_type="text")
    house = HouseholdFactory(location=geo.village_a)
    now = timezone.now()

    def enrolled(name, born, person_attributes, plan_attributes, household_role=None):
        person = IndividualFactory(first_name=name, dob=born, location=geo.village_a, attributes=person_attributes)
        if household_role:
            MembershipFactory(household=house, individual=person, role=member_roles[household_role])
        Beneficiary.objects.create(plan=plan, individual=person, attributes=plan_attributes, enrolled_at=now,
                                   status_changed_at=now)

    enrolled("Amina", datetime.date(1990, 1, 1), {"kids": 3}, {"grade": 4, "verified": True, "school": "Mji"},
             "HEAD")
    enrolled("Baraka", datetime.date(2016, 5, 5), {"kids": 0}, {"grade": 1, "verified": False}, "SON")
    enrolled("Chausiku", datetime.date(1985, 1, 1), {}, {"grade": None, "verified": None, "school": "Kati"})
    enrolled("Dotto", datetime.date(2000, 1, 1), {"kids": 2}, {})
    enrolled("Eshe", datetime.date(2010, 11, 25), {"kids": 1}, {"grade": 7, "school": "Mji"})
    return plan


def first_names(beneficiary):
    return beneficiary.individual.first_name


@pytest.mark.parametrize("rule, expected", [
    ("grade >= 4", {"Amina", "Eshe"}),
    ("grade == null", set()),
    ("not (grade >= 4)", {"Baraka"}),  # missing and JSON null grades are unknown, not "below 4"
    ("verified", {"Amina"}),
    ("not verified", {"Baraka"}),
    ("school == 'Mji' and kids >= 1", {"Amina", "Eshe"}),
    ("age >= 18 and grade > 0", {"Amina"}),  # Eshe is 15 (16 tomorrow)
    ("age < 18 or verified", {"Amina", "Baraka", "Eshe"}),
    ("household_size == 2 and grade >= 1", {"Amina", "Baraka"}),
    ("household_size == 2 or school == 'Kati'", {"Amina", "Baraka", "Chausiku"}),
    ("grade + kids >= 3", {"Amina", "Eshe"}),  # Eshe 7 + 1; Dotto has no grade, Chausiku no kids
    # `x != null` is unknown, never true: the condition always takes its `else`
    ("(grade if grade != null else 0) + kids >= 3", {"Amina"}),
    ("first_name in ['Dotto', 'Chausiku'] and not (grade > 0)", set()),
])
def test_a_plans_rules_over_its_beneficiaries_agree_in_sql_and_python(individual_plan, rule, expected):
    catalogue = beneficiary_catalogue(individual_plan, today=TODAY)
    beneficiaries = Beneficiary.objects.filter(plan=individual_plan).select_related("individual")

    in_sql, in_python = sql_and_python(beneficiaries, rule, catalogue, first_names)

    assert in_sql == in_python == expected


def test_plan_attributes_read_the_same_in_sql_and_python_nulls_included(individual_plan):
    catalogue = beneficiary_catalogue(individual_plan, today=TODAY)
    beneficiaries = Beneficiary.objects.filter(plan=individual_plan).select_related("individual")
    expected = {
        "grade": {"Amina": 4, "Baraka": 1, "Chausiku": None, "Dotto": None, "Eshe": 7},
        "verified": {"Amina": True, "Baraka": False, "Chausiku": None, "Dotto": None, "Eshe": None},
        "school": {"Amina": "Mji", "Baraka": None, "Chausiku": "Kati", "Dotto": None, "Eshe": "Mji"},
        "age": {"Amina": 36, "Baraka": 10, "Chausiku": 41, "Dotto": 26, "Eshe": 15},
        "household_size": {"Amina": 2, "Baraka": 2, "Chausiku": None, "Dotto": None, "Eshe": None},
    }

    for name, values in expected.items():
        in_sql, in_python = values_in_sql_and_python(beneficiaries, name, catalogue, first_names)
        assert in_python == values, name
        assert in_sql == in_python, name


def test_a_household_plans_rules_read_the_household_and_the_plans_attributes(households):
    plan = BenefitPlan.objects.create(code="HH", name="Household grant", plan_type=PlanType.HOUSEHOLD,
                                      status="ACTIVE")
    PlanField.objects.create(plan=plan, name="visits", label="Visits", field_type="integer")
    now = timezone.now()
    visits = {"MAMA": 2, "BABA": 5, "NOHEAD": None, "EMPTY": 1, "GONE": 3}
    for code, count in visits.items():
        HouseholdBeneficiary.objects.create(plan=plan, household=Household.objects.get(code=code),
                                            attributes={} if count is None else {"visits": count},
                                            enrolled_at=now, status_changed_at=now)
    catalogue = beneficiary_catalogue(plan, today=TODAY)
    rows = HouseholdBeneficiary.objects.filter(plan=plan).select_related("household")

    def code_of(beneficiary):
        return beneficiary.household.code

    cases = {
        "visits >= 2 and household_size >= 1": {"MAMA", "BABA", "GONE"},
        "head_sex == 'F' or visits == 1": {"MAMA", "EMPTY"},
        "children_under_5 >= 1 and not (visits > 2)": {"MAMA"},
        "income > 50 and head_age == null": set(),
        "income > 50": {"BABA", "GONE"},
        "visits == null": set(),
    }
    for rule, expected in cases.items():
        in_sql, in_python = sql_and_python(rows, rule, catalogue, code_of)
        assert in_sql == in_python == expected, rule


def test_the_candidate_catalogue_reads_plan_attributes_as_null(individual_plan):
    """Before enrolment nobody has the plan's attributes: a rule that needs one matches nobody, in
    SQL, in Python and in the enrolment preview; a rule that does not need one still works."""
    catalogue = candidate_catalogue(individual_plan, today=TODAY)
    people = Individual.objects.all()

    def name(person):
        return person.first_name

    for rule in ("grade >= 0", "grade == null", "not (grade >= 0)", "verified", "not verified",
                 "school == 'Mji'", "grade > 0 and age >= 0"):
        assert sql_and_python(people, rule, catalogue, name) == (set(), set()), rule

    everyone = {"Amina", "Baraka", "Chausiku", "Dotto", "Eshe"}
    assert sql_and_python(people, "grade > 0 or age >= 0", catalogue, name) == (everyone, everyone)
    assert sql_and_python(people, "(grade if grade != null else 1) == 1 and age >= 0", catalogue, name) == (
        everyone, everyone)

    candidates = set(Individual.objects.values_list("first_name", flat=True))
    assert candidates == everyone
    clerk = UserFactory(role="Clerk", national=True)
    preview = services.enrolment_preview(plan=individual_plan, rule="grade >= 0", target_status="POTENTIAL",
                                         by=clerk)
    assert (preview["matching"], preview["would_add"]) == (0, 0)
