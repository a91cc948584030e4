import copy
import json
from decimal import Decimal

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.utils import ErrorList
from wagtail.admin.forms import WagtailAdminModelForm

from schemes.rules.catalogue import NUMBER
from schemes.rules.forms import RuleField, set_rules_user
from sites.fields import name_key
from sites.forms import ATTRIBUTE_PREFIX, AttributeFormMixin

from .catalogues import plan_rules_subject
from .models import BeneficiaryStatus, PlanType, check_plan_field_names
from .selectors import locations_by_tree
from .services import bound_text

CRITERIA_STATUSES = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE)
# An example rule per plan type, naming only fields every person (or household) has.
RULE_EXAMPLES = {PlanType.INDIVIDUAL: "age >= 18 and household_size >= 3",
                 PlanType.HOUSEHOLD: "household_size >= 3 and head_age >= 60"}


def rule_help(plan_type):
    """The criteria's help text, its example written for `plan_type` (None: a plan whose type is not
    chosen yet: both)."""
    if plan_type in RULE_EXAMPLES:
        whose = "household" if plan_type == PlanType.HOUSEHOLD else "person"
        return (f"A rule over the fields of the {whose} and the plan's own fields, e.g. "
                f"{RULE_EXAMPLES[plan_type]}. Leave empty for none.")
    return (f"A rule over the fields of the person (individual plan), e.g. {RULE_EXAMPLES[PlanType.INDIVIDUAL]}, or of "
            f"the household (household plan), e.g. {RULE_EXAMPLES[PlanType.HOUSEHOLD]}. Leave empty for none.")


def enrol_help(plan_type):
    whose = "household" if plan_type == PlanType.HOUSEHOLD else "person"
    return f"Who to enrol: a rule over the fields of the {whose}, e.g. {RULE_EXAMPLES[plan_type]}."


SCORE_HELP = ("A number per person or household, e.g. 120 - 8 * household_size - 5 * children_under_5. "
              "Those scoring at or below their region's cut-off qualify.")
# The violation codes of the plan's constraints on Lower(code) and Lower(name) (see BenefitPlan.Meta).
UNIQUE_ANY_CASE = {"code_taken": "code", "name_taken": "name"}
CUTOFF_TAKEN = "This location already has a cut-off."
CUTOFFS_TWICE = "A location has two cut-offs: keep one."
CUTOFFS_WITHOUT_FORMULA = ("Cut-offs mean nothing without a score formula: write the formula, or clear the "
                           "cut-offs.")


RULES_FOLLOW_JS = "plans/rules_follow.js"


def _cutoff_initial(value):
    """A stored cut-off as people write it: 10 and 2.5, not 10.0000."""
    return None if value is None else Decimal(bound_text(value))


def rules_follow(field, choice, subjects):
    """Make a rule field's builder follow the form's select `choice` as it is chosen (before the form is
    saved): `subjects` is {the select's value: the rules subject then}. rules_follow.js gives the builder
    that subject (its live count) and its fields; the form's Media must include RULES_FOLLOW_JS."""
    widget = field.widget
    choices = {}
    for value, subject in subjects.items():
        shown = copy.copy(widget)
        shown.subject = subject
        choices[str(value)] = {"subject": subject, "fields": shown.get_context("rule", None, {})["builder"][
            "fields_json"]}
    widget.attrs.update({"data-rules-follow": choice, "data-rules-subjects": json.dumps(choices)})


class BenefitPlanForm(WagtailAdminModelForm):
    """The plan's fields, its default criteria and score formula written as rules (by the builder or
    as text), checked when saved against what the plan's rules may name: its type's fields and the
    plan's attributes."""

    criteria_potential = RuleField(label="Who may be potential beneficiaries", required=False)
    criteria_active = RuleField(label="Who may be active beneficiaries", required=False)
    score_formula_text = RuleField(label="Score formula", required=False, expect=NUMBER, help_text=SCORE_HELP)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        set_rules_user(self, self.for_user)
        plan_type = self.data.get("plan_type") if self.is_bound else None
        subject = plan_rules_subject(self.instance, plan_type if plan_type in PlanType.values else None)
        for status in CRITERIA_STATUSES:
            self.fields[f"criteria_{status.lower()}"].set_subject(subject)
            # A new plan's type may still change in this form: its help gives both types' examples.
            self.fields[f"criteria_{status.lower()}"].help_text = rule_help(
                self.instance.plan_type if self.instance.pk else None)
            self.initial[f"criteria_{status.lower()}"] = (self.instance.criteria or {}).get(status)
        self.fields["score_formula_text"].set_subject(subject)
        for row in self.formsets["fields"].forms:  # bounds as people write them: 1 and 10, not 1.0000
            for bound in ("min_value", "max_value"):
                if row.initial.get(bound) is not None:
                    row.initial[bound] = Decimal(bound_text(row.initial[bound]))
        self.initial["score_cutoff"] = _cutoff_initial(self.initial.get("score_cutoff"))
        if "cutoffs" in self.formsets:
            cutoffs = self.formsets["cutoffs"]
            for row in cutoffs.forms:
                row.initial["cutoff"] = _cutoff_initial(row.initial.get("cutoff"))
            # A second cut-off for a location: said so, not as Django's "duplicate data for plan and location".
            cutoffs.get_unique_error_message = lambda unique_check: CUTOFFS_TWICE
            cutoffs.get_form_error = lambda: CUTOFF_TAKEN
        self.initial["score_formula_text"] = self.instance.score_formula or None
        for name in (*(f"criteria_{status.lower()}" for status in CRITERIA_STATUSES), "score_formula_text"):
            rules_follow(self.fields[name], "plan_type", {
                plan_type: plan_rules_subject(self.instance, plan_type) for plan_type in PlanType.values})

    class Media:
        js = [RULES_FOLLOW_JS]

    def is_valid(self):
        """The schema's rows are checked after this form's own clean(): their names too, against the
        plan type's fields, which a plan field must not shadow."""
        valid = super().is_valid()
        first_of = {}  # a name's key -> the first row's name: a second row of the same key is named
        for form in self.formsets["fields"].forms:
            name = getattr(form, "cleaned_data", {}).get("name")
            if name and not form.cleaned_data.get("DELETE"):
                names = [first_of[name_key(name)], name] if name_key(name) in first_of else [name]
                first_of.setdefault(name_key(name), name)
                try:
                    check_plan_field_names(self.instance.plan_type, names)
                except ValidationError as error:
                    form.add_error("name", error.message_dict["name"])
                    valid = False
        if self._cutoffs_without_formula():
            self.add_error("score_formula_text", CUTOFFS_WITHOUT_FORMULA)
            valid = False
        return valid

    def _cutoffs_without_formula(self):
        """Whether cut-offs are set (the default or a location's) while the score formula is left empty."""
        cleaned = getattr(self, "cleaned_data", {})
        if "score_formula_text" not in cleaned or cleaned["score_formula_text"]:
            return False  # a formula, or one refused already
        rows = self.formsets["cutoffs"].forms if "cutoffs" in self.formsets else []
        return cleaned.get("score_cutoff") is not None or any(
            getattr(row, "cleaned_data", {}).get("cutoff") is not None and not row.cleaned_data.get("DELETE")
            for row in rows)

    def clean(self):
        cleaned = super().clean()
        self.instance.criteria = {status: cleaned[f"criteria_{status.lower()}"] for status in CRITERIA_STATUSES
                                  if cleaned.get(f"criteria_{status.lower()}")}
        self.instance.score_formula = cleaned.get("score_formula_text") or {}
        return cleaned

    def _post_clean(self):
        """A code or name another plan has but for its case breaks a constraint on Lower(field), which
        Django reports above the form: it is shown under the field instead."""
        super()._post_clean()
        for error in self._errors.pop(NON_FIELD_ERRORS, ErrorList()).as_data():
            field = UNIQUE_ANY_CASE.get(error.code)
            self.add_error(field if field in self.fields else None, error)


class LocationTreeSelect(forms.Select):
    """A location select in the order of the tree, by name at every level (the stored path, the
    locations' own order, is made of ids), each option named by its place: "Region › District"."""

    def optgroups(self, name, value, attrs=None):
        choices = list(self.choices)  # one query
        blank = [(option, label) for option, label in choices if not hasattr(option, "instance")]
        options = {option.instance.pk: option for option, _ in choices if hasattr(option, "instance")}
        ordered = [(options[location.pk], label) for location, label in
                   locations_by_tree(option.instance for option in options.values())]
        given, self.choices = self.choices, blank + ordered
        try:
            return super().optgroups(name, value, attrs)
        finally:
            self.choices = given


class EnrolmentForm(forms.Form):
    """Who to enrol, and as what. The rule box starts from the plan's rule for the chosen status, and
    follows the status while it still holds the previous one's (enrol_prefill.js); the plan's rule
    for the status applies anyway (services.enrolment_candidates)."""

    target_status = forms.ChoiceField(choices=[(s, s.label) for s in CRITERIA_STATUSES], label="Enrol as")
    rule = RuleField(label="Criteria")

    def __init__(self, *args, plan, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule"].set_subject(plan_rules_subject(plan))
        self.fields["rule"].help_text = enrol_help(plan.plan_type)
        self.fields["rule"].widget.attrs.update({
            "data-status-select": "target_status",
            "data-status-rules": json.dumps({status: plan.criteria_text(status) for status in CRITERIA_STATUSES})})
        set_rules_user(self, user)

    class Media:
        js = ["plans/enrol_prefill.js"]


class StatusChangeForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a.capitalize()) for a in ("activate", "suspend", "reinstate", "graduate",
                                                                         "reject")])
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ReenrolmentForm(forms.Form):
    reason = forms.CharField(label="Why enrol them again", max_length=500,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="What was wrong with the rejection: the checkers read it beside it.")


class BulkStatusForm(StatusChangeForm):
    statuses = forms.MultipleChoiceField(choices=BeneficiaryStatus.choices, required=False,
                                         widget=forms.CheckboxSelectMultiple,
                                         label="Only beneficiaries now", help_text="None ticked: every status.")


class BeneficiaryDataForm(AttributeFormMixin, forms.Form):
    """The plan's schema fields for one beneficiary."""

    def __init__(self, *args, beneficiary, show_sensitive, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance = beneficiary
        self.add_attribute_fields(beneficiary.plan.schema(), show_sensitive=show_sensitive)

    def clean(self):
        """The schema's checks (formats, decimals) run here too, not only when saving: beside a value the
        form refuses itself (a date that does not exist), the other values' mistakes are shown at once."""
        cleaned = super().clean()
        values = {name.removeprefix(ATTRIBUTE_PREFIX): cleaned[name] for name in self.attribute_field_names
                  if name in cleaned}
        try:
            self.attribute_schema.clean(values, prefix=ATTRIBUTE_PREFIX, stored=self.instance.attributes)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                if name in cleaned:  # a value the form refused, or left out, has its own message
                    self.add_error(name, messages)
        return cleaned


class SchemaUploadForm(forms.Form):
    file = forms.FileField(help_text="A JSON file of at most 1 MB.")


# --- targeting simulation ---------------------------------------------------------------------

FORMULA_HELP = ("A number per person or household (a lower score is poorer), e.g. "
                "100 - 8 * household_size - 5 * children_under_5. Those at or below their cut-off qualify.")


def _cutoff_field(label, help_text=""):
    return forms.DecimalField(label=label, required=False, max_digits=18, decimal_places=4, help_text=help_text)


class SimulationForm(forms.Form):
    """Criteria, a score formula and its cut-offs (a default and one per region), prefilled from the
    plan. Cut-offs the plan sets on other locations (deeper ones, or regions not listed) are kept as
    they are: `scoring()` carries them, and a region's input replaces only the region's own."""

    target_status = forms.ChoiceField(choices=[(s, s.label) for s in CRITERIA_STATUSES], label="Enrol as")
    criteria = RuleField()
    formula = RuleField(label="Score formula", expect=NUMBER, help_text=FORMULA_HELP)
    default_cutoff = _cutoff_field("Default cut-off", "Where no region or location has its own. "
                                                      "Leave empty: elsewhere nobody qualifies.")
    amount = forms.DecimalField(label="Amount per beneficiary", required=False, min_value=0, max_digits=18,
                                decimal_places=2, help_text="For the cost estimate (optional).")

    def __init__(self, data=None, *, plan, regions, user):
        plan_cutoffs = list(plan.cutoffs.all().select_related("location"))
        tree = {location.pk: place for place, (location, _) in
                enumerate(locations_by_tree(cutoff.location for cutoff in plan_cutoffs))}
        plan_cutoffs.sort(key=lambda cutoff: tree[cutoff.location_id])
        self.regions = list(regions)
        region_ids = {region.pk for region in self.regions}
        self.kept_cutoffs = [cutoff for cutoff in plan_cutoffs if cutoff.location_id not in region_ids]
        at_region = {cutoff.location_id: cutoff.cutoff for cutoff in plan_cutoffs if cutoff.location_id in region_ids}
        initial = {"target_status": BeneficiaryStatus.POTENTIAL,
                   "criteria": (plan.criteria or {}).get(BeneficiaryStatus.POTENTIAL),
                   "formula": plan.score_formula or None,
                   "default_cutoff": _cutoff_initial(plan.score_cutoff),
                   **{self._region_key(pk): _cutoff_initial(value) for pk, value in at_region.items()}}
        super().__init__(data, initial=initial)
        for name in ("criteria", "formula"):
            self.fields[name].set_subject(plan_rules_subject(plan))
        self.fields["criteria"].help_text = (f"Who may enrol at all, e.g. {RULE_EXAMPLES[plan.plan_type]}. The score "
                                             "then decides among them.")
        set_rules_user(self, user)
        for region in self.regions:
            self.fields[self._region_key(region.pk)] = _cutoff_field(f"Cut-off in {region.name}")

    @staticmethod
    def _region_key(pk):
        return f"cutoff_{pk}"

    def kept_cutoff_rows(self):
        """[(location, cut-off as people write it)] of the plan's cut-offs this form leaves as they are."""
        return [(cutoff.location, bound_text(cutoff.cutoff)) for cutoff in self.kept_cutoffs]

    def region_fields(self):
        return [self[self._region_key(region.pk)] for region in self.regions]

    def general_fields(self):
        return [self[name] for name in ("target_status", "criteria", "formula", "default_cutoff", "amount")]

    def scoring(self):
        """The scoring the cleaned form describes (see schemes.plans.targeting)."""
        cutoffs = {str(cutoff.location_id): bound_text(cutoff.cutoff) for cutoff in self.kept_cutoffs}
        for region in self.regions:
            value = self.cleaned_data.get(self._region_key(region.pk))
            if value is not None:
                cutoffs[str(region.pk)] = str(value)
        default = self.cleaned_data.get("default_cutoff")
        formula = self.cleaned_data["formula"]
        return {"formula": formula["rule"], "formula_text": formula["text"], "cutoffs": cutoffs,
                "default_cutoff": None if default is None else str(default)}
