"""The Excel template of the files that register people or change beneficiaries: the CSV template's
header row on the first sheet, and a "Notes" sheet saying of each column whether it is required, its
type, format, choices, bounds and decimals, read from the definitions the import checks with (the
registry's and the plan's fields, the individuals import's own columns). The CSV template stays a
bare header row (openIMIS loads it)."""

from schemes.plans.models import PlanType
from schemes.plans.services import bound_text
from schemes.registry.models import OLDEST_BIRTH_YEAR, MemberRole
from sites.fields import FieldType, places_text
from sites.models import OrganisationSettings
from sites.scoping import scope_for

from . import individuals
from .models import UploadKind

KINDS = (UploadKind.INDIVIDUALS, UploadKind.BENEFICIARIES, UploadKind.BENEFICIARY_UPDATES)
HEADINGS = ("Column", "Required", "Type", "Format", "Choices", "Minimum", "Maximum", "Decimal places", "Notes")
NEW_PEOPLE = "For new people"  # a new beneficiaries file: registered people are found by their national ID


def _note(required, kind, format_text="", choices="", minimum="", maximum="", places="", notes=""):
    return (required, kind, format_text, choices, minimum, maximum, places, notes)


def field_note(definition, required, notes=""):
    """A registry or plan field's notes; `required` as the file takes it."""
    kind = definition.field_type
    text = kind == FieldType.TEXT
    bounded = kind in (FieldType.TEXT, FieldType.INTEGER, FieldType.DECIMAL)
    formats = {FieldType.DATE: "YYYY-MM-DD", FieldType.BOOLEAN: "yes or no (or 1 or 0)",
               FieldType.DECIMAL: "a point before the decimals: 1234.50", FieldType.INTEGER: "digits only: 12"}
    bounds = [f"{bound_text(value)}{' characters' if text else ''}" if bounded and value is not None else ""
              for value in (definition.min_value, definition.max_value)]
    places = ""
    if kind == FieldType.DECIMAL:
        places = "any" if definition.decimal_places is None else places_text(definition.decimal_places)
    patterned = text and definition.pattern
    extra = []
    if definition.help_text and not patterned:  # a patterned field's help text is its format
        extra.append(definition.help_text.rstrip(". "))
    if getattr(definition, "unique", False):  # plan fields only
        extra.append("no two beneficiaries of the plan share a value")
    if notes:
        extra.append(notes)
    return _note(required, definition.get_field_type_display(),
                 definition.format_text() if patterned else formats.get(kind, ""),
                 ", ".join(definition.choices) if kind == FieldType.CHOICE else "", *bounds, places,
                 "; ".join(extra))


def _person_notes(user, required):
    """The individuals import's own columns (individuals.PersonRows checks them)."""
    scoped = not scope_for(user).national
    rule = OrganisationSettings.load().national_id_rule()
    grouped = "needs a group_code"
    return {
        "first_name": _note(required, "Text", maximum="100 characters"),
        "last_name": _note(required, "Text", maximum="100 characters"),
        "dob": _note(required, "Date", "YYYY-MM-DD", minimum=f"{OLDEST_BIRTH_YEAR}-01-01", maximum="today",
                     notes="date of birth"),
        "sex": _note("No", "Choice", choices="F, M, O", notes="empty: not recorded"),
        "national_id": _note("No", "Text", rule[1] if rule else "", maximum="64 characters",
                             notes="no one registered may have it" if required == "Yes" else
                             "a registered person's ID enrols them; a row without an ID, or with one no one has, "
                             "registers a new person"),
        "phone": _note("No", "Text", "6 to 15 digits; spaces, + - ( ) . allowed"),
        "location": _note(required if scoped else "No", "Text",
                          notes="the code of a location among yours" if scoped else "the code of a location"),
        "group_code": _note("No", "Text", maximum="32 characters",
                            notes="the household: rows with the same code make one new household"),
        "individual_role": _note("No", "Choice", choices=", ".join(MemberRole.objects.values_list("code", flat=True)),
                                 notes=f"the role in the household; {grouped}; empty: the household's first member "
                                       "is its head where no row names one, the others are members"),
        "recipient_info": _note("No", "Choice", choices="1, 2",
                                notes=f"1: primary recipient, 2: secondary; {grouped}"),
    }


def template_notes(kind, plan, user, headers):
    """The Notes sheet's rows, one per column of `headers` (the template's), in its order."""
    if kind == UploadKind.BENEFICIARY_UPDATES:
        notes = {"ID": _note("Yes", "Whole number", notes="the beneficiary's ID")}
        notes.update((d.name, field_note(d, "No", "empty: the value is kept")) for d in plan.schema().definitions)
    elif kind == UploadKind.BENEFICIARIES and plan.plan_type == PlanType.HOUSEHOLD:
        notes = {"group_code": _note("Yes", "Text", notes="the code of a registered household in your locations")}
    else:
        required = "Yes" if kind == UploadKind.INDIVIDUALS else NEW_PEOPLE
        notes = _person_notes(user, required)
        notes.update((d.name, field_note(d, required if d.required else "No"))
                     for d in individuals.attribute_definitions() if d.name not in notes)
    if kind == UploadKind.BENEFICIARIES:
        for definition in plan.schema().definitions:
            notes.setdefault(definition.name, field_note(definition, "Yes" if definition.required else "No"))
    return [(header, *notes[header]) for header in headers]
