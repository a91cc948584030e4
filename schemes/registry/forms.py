from django import forms
from django.urls import reverse
from django.utils.html import format_html

from sites.forms import ScopedRecordForm
from sites.masking import can_view_sensitive

from . import selectors
from .models import Household, Individual, MemberRole, RecipientType, RegistryField


class IndividualForm(ScopedRecordForm):
    # Registration only: a person with the same names and date of birth is registered on confirmation.
    register_anyway = forms.BooleanField(
        required=False, label="Register anyway",
        help_text="Tick only when the form warns of a possible duplicate that is a different person.")

    class Meta:
        model = Individual
        fields = ["first_name", "last_name", "dob", "sex", "national_id", "phone", "location"]
        widgets = {"dob": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, for_user=None, **kwargs):
        super().__init__(*args, for_user=for_user, **kwargs)
        self.for_user = for_user
        if self.instance.pk:
            del self.fields["register_anyway"]
        self.add_attribute_fields(RegistryField.schema_for(RegistryField.Target.INDIVIDUAL),
                                  show_sensitive=can_view_sensitive(for_user))

    def clean(self):
        cleaned = super().clean()
        if "register_anyway" in self.fields and not cleaned.get("register_anyway") and cleaned.get("dob"):
            same = selectors.exact_duplicates(
                selectors.individuals_for(self.for_user), first_name=(cleaned.get("first_name") or "").strip(),
                last_name=(cleaned.get("last_name") or "").strip(), dob=cleaned["dob"]).first()
            if same is not None:
                # The error as text (error lists are escaped), the link to the record beside the box.
                self.add_error("register_anyway", f"Possible duplicate of {same} (id {same.pk}, born "
                                                  f"{same.dob:%Y-%m-%d}): same names and date of birth. If this is a "
                                                  "different person, tick “Register anyway” and save again.")
                self["register_anyway"].help_text = format_html(  # the bound field the panel shows
                    'Compare with <a href="{}">{} (id {})</a> first.',
                    reverse("registry_individual:inspect", args=[same.pk]), same, same.pk)
        return cleaned

    def core_values(self):
        return {name: value for name, value in super().core_values().items() if name != "register_anyway"}



class HouseholdForm(ScopedRecordForm):
    class Meta:
        model = Household
        fields = ["code", "location"]

    def __init__(self, *args, for_user=None, **kwargs):
        super().__init__(*args, for_user=for_user, **kwargs)
        self.fields["code"].required = False
        self.fields["code"].help_text = "Leave empty to generate one."
        self.add_attribute_fields(RegistryField.schema_for(RegistryField.Target.HOUSEHOLD),
                                  show_sensitive=can_view_sensitive(for_user))

    def _get_validation_exclusions(self):
        # The code's uniqueness is the service's check (in its transaction, on this field, naming the
        # household that has the code), not the constraint's message atop the form, which names none.
        return super()._get_validation_exclusions() | {"code"}



class AddMemberForm(forms.Form):
    individual = forms.ModelChoiceField(
        queryset=Individual.objects.none(), widget=forms.HiddenInput, label="Person",
        error_messages={"invalid_choice": "No registered person with this id in your locations."})
    role = forms.ModelChoiceField(queryset=MemberRole.objects.all(), required=False,
                                  help_text="The first member is the head.")
    recipient_type = forms.ChoiceField(choices=[("", "—")] + RecipientType.choices, required=False,
                                       label="Recipient")

    def __init__(self, *args, individuals, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["individual"].queryset = individuals


class ChangeMemberForm(forms.Form):
    # HEAD is accepted for the head's own row (to change only the recipient); the service refuses
    # making someone head this way.
    role = forms.ModelChoiceField(queryset=MemberRole.objects.all())
    recipient_type = forms.ChoiceField(choices=[("", "—")] + RecipientType.choices, required=False,
                                       label="Recipient")


class SetHeadForm(forms.Form):
    former_head_role = forms.ModelChoiceField(queryset=MemberRole.objects.exclude(pk=MemberRole.HEAD),
                                              label="New role of the former head")


class RemoveMemberForm(forms.Form):
    new_primary = forms.ModelChoiceField(
        queryset=Individual.objects.none(), required=False, label="New primary recipient",
        help_text="Needed when the primary recipient leaves a household that keeps other members.",
        error_messages={"invalid_choice": "Choose another member of this household, in your locations."})

    def __init__(self, *args, others, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_primary"].queryset = others
