from django import forms

from schemes.rules.catalogue import NUMBER
from schemes.rules.forms import RuleField

from .catalogues import plan_rules_subject
from .forms import CRITERIA_STATUSES
from .models import BeneficiaryStatus

CRITERIA_HELP = "Who may enrol at all, e.g. age >= 18 and household_size >= 3. The score then decides among them."
FORMULA_HELP = ("A number per person or household (a lower score is poorer), e.g. "
                "100 - 8 * household_size - 5 * children_under_5. Those at or below their cut-off qualify.")


def _cutoff_field(label, help_text=""):
    return forms.DecimalField(label=label, required=False, max_digits=18, decimal_places=4, help_text=help_text)


class SimulationForm(forms.Form):
    """Criteria, a score formula and its cut-offs (a default and one per region), prefilled from the
    plan. Cut-offs the plan sets on other locations (deeper ones, or regions not listed) are kept as
    they are: `scoring()` carries them, and a region's input replaces only the region's own."""

    target_status = forms.ChoiceField(choices=[(s, s.label) for s in CRITERIA_STATUSES], label="Enrol as")
    criteria = RuleField(help_text=CRITERIA_HELP)
    formula = RuleField(label="Score formula", expect=NUMBER, help_text=FORMULA_HELP)
    default_cutoff = _cutoff_field("Default cut-off", "Where no region or location has its own. "
                                                      "Leave empty: elsewhere nobody qualifies.")
    amount = forms.DecimalField(label="Amount per beneficiary", required=False, min_value=0, max_digits=18,
                                decimal_places=2, help_text="For the cost estimate (optional).")

    def __init__(self, data=None, *, plan, regions):
        plan_cutoffs = list(plan.cutoffs.all().select_related("location"))
        self.regions = list(regions)
        region_ids = {region.pk for region in self.regions}
        self.kept_cutoffs = [cutoff for cutoff in plan_cutoffs if cutoff.location_id not in region_ids]
        at_region = {cutoff.location_id: cutoff.cutoff for cutoff in plan_cutoffs if cutoff.location_id in region_ids}
        initial = {"target_status": BeneficiaryStatus.POTENTIAL,
                   "criteria": (plan.criteria or {}).get(BeneficiaryStatus.POTENTIAL),
                   "formula": plan.score_formula or None,
                   "default_cutoff": plan.score_cutoff,
                   **{self._region_key(pk): value for pk, value in at_region.items()}}
        super().__init__(data, initial=initial)
        for name in ("criteria", "formula"):
            self.fields[name].set_subject(plan_rules_subject(plan))
        for region in self.regions:
            self.fields[self._region_key(region.pk)] = _cutoff_field(f"Cut-off in {region.name}")

    @staticmethod
    def _region_key(pk):
        return f"cutoff_{pk}"

    def region_fields(self):
        return [self[self._region_key(region.pk)] for region in self.regions]

    def general_fields(self):
        return [self[name] for name in ("target_status", "criteria", "formula", "default_cutoff", "amount")]

    def scoring(self):
        """The scoring the cleaned form describes (see schemes.plans.targeting)."""
        cutoffs = {str(cutoff.location_id): str(cutoff.cutoff) for cutoff in self.kept_cutoffs}
        for region in self.regions:
            value = self.cleaned_data.get(self._region_key(region.pk))
            if value is not None:
                cutoffs[str(region.pk)] = str(value)
        default = self.cleaned_data.get("default_cutoff")
        formula = self.cleaned_data["formula"]
        return {"formula": formula["rule"], "formula_text": formula["text"], "cutoffs": cutoffs,
                "default_cutoff": None if default is None else str(default)}
