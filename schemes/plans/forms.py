from django import forms
from wagtail.admin.forms import WagtailAdminModelForm

from schemes.rules.catalogue import individual_catalogue
from schemes.rules.compiler import compile_rule
from schemes.rules.errors import RuleError
from schemes.rules.nodes import to_json

from .models import BeneficiaryStatus

CRITERIA_STATUSES = (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE)
RULE_HELP = ("A rule over the person's fields, e.g. age >= 18 and income < 50000 and household_size >= 3. "
             "Leave empty for none.")


class BenefitPlanForm(WagtailAdminModelForm):
    """The plan's fields, and its default criteria written as rules (checked when saved)."""

    criteria_potential = forms.CharField(label="Who may be potential beneficiaries", required=False,
                                         widget=forms.Textarea(attrs={"rows": 2}), help_text=RULE_HELP)
    criteria_active = forms.CharField(label="Who may be active beneficiaries", required=False,
                                      widget=forms.Textarea(attrs={"rows": 2}), help_text=RULE_HELP)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for status in CRITERIA_STATUSES:
            self.initial[f"criteria_{status.lower()}"] = self.instance.criteria_text(status)

    def clean(self):
        cleaned = super().clean()
        catalogue = individual_catalogue()
        criteria = {}
        for status in CRITERIA_STATUSES:
            name = f"criteria_{status.lower()}"
            text = (cleaned.get(name) or "").strip()
            if not text:
                continue
            try:
                criteria[status] = {"text": text, "rule": to_json(compile_rule(text, catalogue, expect="boolean"))}
            except RuleError as error:
                self.add_error(name, str(error))
        self.instance.criteria = criteria
        return cleaned


class EnrolmentForm(forms.Form):
    target_status = forms.ChoiceField(choices=[(s, s.label) for s in CRITERIA_STATUSES], label="Enrol as")
    rule = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Criteria", help_text=RULE_HELP)


class StatusChangeForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in ("activate", "suspend", "reinstate", "graduate", "reject")])
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class SchemaUploadForm(forms.Form):
    file = forms.FileField(help_text="A JSON file of at most 1 MB.")
