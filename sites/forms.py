"""Form pieces shared by every record whose attributes are admin-defined (registry now, plans later)."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.html import format_html_join
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import ObjectList, Panel

from .choosers import LocationChooserWidget
from .scoping import scope_for

ATTRIBUTE_PREFIX = "attr_"


class AttributeFormMixin:
    """Adds one form field per field definition, named `attr_<name>`, filled from `instance.attributes`."""

    def add_attribute_fields(self, schema, *, show_sensitive):
        self.attribute_schema = schema
        self.attribute_field_names = []
        for definition in schema.definitions:
            if definition.sensitive and not show_sensitive:
                continue  # not in the form at all: a crafted POST cannot change it
            name = ATTRIBUTE_PREFIX + definition.name
            self.fields[name] = definition.form_field()
            value = (self.instance.attributes or {}).get(definition.name) if self.instance.pk else None
            self.initial[name] = definition.form_initial(value)
            self.attribute_field_names.append(name)

    def attribute_values(self):
        """The attributes to save: edited values merged over the hidden (sensitive) ones kept as they are."""
        values = dict(self.instance.attributes or {}) if self.instance.pk else {}
        for name in self.attribute_field_names:
            values[name.removeprefix(ATTRIBUTE_PREFIX)] = self.cleaned_data.get(name)
        return {key: value for key, value in values.items() if value is not None}

    def apply_service_errors(self, error: ValidationError):
        """Put a service's errors on the matching form fields (attribute names get their prefix)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for name, messages in error.message_dict.items():
            field = name if name in self.fields else ATTRIBUTE_PREFIX + name
            self.add_error(field if field in self.fields else None, messages)


class ScopedRecordForm(AttributeFormMixin, WagtailAdminModelForm):
    """A model form whose `location` is one of the user's locations (picked in the location chooser,
    sites/choosers.py, which lists only those)."""

    def __init__(self, *args, for_user=None, **kwargs):
        super().__init__(*args, for_user=for_user, **kwargs)
        if "location" in self.fields and for_user is not None:
            scope = scope_for(for_user)
            self.fields["location"].queryset = scope.locations().order_by("path")
            # Records without a location are for national scope only: say so on the field.
            self.fields["location"].required = self.fields["location"].required or not scope.national
            self.fields["location"].error_messages["invalid_choice"] = "Choose a location within your locations."
            self.fields["location"].widget = LocationChooserWidget()

    def clean(self):
        cleaned = super().clean()
        # Uniqueness and constraints are checked by the service, inside its transaction, race-safe.
        self._validate_unique = False
        return cleaned

    def core_values(self):
        """The model fields this user's form holds (fields hidden by permission are absent)."""
        return {name: self.cleaned_data[name] for name in self._meta.fields if name in self.fields}


class AttributesPanel(Panel):
    """Renders the form's attribute fields, whatever the administrators have defined today."""

    class BoundPanel(Panel.BoundPanel):
        template_name = "sites/panels/attributes_panel.html"

        def is_shown(self):
            return bool(getattr(self.form, "attribute_field_names", []))

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            context["fields"] = [self.form[name] for name in self.form.attribute_field_names]
            return context


class RecordObjectList(ObjectList):
    """An ObjectList that leaves attribute fields to AttributesPanel instead of dumping them unstyled."""

    class BoundPanel(ObjectList.BoundPanel):
        def render_missing_fields(self):
            rendered = set(self.panel.get_form_options().get("fields", []))
            return format_html_join("", "{}", (
                (self.form[name],) for name in self.form.fields
                if name not in rendered and not name.startswith(ATTRIBUTE_PREFIX)
            ))


class FieldDefinitionForm(WagtailAdminModelForm):
    """Administrators type a choice field's values one per line rather than as JSON."""

    choices = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False,
        help_text="Choice fields: one allowed value per line.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["choices"] = "\n".join(self.instance.choices or [])

    def clean_choices(self):
        lines = [line.strip() for line in self.cleaned_data["choices"].splitlines()]
        return [line for line in lines if line]
