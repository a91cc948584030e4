from django import forms

from .models import ImportMode, UploadKind


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=UploadKind.choices, label="What the file holds")
    file = forms.FileField(help_text="CSV (comma, semicolon or tab; UTF-8, UTF-16 or Windows-1252) or XLSX.")


class SubmitForm(forms.Form):
    mode = forms.ChoiceField(choices=ImportMode.choices, widget=forms.RadioSelect, initial=ImportMode.VALID_ROWS,
                             label="Import")
