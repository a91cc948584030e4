from django import forms

from sites.forms import ScopedRecordForm
from sites.masking import can_view_sensitive

from .models import Household, Individual, MemberRole, RecipientType, RegistryField


class IndividualForm(ScopedRecordForm):
    class Meta:
        model = Individual
        fields = ["first_name", "last_name", "dob", "sex", "national_id", "phone", "location"]
        widgets = {"dob": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, for_user=None, **kwargs):
        super().__init__(*args, for_user=for_user, **kwargs)
        self.add_attribute_fields(RegistryField.schema_for(RegistryField.Target.INDIVIDUAL),
                                  show_sensitive=can_view_sensitive(for_user))



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



class AddMemberForm(forms.Form):
    individual = forms.ModelChoiceField(queryset=Individual.objects.none(), widget=forms.HiddenInput)
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
