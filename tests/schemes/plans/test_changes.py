"""Changes to a plan: a draft is edited directly, an active plan's change is a new version that goes
through approval (operation plans.change), shown to checkers as a diff, void if the plan moved on."""

import json
import re

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from schemes.plans import selectors, services
from schemes.plans.models import Beneficiary, BenefitPlan, PlanField
from schemes.plans.schema import export_schema, schema_import
from tests.factories import IndividualFactory, RegistryFieldFactory, UserFactory
from tests.schemes.plans.test_views import client_for, formset, plan_form
from workflows.models import ApprovalRequest, RequestStatus, WorkflowDefinition, WorkflowStep
from workflows.services import approval_decide, approval_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def designer(geo):
    RegistryFieldFactory(name="children", field_type="integer")
    return UserFactory(role="Scheme administrator", national=True)


@pytest.fixture
def checker(geo):
    return UserFactory(role="Checker", national=True)


@pytest.fixture
def change_workflow(db):
    definition = WorkflowDefinition.objects.create(operation="plans.change")
    WorkflowStep.objects.create(definition=definition, group=Group.objects.get(name="Checker"), sort_order=0)
    return definition


@pytest.fixture
def active_plan(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form(**{
        **formset("fields", total=1), "fields-0-name": "grade", "fields-0-label": "Grade",
        "fields-0-field_type": "integer", "fields-0-choices": "[]", "fields-0-sort_order": "0"}))
    plan = BenefitPlan.objects.get(code="CG")
    services.plan_activate(plan=plan, by=designer)
    return BenefitPlan.objects.get(pk=plan.pk)


def edit(designer, plan, **overrides):
    field = plan.fields.get()
    data = plan_form(**{**formset("fields", total=1, initial=1), "fields-0-id": str(field.pk),
                        "fields-0-name": field.name, "fields-0-label": field.label, "fields-0-field_type": "integer",
                        "fields-0-choices": "[]", "fields-0-sort_order": "0", **overrides})
    return client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]), data)


def test_a_draft_plan_is_saved_as_a_new_version(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    assert plan.revisions.count() == 1

    client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]), plan_form(name="Child grant II"))

    plan.refresh_from_db()
    assert plan.name == "Child grant II"
    assert plan.revisions.count() == 2
    assert plan.latest_revision.content["name"] == "Child grant II"


def draft_with_bounds(designer):
    """A draft whose saved values read back otherwise than typed: "2.5" is stored as 2.5000."""
    data = plan_form(score_formula_text="age", score_cutoff="2.5", ceiling_per_beneficiary="100", **{
        **formset("fields", total=1), "fields-0-name": "grade", "fields-0-label": "Grade",
        "fields-0-field_type": "integer", "fields-0-choices": "[]", "fields-0-min_value": "1",
        "fields-0-max_value": "12"})
    client_for(designer).post(reverse("plans_plan:add"), data)
    plan = BenefitPlan.objects.get(code="CG")
    data.update({"fields-INITIAL_FORMS": "1", "fields-0-id": str(plan.fields.get().pk)})
    return plan, data


def test_a_draft_saved_without_any_change_records_no_version(designer):
    plan, data = draft_with_bounds(designer)

    response = client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]), data, follow=True)

    assert plan.revisions.count() == 1
    assert [version["changed"] for version in selectors.plan_versions(plan)] == ["Created"]
    assert any(str(message).startswith(f"Nothing changed in {plan}: no new version was saved.")
               for message in response.context["messages"])


def test_a_draft_saved_with_one_change_lists_only_that_change(designer):
    plan, data = draft_with_bounds(designer)

    client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]), {**data, "fields-0-max_value": "13"})

    assert plan.revisions.count() == 2
    assert selectors.plan_versions(plan)[0]["changed"] == "Schema field grade"


def test_a_schema_imported_again_unchanged_records_no_version(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    schema = {"properties": {"grade": {"type": "integer", "minimum": 1, "maximum": 12},
                             "income": {"type": "number", "minimum": 0.5}}, "required": ["grade"]}
    schema_import(plan=plan, data=schema, by=designer)
    assert plan.revisions.count() == 2

    schema_import(plan=plan, data=schema, by=designer)
    schema_import(plan=plan, data=export_schema(plan), by=designer)
    response = client_for(designer).post(reverse("plans_plan:schema_import", args=[plan.pk]), {
        "file": SimpleUploadedFile("schema.json", json.dumps(schema).encode(), content_type="application/json")},
        follow=True)

    assert plan.revisions.count() == 2
    assert "The plan's schema is already this one: nothing changed, no new version was saved." in [
        str(message) for message in response.context["messages"]]


def test_a_schema_whose_fields_only_changed_places_is_a_version_that_says_so(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    schema_import(plan=plan, data={"properties": {"grade": {"type": "integer"}, "school": {"type": "string"}}},
                  by=designer)

    schema_import(plan=plan, data={"properties": {"school": {"type": "string"}, "grade": {"type": "integer"}}},
                  by=designer)

    assert plan.revisions.count() == 3
    assert selectors.plan_versions(plan)[0]["changed"] == "Schema fields reordered"
    assert [field.name for field in plan.schema().definitions] == ["school", "grade"]


def test_an_active_plans_reordered_schema_is_shown_to_checkers_as_a_reorder(designer, checker, change_workflow):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    schema_import(plan=plan, data={"properties": {"grade": {"type": "integer"}, "school": {"type": "string"}}},
                  by=designer)
    plan = services.plan_activate(plan=plan, by=designer)

    request = schema_import(plan=plan, data={"properties": {"school": {"type": "string"},
                                                            "grade": {"type": "integer"}}}, by=designer)

    assert request.summary["diff"] == [["Schema fields reordered", "grade, school", "school, grade"]]
    with pytest.raises(ValidationError, match="Nothing would change"):
        schema_import(plan=plan, data=export_schema(plan), by=designer)


def test_an_active_plans_change_waits_for_approval_and_shows_the_diff(designer, checker, active_plan,
                                                                     change_workflow,
                                                                     django_capture_on_commit_callbacks):
    response = edit(designer, active_plan, name="Child grant II", criteria_potential="children >= 3",
                    **{"fields-0-label": "School grade"})

    request = ApprovalRequest.objects.get(operation="plans.change")
    assert response.status_code == 302 and response["Location"] == reverse("workflows_approvals:inspect",
                                                                          args=[request.pk])
    unchanged = BenefitPlan.objects.get(pk=active_plan.pk)
    assert unchanged.name == "Child grant" and unchanged.criteria_text("POTENTIAL") == "children >= 2"
    assert PlanField.objects.get(plan=active_plan).label == "Grade"
    diff = {row[0]: row[1:] for row in request.summary["diff"]}
    assert diff["Name"] == ["Child grant", "Child grant II"]
    assert diff["Criteria"] == ["Potential: children >= 2", "Potential: children >= 3"]
    assert diff["Schema field grade"] == ["Grade (integer)", "School grade (integer)"]

    versions = active_plan.revisions.count()
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    changed = BenefitPlan.objects.get(pk=active_plan.pk)
    assert changed.name == "Child grant II"
    assert changed.criteria_text("POTENTIAL") == "children >= 3"
    assert changed.status == "ACTIVE"
    assert PlanField.objects.get(plan=active_plan).label == "School grade"
    assert changed.revisions.count() == versions + 1


def test_the_diff_shows_a_fields_bounds_pattern_and_masking(active_plan):
    """A checker shown "Grade (integer) -> Grade (integer)" cannot see that the maximum went up 500 times."""
    change = services.plan_change_payload(active_plan)
    change["schema"][0].update(max_value="500000", sensitive=True)

    diff = {row[0]: row[1:] for row in services.plan_change_diff(active_plan, change)}

    before, after = diff["Schema field grade"]
    assert "max 500000" in after and "sensitive" in after and before != after


def test_the_diff_names_a_type_as_people_read_it(active_plan):
    change = services.plan_change_payload(active_plan)
    change["plan_fields"]["plan_type"] = "HOUSEHOLD"

    diff = {row[0]: row[1:] for row in services.plan_change_diff(active_plan, change)}

    assert diff["Plan type"] == ["Individuals", "Households"]


def test_the_edit_page_of_an_active_plan_says_a_save_goes_to_approval(designer, active_plan):
    response = client_for(designer).get(reverse("plans_plan:edit", args=[active_plan.pk]))

    assert response.status_code == 200
    assert "saving submits the change for approval" in response.content.decode()


def test_a_change_does_not_put_back_a_count_or_status_changed_meanwhile(designer, active_plan, geo):
    """The form's plan was read before an enrolment: saving it must not restore the old count."""
    stale = BenefitPlan.objects.get(pk=active_plan.pk)
    BenefitPlan.objects.filter(pk=active_plan.pk).update(live_beneficiaries=5)

    stale.name = "Renamed"
    stale.save()

    assert BenefitPlan.objects.get(pk=active_plan.pk).live_beneficiaries == 5


def test_a_change_made_against_an_older_version_is_void(designer, checker, active_plan, change_workflow,
                                                        django_capture_on_commit_callbacks):
    edit(designer, active_plan, name="First")
    first = ApprovalRequest.objects.get(operation="plans.change")
    meanwhile = services.plan_change_payload(BenefitPlan.objects.get(pk=active_plan.pk))
    meanwhile["plan_fields"]["description"] = "Another version"
    services.plan_change(plan=active_plan, change=meanwhile, by=designer, approved=True)  # lands meanwhile

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=first, verdict="approve", by=checker)

    assert ApprovalRequest.objects.get(pk=first.pk).status == RequestStatus.VOID
    assert BenefitPlan.objects.get(pk=active_plan.pk).name == "Child grant"


def test_a_plan_with_beneficiaries_keeps_its_type(designer, active_plan, geo):
    person = IndividualFactory(location=geo.village_a, attributes={"children": 2})  # meets the plan's rule
    clerk = UserFactory(role="Clerk", national=True)
    services.enrolment_execute(plan=active_plan, rule="age >= 0", target_status="POTENTIAL", by=clerk)
    assert Beneficiary.objects.filter(individual=person).exists()
    change = services.plan_change_payload(active_plan)
    change["plan_fields"]["plan_type"] = "HOUSEHOLD"

    with pytest.raises(ValidationError, match="its type cannot change"):
        services.plan_change(plan=active_plan, change=change, by=designer, approved=True)


def test_a_change_with_a_criteria_mistake_is_refused(designer, active_plan):
    change = services.plan_change_payload(active_plan)
    change["plan_fields"]["criteria"] = {"POTENTIAL": {"text": "x", "rule": {"field": "nonsense"}}}

    with pytest.raises(ValidationError):
        services.plan_change(plan=active_plan, change=change, by=designer, approved=True)
    assert BenefitPlan.objects.get(pk=active_plan.pk).criteria_text("POTENTIAL") == "children >= 2"


def test_a_plan_field_cannot_take_the_name_of_a_field_every_person_has(designer):
    """`children` is a registry attribute (the designer fixture defines it)."""
    response = client_for(designer).post(reverse("plans_plan:add"), plan_form(**{
        **formset("fields", total=1), "fields-0-name": "children", "fields-0-label": "Children",
        "fields-0-field_type": "integer", "fields-0-choices": "[]", "fields-0-sort_order": "0"}))

    assert response.status_code == 200
    assert not BenefitPlan.objects.exists()
    assert "&#x27;children&#x27; is already a field of every person" in response.content.decode()


def test_two_plan_fields_that_files_would_read_as_one_column_are_refused(designer):
    row = {"label": "Group", "field_type": "text", "choices": "[]"}
    response = client_for(designer).post(reverse("plans_plan:add"), plan_form(**{
        **formset("fields", total=2),
        **{f"fields-0-{key}": value for key, value in {**row, "name": "groupId", "sort_order": "0"}.items()},
        **{f"fields-1-{key}": value for key, value in {**row, "name": "group_id", "sort_order": "1"}.items()}}))

    assert response.status_code == 200
    assert not BenefitPlan.objects.exists()
    assert "&#x27;groupId&#x27; and &#x27;group_id&#x27; would be one column in files" in response.content.decode()


@pytest.mark.parametrize("name", ["contains", "exact", "gt", "isnull", "hasKey", "Contained_By"])
def test_a_plan_field_cannot_take_the_name_of_a_lookup_of_the_plan_data(designer, name):
    """A query on `attributes__contains` is a containment test, not the field `contains`."""
    response = client_for(designer).post(reverse("plans_plan:add"), plan_form(**{
        **formset("fields", total=1), "fields-0-name": name, "fields-0-label": "Field",
        "fields-0-field_type": "text", "fields-0-choices": "[]", "fields-0-sort_order": "0"}))

    assert response.status_code == 200
    assert not BenefitPlan.objects.exists()
    assert f"&#x27;{name}&#x27; is a database lookup" in response.content.decode()


def test_a_plan_currency_typed_in_lower_case_is_kept_in_capitals(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form(currency=" usd "))

    assert BenefitPlan.objects.get().currency == "USD"


@pytest.mark.parametrize("currency", ["T$", "TZ"])
def test_a_plan_currency_is_its_iso_code(designer, currency):
    response = client_for(designer).post(reverse("plans_plan:add"), plan_form(currency=currency))

    assert response.status_code == 200
    assert not BenefitPlan.objects.exists()
    assert "Give the currency&#x27;s ISO 4217 code: three capital letters" in response.content.decode()


def test_a_schema_imported_into_a_draft_is_a_new_version(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")

    fields = schema_import(plan=plan, data={"properties": {"grade": {"type": "integer"}}}, by=designer)

    plan.refresh_from_db()
    assert [field.name for field in fields] == ["grade"]
    assert plan.revisions.count() == 2
    assert [row["name"] for row in plan.latest_revision.content["fields"]] == ["grade"]


def test_the_import_page_says_which_properties_are_the_persons_own_fields(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    schema = json.dumps({"properties": {"national_id": {"type": "string", "uniqueness": True},
                                        "grade": {"type": "integer"}}}).encode()

    response = client_for(designer).post(reverse("plans_plan:schema_import", args=[plan.pk]), {
        "file": SimpleUploadedFile("schema.json", schema, content_type="application/json")}, follow=True)

    shown = [str(message) for message in response.context["messages"]]
    assert any("'national_id' is the person's national ID (a core field)" in message for message in shown)
    assert "Schema imported: 1 field." in shown
    assert list(plan.fields.values_list("name", flat=True)) == ["grade"]


def test_an_imported_schema_cannot_shadow_the_households_fields(designer):
    plan = BenefitPlan.objects.create(code="HH", name="Households", plan_type="HOUSEHOLD")

    with pytest.raises(ValidationError, match="'household_size' is already a field of every household"):
        schema_import(plan=plan, data={"properties": {"household_size": {"type": "integer"}}}, by=designer)
    assert not plan.fields.exists()


@pytest.fixture
def closed_plan(designer, active_plan, geo):
    clerk = UserFactory(role="Clerk", national=True)
    IndividualFactory(location=geo.village_a)
    services.enrolment_execute(plan=active_plan, rule="age >= 0", target_status="POTENTIAL", by=clerk)
    return services.plan_close(plan=active_plan, by=designer)


def test_the_edit_page_of_a_closed_plan_says_it_no_longer_changes(designer, closed_plan):
    response = client_for(designer).get(reverse("plans_plan:edit", args=[closed_plan.pk]))

    assert response.status_code == 200
    assert "This plan is closed: it no longer changes" in response.content.decode()


@pytest.mark.parametrize("change", [{"name": "Renamed"}, {"criteria_potential": "children >= 5"},
                                    {"plan_type": "HOUSEHOLD", "criteria_potential": ""}])
def test_a_closed_plan_is_not_edited(designer, closed_plan, change):
    versions = closed_plan.revisions.count()

    response = edit(designer, closed_plan, **change)

    assert response.status_code == 200
    assert "is closed: it no longer changes" in response.content.decode()
    unchanged = BenefitPlan.objects.get(pk=closed_plan.pk)
    assert (unchanged.name, unchanged.plan_type, unchanged.criteria_text("POTENTIAL")) == (
        "Child grant", "INDIVIDUAL", "children >= 2")
    assert unchanged.revisions.count() == versions
    assert not ApprovalRequest.objects.exists()


def test_a_draft_plan_with_beneficiaries_keeps_its_type(designer, geo):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    # Enrolment needs an active plan: this stands for beneficiaries recorded otherwise (an import).
    Beneficiary.objects.create(plan=plan, individual=IndividualFactory(location=geo.village_a),
                               enrolled_at=timezone.now(), status_changed_at=timezone.now())

    response = client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]),
                                         plan_form(plan_type="HOUSEHOLD", criteria_potential=""))

    assert response.status_code == 200
    assert "its type cannot change" in str(response.context["form"].errors["plan_type"])
    unchanged = BenefitPlan.objects.get(pk=plan.pk)
    assert (unchanged.plan_type, unchanged.criteria_text("POTENTIAL")) == ("INDIVIDUAL", "children >= 2")


def test_a_draft_plan_without_beneficiaries_changes_type_at_once(designer):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")

    response = client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]),
                                         plan_form(plan_type="HOUSEHOLD", criteria_potential="household_size >= 3"))

    assert response.status_code == 302
    changed = BenefitPlan.objects.get(pk=plan.pk)
    assert (changed.plan_type, changed.criteria_text("POTENTIAL")) == ("HOUSEHOLD", "household_size >= 3")
    assert changed.revisions.count() == 2
    assert not ApprovalRequest.objects.exists()


def test_a_closed_plans_schema_import_is_refused_and_nothing_is_submitted(designer, closed_plan, change_workflow):
    upload = SimpleUploadedFile("schema.json", json.dumps({"properties": {"grade": {"type": "string"}}}).encode(),
                                content_type="application/json")

    response = client_for(designer).post(reverse("plans_plan:schema_import", args=[closed_plan.pk]),
                                         {"file": upload})

    assert response.status_code == 200
    assert "is closed: it no longer changes" in response.content.decode()
    assert not ApprovalRequest.objects.exists()
    assert PlanField.objects.get(plan=closed_plan).field_type == "integer"


def test_a_change_request_for_a_closed_plan_is_refused_when_made(designer, closed_plan, change_workflow):
    with pytest.raises(ValidationError, match="is closed: it no longer changes"):
        approval_submit(operation="plans.change", by=designer,
                        payload={"plan": closed_plan.pk, **services.plan_change_payload(closed_plan)})
    assert not ApprovalRequest.objects.exists()


def test_a_drafts_save_is_refused_if_the_plan_was_activated_meanwhile(designer, change_workflow, monkeypatch):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    payload = services.plan_change_payload

    def activated_meanwhile(edited):
        # Between the view's read of the status (draft) and the service's lock.
        if BenefitPlan.objects.get(pk=plan.pk).status == "DRAFT":
            services.plan_activate(plan=plan, by=designer)
        return payload(edited)

    monkeypatch.setattr(services, "plan_change_payload", activated_meanwhile)
    response = client_for(designer).post(reverse("plans_plan:edit", args=[plan.pk]), plan_form(name="Renamed"))

    assert response.status_code == 200
    assert "was activated meanwhile, so nothing was changed: save again" in response.content.decode()
    unchanged = BenefitPlan.objects.get(pk=plan.pk)
    assert (unchanged.name, unchanged.revisions.count()) == ("Child grant", 1)
    assert not ApprovalRequest.objects.exists()


def test_a_direct_schema_import_is_refused_if_the_plan_was_activated_meanwhile(designer, change_workflow):
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    stale = BenefitPlan.objects.get(code="CG")  # read as a draft, then activated
    services.plan_activate(plan=stale, by=designer)

    with pytest.raises(ValidationError, match="was activated meanwhile"):
        schema_import(plan=stale, data={"properties": {"grade": {"type": "string"}}}, by=designer)
    assert not stale.fields.exists()
    assert not ApprovalRequest.objects.exists()


def test_an_approved_schema_import_changes_the_active_plan(designer, checker, active_plan, change_workflow,
                                                          django_capture_on_commit_callbacks):
    request = schema_import(plan=active_plan, data={"properties": {"grade": {"type": "string"}}}, by=designer)
    assert PlanField.objects.get(plan=active_plan).field_type == "integer"

    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(request=request, verdict="approve", by=checker)

    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXECUTED
    changed = BenefitPlan.objects.get(pk=active_plan.pk)
    assert changed.status == "ACTIVE"
    assert PlanField.objects.get(plan=active_plan).field_type == "text"


def test_a_change_that_could_not_be_applied_is_refused_when_submitted_not_after_approval(
        designer, active_plan, change_workflow):
    from django.core.exceptions import ValidationError

    from workflows.services import approval_submit

    change = services.plan_change_payload(active_plan)
    with pytest.raises(ValidationError, match="Nothing would change"):
        approval_submit(operation="plans.change", by=designer, payload={"plan": active_plan.pk, **change})
    change["schema"] = []  # the plan's own field goes, while the new criteria name it
    change["plan_fields"]["criteria"] = {"POTENTIAL": {"text": "grade >= 2", "rule": {
        "binary": ">=", "left": {"field": "grade"}, "right": {"literal": "2", "type": "number"}}}}
    with pytest.raises(ValidationError, match="Unknown field 'grade'"):
        approval_submit(operation="plans.change", by=designer, payload={"plan": active_plan.pk, **change})
    assert not ApprovalRequest.objects.exists()


def test_a_maximum_below_the_live_beneficiaries_is_refused_in_plain_words(designer, active_plan, change_workflow):
    from django.core.exceptions import ValidationError

    from workflows.services import approval_submit

    BenefitPlan.objects.filter(pk=active_plan.pk).update(live_beneficiaries=17)
    change = services.plan_change_payload(BenefitPlan.objects.get(pk=active_plan.pk))
    change["plan_fields"]["max_beneficiaries"] = 10
    with pytest.raises(ValidationError, match="The maximum is below the plan's beneficiaries now"):
        approval_submit(operation="plans.change", by=designer, payload={"plan": active_plan.pk, **change})


# --- what a schema change does to the data beneficiaries hold ------------------------------------

@pytest.fixture
def plan_with_data(designer, geo):
    """An active plan whose beneficiaries hold data: marital (Single / Married / Widowed), income
    (decimal), grade (whole number, optional), notes (text), contact (text)."""
    plan = BenefitPlan.objects.create(code="EG", name="Elderly grant", status="ACTIVE")
    for order, (name, kind, choices) in enumerate((("marital", "choice", ["Single", "Married", "Widowed"]),
                                                   ("income", "decimal", []), ("grade", "integer", []),
                                                   ("notes", "text", []), ("contact", "text", []))):
        PlanField.objects.create(plan=plan, name=name, label=name.capitalize(), field_type=kind, choices=choices,
                                 sort_order=order)
    now = timezone.now()
    rows = [{"marital": "Widowed", "income": "25000.5", "notes": "x", "contact": "0712345678"},
            {"marital": "Widowed", "income": "25000", "grade": 3, "contact": "+255712345678"},
            {"marital": "Single", "income": "100", "grade": 12, "notes": "y"},
            {"marital": "Married", "income": "25000.5"}]
    for attributes in rows:
        Beneficiary.objects.create(plan=plan, individual=IndividualFactory(location=geo.village_a),
                                   attributes=attributes, enrolled_at=now, status_changed_at=now)
    return plan


def changed_schema(plan, **changes):
    """The plan's change payload with its schema rows changed: {name: {key: value} or None (removed)}."""
    change = services.plan_change_payload(plan)
    change["schema"] = [{**row, **changes[row["name"]]} if changes.get(row["name"]) else row
                        for row in change["schema"] if changes.get(row["name"], {}) is not None]
    return change


def test_the_impact_of_a_schema_change_on_the_data_held_is_counted_per_field(plan_with_data):
    change = changed_schema(plan_with_data, marital={"choices": ["Single", "Married"]},
                            income={"field_type": "integer"}, grade={"required": True, "max_value": "10"},
                            notes=None, contact={"pattern": r"^\+\d{2,3}\d+$"})

    impact = services.schema_change_impact(plan_with_data, change)

    assert impact == {
        "Notes: field removed: beneficiaries holding a value (kept in storage, no longer shown or used)": 2,
        "Marital: beneficiaries holding a value it no longer accepts (choices removed: Widowed)": 2,
        "Income: beneficiaries holding a value it no longer accepts (now whole number)": 2,
        "Grade: now required: beneficiaries without a value": 2,
        "Grade: beneficiaries holding a value it no longer accepts (new bounds)": 1,
        "Contact: beneficiaries holding a value it no longer accepts (new format ^\\+\\d{2,3}\\d+$)": 1,
    }
    assert Beneficiary.objects.filter(plan=plan_with_data, attributes__notes="x").exists()  # nothing rewritten


def test_a_schema_change_that_keeps_every_value_counts_nothing_against_it(plan_with_data):
    change = changed_schema(plan_with_data, marital={"choices": ["Single", "Married", "Widowed", "Divorced"]},
                            grade={"max_value": "12"})

    assert set(services.schema_change_impact(plan_with_data, change).values()) == {0}


def test_the_checkers_and_the_maker_are_told_what_a_schema_change_does_to_the_data(
        plan_with_data, designer, checker, change_workflow):
    change = changed_schema(plan_with_data, marital={"choices": ["Single", "Married"]})

    request = approval_submit(operation="plans.change", by=designer, payload={"plan": plan_with_data.pk, **change})

    assert request.summary["counts"] == {
        "Data held: Marital: beneficiaries holding a value it no longer accepts (choices removed: Widowed)": 2}
    assert Beneficiary.objects.filter(plan=plan_with_data, attributes__marital="Widowed").count() == 2


def test_saving_an_active_plans_schema_change_warns_of_the_data_it_affects(plan_with_data, designer, checker,
                                                                          change_workflow):
    fields = list(plan_with_data.fields.order_by("sort_order"))
    data = plan_form(code="EG", name="Elderly grant", criteria_potential="", max_beneficiaries="",
                     **formset("fields", total=len(fields), initial=len(fields)))
    for index, field in enumerate(fields):
        data.update({f"fields-{index}-id": str(field.pk), f"fields-{index}-name": field.name,
                     f"fields-{index}-label": field.label, f"fields-{index}-field_type": field.field_type,
                     f"fields-{index}-choices": json.dumps(field.choices), f"fields-{index}-sort_order": str(index)})
    data["fields-1-field_type"] = "integer"  # income: 25000.5 is held twice

    page = client_for(designer).post(reverse("plans_plan:edit", args=[plan_with_data.pk]), data, follow=True)

    assert ApprovalRequest.objects.filter(operation="plans.change").exists()
    assert ("This change affects data the plan&#x27;s beneficiaries hold (nothing is rewritten): Data held: Income: "
            "beneficiaries holding a value it no longer accepts (now whole number): 2.") in page.content.decode()


def test_the_checkers_read_a_whole_number_fields_bounds_as_written(plan_with_data):
    """QA: the schema approval showed "min 1.0000, max 10.0000"."""
    change = changed_schema(plan_with_data, grade={"min_value": "1.0000", "max_value": "10.0000"})

    [row] = services.plan_change_diff(plan_with_data, change)

    assert row == ["Schema field grade", "Grade (integer)", "Grade (integer, min 1, max 10)"]


@pytest.mark.parametrize("places, message, refused", [(0, "no decimals", 2), (2, "at most 2 decimals", 0)])
def test_fewer_decimals_for_an_amount_count_the_values_held_with_more(plan_with_data, places, message, refused):
    """Income holds 25000.5 twice: no decimals refuses them, 2 keeps them."""
    change = changed_schema(plan_with_data, income={"decimal_places": places})

    assert services.schema_change_impact(plan_with_data, change) == {
        f"Income: beneficiaries holding a value it no longer accepts ({message})": refused}
    assert services.plan_change_diff(plan_with_data, change) == [
        ["Schema field income", "Income (decimal)", f"Income (decimal, {message})"]]


def test_a_change_asked_for_before_decimal_places_existed_names_no_change_to_them(plan_with_data):
    change = services.plan_change_payload(plan_with_data)
    for row in change["schema"]:
        del row["decimal_places"]

    assert services.plan_change_diff(plan_with_data, change) == []


# --- who changes an active plan: national scope (its beneficiaries are in every location) -------------

NATIONAL_ONLY = re.escape(services.ACTIVE_PLAN_CHANGE_SCOPE)


@pytest.fixture
def district_designer(geo):
    return UserFactory(role="Scheme administrator", locations=[geo.district_a])


@pytest.mark.parametrize("what", ["schema", "name"])
def test_a_district_designers_change_of_an_active_plan_is_refused_before_anything_is_counted(
        plan_with_data, designer, district_designer, checker, change_workflow, geo, what):
    """Security review: the request, which its maker reads (and the warning after saving), counted the
    data held by the plan's beneficiaries in every district, not only the maker's."""
    now = timezone.now()
    Beneficiary.objects.create(plan=plan_with_data, individual=IndividualFactory(location=geo.village_b),
                               attributes={"marital": "Widowed"}, enrolled_at=now, status_changed_at=now)
    change = changed_schema(plan_with_data, marital={"choices": ["Single", "Married"]})
    if what == "name":
        change = services.plan_change_payload(plan_with_data)
        change["plan_fields"]["name"] = "Renamed"

    with pytest.raises(PermissionDenied, match=NATIONAL_ONLY):
        approval_submit(operation="plans.change", by=district_designer, payload={"plan": plan_with_data.pk, **change})

    assert not ApprovalRequest.objects.exists()
    if what == "schema":  # a national designer is told the plan-wide count: district B's one included
        request = approval_submit(operation="plans.change", by=designer, payload={"plan": plan_with_data.pk, **change})
        assert list(request.summary["counts"].values()) == [3]


def test_an_approved_change_is_not_applied_for_a_maker_without_national_scope(plan_with_data, district_designer):
    change = changed_schema(plan_with_data, marital={"choices": ["Single", "Married"]})

    with pytest.raises(PermissionDenied, match=NATIONAL_ONLY):
        services.plan_change(plan=plan_with_data, change=change, by=district_designer, approved=True)

    assert PlanField.objects.get(plan=plan_with_data, name="marital").choices == ["Single", "Married", "Widowed"]


def test_the_edit_page_of_an_active_plan_tells_a_district_designer_up_front_and_the_save_is_refused(
        active_plan, district_designer, change_workflow):
    url = reverse("plans_plan:edit", args=[active_plan.pk])

    page = client_for(district_designer).get(url).content.decode()
    response = edit(district_designer, active_plan, name="Renamed")

    assert f"{services.ACTIVE_PLAN_CHANGE_SCOPE} Saving is refused." in page
    assert "saving submits the change for approval" not in page
    assert response.status_code == 200
    assert services.ACTIVE_PLAN_CHANGE_SCOPE in response.content.decode()
    assert not ApprovalRequest.objects.exists()
    assert BenefitPlan.objects.get(pk=active_plan.pk).name == "Child grant"


def test_the_schema_import_of_an_active_plan_is_refused_to_a_district_designer_up_front_and_when_posted(
        active_plan, district_designer, change_workflow):
    url = reverse("plans_plan:schema_import", args=[active_plan.pk])
    client = client_for(district_designer)
    upload = SimpleUploadedFile("schema.json", json.dumps({"properties": {"grade": {"type": "string"}}}).encode(),
                                content_type="application/json")

    page = client.get(url).content.decode()
    response = client.post(url, {"file": upload})

    assert f"{services.ACTIVE_PLAN_CHANGE_SCOPE} Importing is refused." in page
    assert response.status_code == 200
    assert services.ACTIVE_PLAN_CHANGE_SCOPE in response.content.decode()
    assert not ApprovalRequest.objects.exists()
    assert PlanField.objects.get(plan=active_plan).field_type == "integer"


def test_a_district_designer_still_edits_a_draft_plan_directly(designer, district_designer):
    """A draft has no beneficiaries: nothing of another district to count."""
    client_for(designer).post(reverse("plans_plan:add"), plan_form())
    plan = BenefitPlan.objects.get(code="CG")
    url = reverse("plans_plan:edit", args=[plan.pk])

    page = client_for(district_designer).get(url).content.decode()
    response = client_for(district_designer).post(url, plan_form(name="Renamed"))

    assert "national scope" not in page
    assert response.status_code == 302
    assert BenefitPlan.objects.get(pk=plan.pk).name == "Renamed"
    assert not ApprovalRequest.objects.exists()
