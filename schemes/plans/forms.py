import copy

from django import forms
from wagtail.admin.forms import WagtailAdminModelForm

from schemes.rules.compiler import compile_rule
from schemes.rules.errors import RuleError
from schemes.rules.nodes import to_json
from sites.forms import AttributeFormMixin

from .catalogues import candidate_catalogue
from .models import BeneficiaryStatus

CRITERIA_STATUSES = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE)
RULE_HELP = ("A rule over the fields of the person (or, in a household plan, of the household), e.g. "
             "age >= 18 and income < 50000 and household_size >= 3. Leave empty for none.")
SCORE_HELP = ("A number per person or household, e.g. 120 - 8 * household_size + 0.002 * income. "
              "Those scoring at or below their region's cut-off qualify.")


class BenefitPlanForm(WagtailAdminModelForm):
    """The plan's fields, its default criteria and score formula written as rules (checked when saved
    against what the plan's rules may name: its type's fields and the plan's attributes)."""

    criteria_potential = forms.CharField(label="Who may be potential beneficiaries", required=False,
                                         widget=forms.Textarea(attrs={"rows": 2}), help_text=RULE_HELP)
    criteria_active = forms.CharField(label="Who may be active beneficiaries", required=False,
                                      widget=forms.Textarea(attrs={"rows": 2}), help_text=RULE_HELP)
    score_formula_text = forms.CharField(label="Score formula", required=False,
                                         widget=forms.Textarea(attrs={"rows": 2}), help_text=SCORE_HELP)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for status in CRITERIA_STATUSES:
            self.initial[f"criteria_{status.lower()}"] = self.instance.criteria_text(status)
        self.initial["score_formula_text"] = (self.instance.score_formula or {}).get("text", "")

    def _rule(self, name, catalogue, expect):
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return None
        try:
            return {"text": text, "rule": to_json(compile_rule(text, catalogue, expect=expect))}
        except RuleError as error:
            self.add_error(name, str(error))
            return None

    def clean(self):
        cleaned = super().clean()
        probe = copy.copy(self.instance)
        probe.plan_type = cleaned.get("plan_type") or probe.plan_type
        catalogue = candidate_catalogue(probe)
        criteria = {}
        for status in CRITERIA_STATUSES:
            rule = self._rule(f"criteria_{status.lower()}", catalogue, "boolean")
            if rule:
                criteria[status] = rule
        self.instance.criteria = criteria
        self.instance.score_formula = self._rule("score_formula_text", catalogue, "number") or {}
        return cleaned


class EnrolmentForm(forms.Form):
    target_status = forms.ChoiceField(choices=[(s, s.label) for s in CRITERIA_STATUSES], label="Enrol as")
    rule = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Criteria", help_text=RULE_HELP)


class StatusChangeForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a.capitalize()) for a in ("activate", "suspend", "reinstate", "graduate",
                                                                         "reject")])
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


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


class SchemaUploadForm(forms.Form):
    file = forms.FileField(help_text="A JSON file of at most 1 MB.")
