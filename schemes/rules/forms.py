"""A rule as a form field: typed as text (our language, or openIMIS filter strings, which are stored
as the rule they mean) or built from rows of field / operator / value in AND/OR groups
(static/rules/rule_builder.js), checked against a subject's catalogue, stored as
{"text": ..., "rule": <AST JSON>} (the shape of BenefitPlan.criteria's entries).

The textarea always holds the rule's text and is what the form submits: the builder writes into it,
and without JavaScript the field is a plain textarea. Beside it, the builder submits the conditions it
shows but cannot write yet (a field chosen, no value): the field refuses the rule while there are any,
so that what is saved is never wider than what the builder shows."""

import json

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.urls import reverse
from wagtail.admin.active_filters import ActiveFilter, BaseFilterAdapter, register_filter_adapter_class

from .catalogue import BOOLEAN
from .compiler import compile_rule, filter_queryset
from .errors import RuleError, character_offset
from .nodes import from_json, to_json
from .parser import MAX_TEXT
from .subjects import resolve_subject
from .text import stored_text, to_text


def rule_text(value):
    """The text of a rule field's value: a stored {"text", "rule"} dict or text as typed."""
    if isinstance(value, dict):
        if value.get("text"):
            return value["text"]
        return to_text(from_json(value["rule"])) if value.get("rule") else ""
    return value or ""


def set_rules_user(form, user):
    """Tell each rule field of `form` who writes its rule. Until told, a rule field lets no one name
    sensitive fields."""
    for field in form.fields.values():
        if isinstance(field, RuleField):
            field.set_user(user)


INCOMPLETE = "-incomplete"  # the name of the builder's incomplete conditions: the field's, then this
MAX_NAMED = 5  # incomplete conditions named in the message


def incomplete_message(rows):
    """The refusal of a rule whose builder shows conditions it left out, naming them."""
    named = "; ".join(row[:100] for row in rows[:MAX_NAMED]) + ("; ..." if len(rows) > MAX_NAMED else "")
    if len(rows) == 1:
        return f"This condition is incomplete: {named}. Give it a value or remove it."
    return f"{len(rows)} conditions are incomplete: {named}. Give each a value or remove it."


def describe_error(error, text):
    """A RuleError for people, pointing at the character the editor shows (1-based)."""
    if error.position is None:
        return error.message
    return f"At character {character_offset(text, error.position) + 1}: {error.message}"


class RuleBuilderWidget(forms.Widget):
    template_name = "rules/rule_builder.html"

    class Media:
        js = ["rules/rule_builder.js"]
        css = {"all": ["rules/rule_builder.css"]}

    def __init__(self, attrs=None, *, subject="individual", expect=BOOLEAN):
        super().__init__({"rows": 3, "maxlength": MAX_TEXT, **(attrs or {})})
        self.subject, self.expect = subject, expect
        self.user = None  # whose fields the builder offers (set_rules_user)

    def use_required_attribute(self, initial):
        # The textarea is read-only while the builder writes it: the browser could not point at it.
        return False

    def format_value(self, value):
        return rule_text(value)

    def value_from_datadict(self, data, files, name):
        """The rule's text; with the builder's incomplete conditions, {"text", "incomplete"} (which
        RuleField refuses)."""
        text = super().value_from_datadict(data, files, name)
        incomplete = data.get(name + INCOMPLETE)
        if not incomplete:
            return text
        try:
            rows = json.loads(incomplete)
        except ValueError:
            rows = None
        if not isinstance(rows, list) or not rows:
            rows = [str(incomplete)]
        return {"text": text or "", "incomplete": [str(row) for row in rows]}

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        subject, argument = resolve_subject(self.subject)
        fields = [{"name": spec.name, "label": spec.label, "type": spec.type, "choices": list(spec.choices)}
                  for spec in subject.catalogue(argument).for_user(self.user).fields.values()]
        context["builder"] = {
            "subject": self.subject, "subject_label": subject.label, "expect": self.expect,
            "check_url": reverse("rules_check"), "fields_json": json.dumps(fields),
            "offers_builder": self.expect == BOOLEAN,  # the builder writes conditions, not formulas
            "incomplete_suffix": INCOMPLETE,
        }
        return context


class RuleField(forms.Field):
    """A rule about `catalogue_name`'s records (a subject of rules.subjects) giving `expect`.
    Cleans to {"text": the text as written, "rule": its AST as JSON}, or None when left empty."""

    widget = RuleBuilderWidget

    def __init__(self, catalogue_name="individual", *, expect=BOOLEAN, **kwargs):
        self.expect = expect
        self.user = None  # who writes the rule: the fields they may name (set_rules_user)
        super().__init__(**kwargs)
        self.widget.expect = expect
        self.set_subject(catalogue_name)

    def set_subject(self, catalogue_name):
        """What the rule is about, when a form knows it only once built (a plan's own fields)."""
        self.catalogue_name = self.widget.subject = catalogue_name

    def set_user(self, user):
        self.user = self.widget.user = user

    def to_python(self, value):
        # Browsers submit a textarea's line breaks as CRLF; positions count what the editor shows.
        return value.replace("\r\n", "\n") if isinstance(value, str) else rule_text(value)

    def validate(self, value):
        if self.required and not value.strip():
            raise ValidationError(self.error_messages["required"], code="required")

    def clean(self, value):
        if isinstance(value, dict) and value.get("incomplete"):
            raise ValidationError(incomplete_message(value["incomplete"]), code="incomplete_rule")
        text = self.to_python(value)
        self.validate(text)
        if not text.strip():
            return None
        try:
            subject, argument = resolve_subject(self.catalogue_name)
            node = compile_rule(text, subject.catalogue(argument).for_user(self.user), expect=self.expect)
            written = stored_text(text, node)
        except RuleError as error:
            raise ValidationError(describe_error(error, text), code="invalid_rule") from None
        return {"text": written, "rule": to_json(node)}

    def has_changed(self, initial, data):
        if self.disabled:
            return False
        return rule_text(initial).strip() != self.to_python(data).strip()


# --- a rule as a list filter ------------------------------------------------------------------

CRITERIA_HELP = ("Only the records for which this rule is true, e.g. age >= 18 and household_size >= 3 "
                 "(openIMIS filters such as household_size__gte__integer=3 are read too, one per line). "
                 "The export carries the same criteria.")


class CriteriaFilter(django_filters.Filter):
    """A listing's "Criteria" filter: the records for which a rule is true (unknown, like false, leaves
    a record out), compiled by the one rules compiler.

    `subject` is the rule field's subject (rules.subjects): the fields the builder offers and the rule
    is checked against. `catalogue()` reads those same names from the list's own model; it differs
    from the subject's when the list holds records about the subject (a plan's beneficiaries read
    their person's fields through `individual__`). A rule that does not check is not ignored, as
    django-filter would ignore it: `refuses_when_invalid` tells the view to show the message and
    list nothing, and an export to refuse."""

    field_class = RuleField
    refuses_when_invalid = True

    def __init__(self, *, subject, catalogue, label="Criteria", help_text=CRITERIA_HELP, **kwargs):
        super().__init__(label=label, catalogue_name=subject, help_text=help_text, **kwargs)
        self.catalogue = catalogue

    @property
    def field(self):
        field = super().field
        request = getattr(self.parent, "request", None)
        field.set_user(getattr(request, "user", None))
        return field

    def filter(self, queryset, value):
        if not value:
            return queryset
        return filter_queryset(queryset, from_json(value["rule"]), self.catalogue())


class CriteriaFilterAdapter(BaseFilterAdapter):
    """The active-filter button shows the rule as written, not its stored form."""

    def get_active_filters(self):
        yield ActiveFilter(self.bound_field.auto_id, self.filter.label, rule_text(self.value),
                           self.get_url_without_filter_param(self.name))


register_filter_adapter_class(CriteriaFilter, CriteriaFilterAdapter)
