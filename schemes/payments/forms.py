from django import forms
from django.utils import timezone

from schemes.plans.catalogues import plan_rules_subject
from schemes.plans.forms import RULES_FOLLOW_JS, rules_follow
from schemes.plans.selectors import plans_for
from schemes.rules.catalogue import NUMBER
from schemes.rules.forms import RuleField, set_rules_user
from sites.forms import ScopedRecordForm
from sites.models import CURRENCY_CODE, OrganisationSettings

from .models import PaymentCycle, PaymentPlan, Periodicity
from .selectors import nearest_open_cycle
from .services import PAYABLE_TARGETS
from .templatetags.payments_money import money

FORMULA_HELP = ("The amount per beneficiary and cycle, e.g. 500 + (200 if children_under_5 > 0 else 0) "
                "+ 100 * min(household_size, 4). Rounded half to even to the cent, then capped by the ceiling.")
AMOUNT_FIELDS = ("ceiling_per_beneficiary", "limit_per_transaction")
CRITERIA_HELP = "Only the beneficiaries for whom this is true are paid. Leave empty: every beneficiary in the statuses paid."


class ServiceModelForm(ScopedRecordForm):
    """A model form whose save is a service call (which checks uniqueness and the location's scope):
    its errors go back onto the fields. A `location` is one of the user's locations, picked in the
    location chooser (ScopedRecordForm)."""

    def service_fields(self):
        return self.core_values()


class PaymentPlanForm(ServiceModelForm):
    """The formula and criteria are written with the rules editor (the builder for the criteria),
    over what the benefit plan's rules name: its type's fields and the plan's attributes. On a new
    payment plan the builder follows the benefit plan chosen in the select, before saving."""

    formula = RuleField(expect=NUMBER, help_text=FORMULA_HELP)
    criteria = RuleField(required=False, help_text=CRITERIA_HELP)
    target_statuses = forms.MultipleChoiceField(
        choices=[(status.value, status.label) for status in PAYABLE_TARGETS], widget=forms.CheckboxSelectMultiple,
        label="Statuses paid", initial=["ACTIVE"])
    # Asked only when a change of currency would carry the amounts over as they are (see clean()).
    amounts_in_new_currency = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The formula means what it means over this plan's fields: the plan does not change.
            self.fields["benefit_plan"].disabled = True
        elif self.for_user is not None:
            self.fields["benefit_plan"].queryset = plans_for(self.for_user)
        set_rules_user(self, self.for_user)
        plan = self._benefit_plan()
        if not self.instance.pk and not self.is_bound:
            self._set_new_plan_initial(plan)
            plan = self._benefit_plan()
        for name in ("formula", "criteria"):
            self.fields[name].set_subject(plan_rules_subject(plan) if plan else "individual")
            self.initial.setdefault(name, getattr(self.instance, name) or None)
            if not self.instance.pk:
                rules_follow(self.fields[name], "benefit_plan", {
                    choice.pk: plan_rules_subject(choice) for choice in self.fields["benefit_plan"].queryset})
        new_currency = self._new_currency()
        if new_currency:
            self.fields["amounts_in_new_currency"].label = f"Keep these amounts as they are, in {new_currency}"
        else:
            del self.fields["amounts_in_new_currency"]

    class Media:
        js = [RULES_FOLLOW_JS]

    def _set_new_plan_initial(self, plan):
        """A new payment plan pays in its benefit plan's currency: the one chosen, or the only one there
        is (then chosen too); with several to choose from, the one they all pay in, else the
        organisation's currency until one is chosen."""
        currencies = set()
        if plan is None:
            plans = list(self.fields["benefit_plan"].queryset[:2])
            if len(plans) == 1:
                plan = plans[0]
                self.initial["benefit_plan"] = plan.pk
            else:
                currencies = set(self.fields["benefit_plan"].queryset.order_by().values_list("currency", flat=True)
                                 .distinct()[:2])
        if plan is not None:
            self.initial["currency"] = plan.currency
        else:
            self.initial["currency"] = currencies.pop() if len(currencies) == 1 else OrganisationSettings.load().currency

    def _set_amounts(self):
        """{field name: amount} of the plan's ceiling and limit that are set."""
        return {name: getattr(self.instance, name) for name in AMOUNT_FIELDS
                if getattr(self.instance, name) is not None}

    def _new_currency(self):
        """The currency posted, when it changes the currency of a plan that has a ceiling or a limit."""
        if not (self.is_bound and self.instance.pk and self._set_amounts()):
            return None
        posted = self.fields["currency"].to_python(self.data.get(self.add_prefix("currency")))
        return posted if posted and posted != self.instance.currency else None

    def clean(self):
        """A ceiling or limit set in one currency is not silently the same figure in another (100,000
        TZS is not 100,000 USD): when the currency changes, each amount kept as it was must be given
        again, or kept as it is on purpose."""
        cleaned = super().clean()
        new_currency = cleaned.get("currency")
        benefit_plan = cleaned.get("benefit_plan")
        is_code = bool(new_currency and CURRENCY_CODE.regex.fullmatch(new_currency))  # else the field says why
        if benefit_plan and is_code and new_currency != benefit_plan.currency:
            # Payrolls pay the benefit plan's beneficiaries in its currency (its ceiling is in it too): no
            # tick-box makes another currency right; the amounts tick-box below only confirms amounts.
            self.add_error("currency", f"{benefit_plan} pays in {benefit_plan.currency}: a payment plan pays in "
                                       f"its benefit plan's currency. Give {benefit_plan.currency} (to pay in "
                                       "another currency, change the benefit plan's first).")
            return cleaned
        if "amounts_in_new_currency" in self.fields and new_currency and not cleaned.get("amounts_in_new_currency"):
            old_currency = self.instance.currency
            for name, amount in self._set_amounts().items():
                if name in cleaned and cleaned[name] == amount:
                    what = str(PaymentPlan._meta.get_field(name).verbose_name)
                    self.add_error(name, f"This is {money(amount, old_currency)}: the currency becomes {new_currency}. "
                                         f"Give the {what} in {new_currency}, or keep {money(amount, new_currency)} "
                                         "by ticking the box below.")
        return cleaned

    def _benefit_plan(self):
        if self.instance.benefit_plan_id:
            return self.instance.benefit_plan
        plan_id = (self.data.get(self.add_prefix("benefit_plan")) if self.is_bound else None) or \
            self.initial.get("benefit_plan")
        return self.fields["benefit_plan"].queryset.filter(pk=plan_id).first() if str(plan_id or "").isdigit() else None

    def service_fields(self):
        fields = super().service_fields()
        fields.pop("amounts_in_new_currency", None)
        fields["criteria"] = fields.get("criteria") or {}
        return fields


class FormulaTestForm(forms.Form):
    formula = RuleField(expect=NUMBER, help_text=FORMULA_HELP)
    criteria = RuleField(required=False, help_text=CRITERIA_HELP)
    ceiling_per_beneficiary = forms.DecimalField(required=False, max_digits=18, decimal_places=2, min_value=0.01)
    limit_per_transaction = forms.DecimalField(required=False, max_digits=18, decimal_places=2, min_value=0.01)
    target_statuses = forms.MultipleChoiceField(
        choices=[(status.value, status.label) for status in PAYABLE_TARGETS], widget=forms.CheckboxSelectMultiple,
        label="Statuses paid")

    def __init__(self, data=None, *, payment_plan, user):
        super().__init__(data, initial={
            "formula": payment_plan.formula or None, "criteria": payment_plan.criteria or None,
            "ceiling_per_beneficiary": payment_plan.ceiling_per_beneficiary,
            "limit_per_transaction": payment_plan.limit_per_transaction,
            "target_statuses": payment_plan.target_statuses})
        for name in ("formula", "criteria"):
            self.fields[name].set_subject(plan_rules_subject(payment_plan.benefit_plan))
        set_rules_user(self, user)


class ScheduleForm(forms.Form):
    prefix = forms.CharField(max_length=20, help_text="Cycles are coded <prefix>-<YYYY>-<MM>.")
    first_start = forms.DateField(label="First cycle starts", widget=forms.DateInput(attrs={"type": "date"}))
    periodicity = forms.TypedChoiceField(choices=Periodicity.choices, coerce=int, initial=Periodicity.BIMONTHLY)
    count = forms.IntegerField(min_value=1, max_value=120, initial=6, label="Number of cycles")


class GeneratePayrollForm(forms.Form):
    """The cycle of the payroll to generate, among `cycles` (selectors.cycles_to_pay: those that can
    serve the payment plan, by date), the nearest open one preselected."""

    cycle = forms.ModelChoiceField(queryset=PaymentCycle.objects.none(), empty_label=None)

    def __init__(self, data=None, *, cycles, today=None):
        super().__init__(data)
        self.fields["cycle"].queryset = cycles
        if not self.is_bound:
            nearest = nearest_open_cycle(cycles, today or timezone.localdate())
            if nearest is not None:
                self.initial["cycle"] = nearest.pk
