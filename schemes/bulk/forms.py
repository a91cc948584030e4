from django import forms

from schemes.payments.models import PayrollStatus
from schemes.payments.selectors import payrolls_for
from schemes.plans.selectors import plans_for

from .models import PLAN_KINDS, ImportMode, UploadKind


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=UploadKind.choices, label="What the file holds")
    plan = forms.ModelChoiceField(queryset=None, required=False, label="Plan",
                                  help_text="For beneficiary files: the plan they are enrolled in or belong to.")
    payroll = forms.ModelChoiceField(queryset=None, required=False, label="Payroll",
                                     help_text="For reconciliation files: the approved payroll they report on.")
    file = forms.FileField(help_text="CSV (comma, semicolon or tab; UTF-8, UTF-16 or Windows-1252) or XLSX.")

    def __init__(self, *args, user, kinds, **kwargs):
        super().__init__(*args, **kwargs)
        # Only what the user may upload: a kind offered then refused for a missing permission is a trap.
        self.fields["kind"].choices = [(kind, label) for kind, label in UploadKind.choices if kind in kinds]
        self.fields["plan"].queryset = plans_for(user)
        self.fields["payroll"].queryset = payrolls_for(user).filter(status=PayrollStatus.APPROVED)
        if not set(kinds) & set(PLAN_KINDS):
            del self.fields["plan"]
        if UploadKind.RECONCILIATION not in kinds:
            del self.fields["payroll"]

    def plan_initial(self):
        """The plan the form is for (chosen, or given in the link), to offer its templates."""
        value = self.data.get("plan") if self.is_bound else self.initial.get("plan")
        if not value or not str(value).isdigit() or "plan" not in self.fields:
            return None
        return self.fields["plan"].queryset.filter(pk=value).first()

    def clean(self):
        cleaned = super().clean()
        kind, plan = cleaned.get("kind"), cleaned.get("plan")
        cleaned.setdefault("plan", None)
        cleaned.setdefault("payroll", None)
        if kind in PLAN_KINDS and plan is None:
            self.add_error("plan", "Choose the plan this file is for.")
        if kind not in PLAN_KINDS:
            cleaned["plan"] = None
        if kind == UploadKind.RECONCILIATION and cleaned.get("payroll") is None:
            self.add_error("payroll", "Choose the approved payroll this file reconciles.")
        if kind != UploadKind.RECONCILIATION:
            cleaned["payroll"] = None
        return cleaned


class SubmitForm(forms.Form):
    mode = forms.ChoiceField(choices=ImportMode.choices, widget=forms.RadioSelect, initial=ImportMode.VALID_ROWS,
                             label="Import")
