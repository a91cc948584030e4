"""The typed field definitions engine (sites/fields.py), exercised through RegistryField.

Most tests use unsaved definitions: the engine needs no database.
"""

import datetime
import json
from decimal import Decimal

import pytest
from django import forms
from django.core.exceptions import ValidationError

from schemes.bulk.files import header_key
from schemes.registry.models import Individual, RegistryField
from sites.fields import AttributeSchema, FieldType, name_key, pattern_problem, without_anchors
from tests.factories import IndividualFactory, RegistryFieldFactory

# A registry field checks its name and label against the other attributes (the database) when cleaned.
pytestmark = pytest.mark.django_db


def field(field_type=FieldType.TEXT, **kwargs):
    kwargs.setdefault("name", "value")
    kwargs.setdefault("label", "Value")
    return RegistryField(field_type=field_type, **kwargs)


def error_of(definition, raw):
    with pytest.raises(ValidationError) as exc:
        definition.to_python(raw)
    return " ".join(exc.value.messages)


# --- empty values and required ----------------------------------------------------------------


@pytest.mark.parametrize("field_type", FieldType.values)
@pytest.mark.parametrize("raw", [None, "", "   "])
def test_empty_is_none_when_optional(field_type, raw):
    assert field(field_type, choices=["a"]).to_python(raw) is None


@pytest.mark.parametrize("field_type", FieldType.values)
@pytest.mark.parametrize("raw", [None, "", "  \t"])
def test_empty_is_refused_when_required(field_type, raw):
    assert (
        error_of(field(field_type, required=True, choices=["a"]), raw) == "This field is required."
    )


# --- text -------------------------------------------------------------------------------------


def test_text_is_trimmed():
    assert field().to_python("  Kibera  ") == "Kibera"


def test_text_min_and_max_are_lengths():
    definition = field(min_value=Decimal("3"), max_value=Decimal("5"))

    assert definition.to_python("abc") == "abc"
    assert definition.to_python("abcde") == "abcde"
    assert error_of(definition, "ab") == "At least 3 characters."
    assert error_of(definition, "abcdef") == "At most 5 characters."


def test_text_pattern_must_match_the_whole_value():
    code = field(pattern=r"[A-Z]{2}\d+")

    assert code.to_python("AB12") == "AB12"
    assert error_of(code, "ab12") == "'ab12' does not match the expected format: the pattern [A-Z]{2}\\d+."
    # A partial match is not enough.
    assert "does not match" in error_of(code, "AB12x")


def test_a_known_pattern_without_a_description_is_said_in_words():
    """QA: fields with openIMIS's phone validation, made before the import described it, said the regex."""
    phone = field(pattern=r"^\+\d{2,3}\d+$")

    assert phone.to_python("+254700000000") == "+254700000000"
    assert error_of(phone, "0700 000 000") == (
        "'0700 000 000' does not match the expected format: a phone number in international form, + then the "
        "country code and number, e.g. +255712345678.")


def test_a_format_error_names_the_fields_own_description_of_its_format():
    """QA: "'0712345678' does not match the expected format." did not say which format."""
    phone = field(pattern=r"^\+\d{2,3}\d+$", help_text="The country code then the number, like +255712345678.")

    assert error_of(phone, "0712345678") == ("'0712345678' does not match the expected format: The country code "
                                             "then the number, like +255712345678.")


def test_text_accepts_numbers_as_text():
    assert field().to_python(42) == "42"


# --- integer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("42", 42),
        (" 7 ", 7),
        ("-3", -3),
        ("0", 0),
        (5, 5),
        (Decimal("12"), 12),
        ("12.0", 12),
        ("١٢", 12),  # Arabic-Indic digits
        ("۱۲", 12),  # Extended Arabic-Indic (Persian) digits
    ],
)
def test_integer_parses(raw, expected):
    value = field(FieldType.INTEGER).to_python(raw)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize("raw", ["1.5", "2.01"])
def test_integer_refuses_fractions(raw):
    assert error_of(field(FieldType.INTEGER), raw) == f"'{raw}' is not a whole number."


@pytest.mark.parametrize(
    "raw",
    [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "1e3",
        "1E3",
        "1,5",
        "1 000",
        "+5",
        ".5",
        "5.",
        "abc",
        "0x10",
        "12-3",
    ],
)
def test_integer_refuses_non_numbers(raw):
    assert error_of(field(FieldType.INTEGER), raw) == (
        f"'{raw}' is not a number (use digits only, like 12)."
    )


@pytest.mark.parametrize("raw", [True, False])
def test_integer_refuses_booleans(raw):
    assert error_of(field(FieldType.INTEGER), raw) == f"'{raw}' is not a number."


def test_integer_range():
    children = field(FieldType.INTEGER, min_value=Decimal("0.0000"), max_value=Decimal("20.0000"))

    assert children.to_python("0") == 0
    assert children.to_python("20") == 20
    assert error_of(children, "-1") == "Must be at least 0."
    assert error_of(children, "21") == "Must be at most 20."


# --- decimal ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("1234.50", Decimal("1234.50")),
        ("-0.25", Decimal("-0.25")),
        (" 3 ", Decimal("3")),
        (7, Decimal("7")),
        (Decimal("0.10"), Decimal("0.10")),
        (0.1, Decimal("0.1")),
        ("١٢٣.٥", Decimal("123.5")),  # Arabic-Indic digits with an ASCII dot
    ],
)
def test_decimal_parses_exactly(raw, expected):
    value = field(FieldType.DECIMAL).to_python(raw)
    assert isinstance(value, Decimal)
    assert value == expected
    assert str(value) == str(expected)  # the scale is kept: no float on the way


@pytest.mark.parametrize(
    "raw",
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e3",
        "1,5",
        "1.234,50",
        "١٢٣٫٥",
        "12 345",
        "€12",
        "",
    ],
)
def test_decimal_refuses_bad_input_with_a_clear_message(raw):
    definition = field(FieldType.DECIMAL, required=True)
    message = error_of(definition, raw)
    if raw == "":
        assert message == "This field is required."
    else:
        assert message == f"'{raw}' is not a number (use digits and a dot, like 1234.50)."


@pytest.mark.parametrize(
    "raw", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), float("nan"), float("inf")]
)
def test_decimal_refuses_non_finite_values_given_as_objects(raw):
    assert "is not a number" in error_of(field(FieldType.DECIMAL), raw)


def test_decimal_range_messages_show_plain_numbers():
    amount = field(FieldType.DECIMAL, min_value=Decimal("0.5000"), max_value=Decimal("100.0000"))

    assert amount.to_python("0.5") == Decimal("0.5")
    assert amount.to_python("100") == Decimal("100")
    assert error_of(amount, "0.49") == "Must be at least 0.5."
    assert error_of(amount, "100.01") == "Must be at most 100."


@pytest.mark.parametrize("raw", ["1234.567", Decimal("1234.567"), "0.001", "١٢٣٤.٥٦٧"])
def test_an_amount_with_more_decimals_than_its_places_is_refused(raw):
    """QA: "1234.5678912" in a monthly income was stored as it was."""
    assert error_of(field(FieldType.DECIMAL, decimal_places=2), raw) == (
        f"At most 2 decimals ('{raw}' has 3).")


@pytest.mark.parametrize("raw, expected", [("1234.5", "1234.5"), ("1234.56", "1234.56"), ("12.500", "12.5"),
                                           ("12.000", "12"), ("1200", "1200"), (Decimal("0.10"), "0.1")])
def test_trailing_zeros_do_not_count_as_decimals(raw, expected):
    """12.500 is 12.5 by value: it fits 2 places, and is stored as every 12.5 is."""
    amount = field(FieldType.DECIMAL, decimal_places=2)

    assert amount.to_json(amount.to_python(raw)) == expected


def test_places_say_what_they_allow_in_the_singular_and_for_none():
    assert error_of(field(FieldType.DECIMAL, decimal_places=1), "12.55") == "At most 1 decimal ('12.55' has 2)."
    assert error_of(field(FieldType.DECIMAL, decimal_places=0), "12.5") == "No decimals ('12.5' has 1)."
    assert field(FieldType.DECIMAL, decimal_places=0).to_python("12.0") == Decimal("12")


def test_a_decimal_without_places_takes_any_decimals_as_before():
    assert field(FieldType.DECIMAL).to_python("1234.5678912") == Decimal("1234.5678912")


def test_places_are_checked_before_the_range():
    amount = field(FieldType.DECIMAL, decimal_places=2, max_value=Decimal("100.0000"))

    assert error_of(amount, "100.001") == "At most 2 decimals ('100.001' has 3)."


# --- date -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2024-02-29", datetime.date(2024, 2, 29)),
        (" 2023-12-31 ", datetime.date(2023, 12, 31)),
        (datetime.date(2020, 1, 2), datetime.date(2020, 1, 2)),
        (datetime.datetime(2020, 1, 2, 23, 59), datetime.date(2020, 1, 2)),
    ],
)
def test_date_parses_iso(raw, expected):
    assert field(FieldType.DATE).to_python(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "31/02",
        "31/02/2024",
        "02/03/2024",
        "2024/01/05",
        "20240105",
        "2024-1-5",
        "45321",
        "yesterday",
        "2024-01-05T10:00",
    ],
)
def test_date_refuses_other_formats(raw):
    assert error_of(field(FieldType.DATE), raw) == f"'{raw}' is not a date in the form YYYY-MM-DD."


@pytest.mark.parametrize(
    "raw", ["2024-02-30", "2023-02-29", "2024-13-01", "2024-04-31", "2024-00-10"]
)
def test_date_refuses_impossible_dates(raw):
    assert error_of(field(FieldType.DATE), raw) == f"'{raw}' is not a real date."


def test_date_with_arabic_indic_digits_is_parsed_like_numbers_are():
    # Numbers written with Arabic-Indic digits are accepted (see test_integer_parses); a date
    # written the same way is a real date and must not be reported as "not a real date".
    assert field(FieldType.DATE).to_python("٢٠٢٤-٠١-١٥") == datetime.date(2024, 1, 15)


# --- boolean ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [True, "true", "TRUE", "Yes", " y ", "1", 1])
def test_boolean_true(raw):
    assert field(FieldType.BOOLEAN).to_python(raw) is True


@pytest.mark.parametrize("raw", [False, "false", "No", "N", "0", 0])
def test_boolean_false(raw):
    assert field(FieldType.BOOLEAN).to_python(raw) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "oui", "-1", 2])
def test_boolean_refuses_other_values(raw):
    assert error_of(field(FieldType.BOOLEAN), raw) == f"'{raw}' is not yes or no."


def test_required_boolean_accepts_no():
    assert field(FieldType.BOOLEAN, required=True).to_python("no") is False


# --- choice -----------------------------------------------------------------------------------


def test_choice_accepts_listed_values_only():
    level = field(FieldType.CHOICE, choices=["primary", "secondary"])

    assert level.to_python(" primary ") == "primary"
    assert error_of(level, "tertiary") == "'tertiary' is not one of: primary, secondary."
    # Matching is exact: a different case is a different value.
    assert "is not one of" in error_of(level, "Primary")


# --- JSON round trip --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field_type, raw, stored",
    [
        # One canonical text per number, so "0.10" and "0.1" are equal in attribute filters.
        (FieldType.DECIMAL, "0.10", "0.1"),
        (FieldType.DECIMAL, "1234567890123.4567", "1234567890123.4567"),
        (FieldType.DECIMAL, "100.00", "100"),
        (FieldType.DECIMAL, "-0.5", "-0.5"),
        (FieldType.DECIMAL, "123456789012345678", "123456789012345678"),
        (FieldType.INTEGER, "12", 12),
        (FieldType.DATE, "2024-02-29", "2024-02-29"),
        (FieldType.BOOLEAN, "yes", True),
        (FieldType.TEXT, "x", "x"),
        (FieldType.CHOICE, "a", "a"),
    ],
)
def test_to_json_and_back(field_type, raw, stored):
    definition = field(field_type, choices=["a"])
    value = definition.to_python(raw)

    as_json = definition.to_json(value)

    assert as_json == stored
    assert json.loads(json.dumps(as_json)) == as_json
    back = definition.from_json(json.loads(json.dumps(as_json)))
    assert back == value
    assert type(back) is type(value)


@pytest.mark.django_db
def test_decimals_survive_the_json_column_exactly():
    definition = field(FieldType.DECIMAL, name="income")
    values = ["0.10", "0.20", "1234567890123456.78", "-0.01"]
    stored = {f"v{i}": definition.to_json(definition.to_python(v)) for i, v in enumerate(values)}
    assert all(isinstance(v, str) for v in stored.values())

    person = IndividualFactory(attributes=stored)
    loaded = Individual.objects.get(pk=person.pk).attributes

    back = [definition.from_json(loaded[f"v{i}"]) for i in range(len(values))]
    assert back == [Decimal(v) for v in values]
    assert back[0] + back[1] == Decimal("0.30")  # 0.1 + 0.2 in float would not be


@pytest.mark.django_db
def test_attributes_column_keeps_typed_values():
    person = IndividualFactory(
        attributes={
            "income": "0.10",
            "children": 3,
            "disabled": False,
            "registered_on": "2024-02-29",
        }
    )
    loaded = Individual.objects.get(pk=person.pk).attributes

    assert loaded == {
        "income": "0.10",
        "children": 3,
        "disabled": False,
        "registered_on": "2024-02-29",
    }
    assert type(loaded["children"]) is int and type(loaded["disabled"]) is bool
    assert field(FieldType.DECIMAL).from_json(loaded["income"]) == Decimal("0.10")
    assert field(FieldType.DATE).from_json(loaded["registered_on"]) == datetime.date(2024, 2, 29)


def test_from_json_none_is_none():
    for field_type in FieldType.values:
        assert field(field_type).from_json(None) is None
        assert field(field_type).to_json(None) is None


# --- definition.clean -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["id", "national_id", "location", "age", "household", "and", "none"]
)
def test_clean_rejects_reserved_names(name):
    with pytest.raises(ValidationError) as exc:
        field(name=name).clean()
    [message] = exc.value.message_dict["name"]
    assert message.startswith(f"'{name}' is reserved: ")
    assert message.endswith(f"Give this field another name, such as '{name}_2'.")


def test_a_reserved_name_says_why_and_what_to_do():
    """QA: "'phone' is reserved." said neither."""
    with pytest.raises(ValidationError) as exc:
        field(name="phone").clean()
    assert exc.value.message_dict["name"] == [
        "'phone' is reserved: it is a built-in field of the registry (every person or household has one), which "
        "rules and files read by that name. Give this field another name, such as 'phone_2'."]
    with pytest.raises(ValidationError) as exc:
        field(name="null").clean()
    assert exc.value.message_dict["name"] == [
        "'null' is reserved: the rules read it as a value, not as a field. Give this field another name, such as "
        "'null_2'."]


@pytest.mark.parametrize(
    "name", ["1st", "bad-name", "with space", "_x", "x" * 64, "a__b", "Group__Id", "naïve"]
)
def test_names_must_be_identifiers(name):
    with pytest.raises(ValidationError) as exc:
        field(name=name).clean_fields()
    assert "name" in exc.value.message_dict


@pytest.mark.parametrize("name", ["children_over_5", "groupId", "Income", "NIN_type"])
def test_good_identifier_passes_field_validation(name):
    """Letters of either case: openIMIS schemas name properties like groupId."""
    field(name=name).clean_fields()
    field(name=name).clean()


@pytest.mark.parametrize("name, reserved", [("National_ID", "national_id"), ("nationalId", "national_id"),
                                            ("FirstName", "first_name"), ("NULL", "null"), ("True", "true")])
def test_a_reserved_name_in_another_case_or_without_underscores_is_reserved(name, reserved):
    with pytest.raises(ValidationError) as exc:
        field(name=name).clean()
    [message] = exc.value.message_dict["name"]
    assert message.startswith(
        f"'{name}' is reserved: it reads as '{reserved}' (names are matched ignoring case and underscores), and ")
    assert message.endswith(f"Give this field another name, such as '{reserved}_2'.")


@pytest.mark.parametrize("name", ["from", "class", "is", "lambda"])
def test_the_rules_parsers_keywords_are_reserved(name):
    """Python's parser reads the rules: `from == 1` is not an expression it accepts."""
    with pytest.raises(ValidationError) as exc:
        field(name=name).clean()
    assert exc.value.message_dict["name"] == [
        f"'{name}' is reserved: it is a word of the rules language, which could not read it as a field. Give this "
        f"field another name, such as '{name}_2'."]


@pytest.mark.parametrize("name", ["groupId", "GROUP_ID", "group_id", "g_r_o_u_p_i_d"])
def test_name_key_is_how_files_match_headers(name):
    assert name_key(name) == header_key(name) == "groupid"


@pytest.mark.django_db
def test_names_of_one_target_differ_in_more_than_case_and_underscores():
    RegistryFieldFactory(name="groupId")

    with pytest.raises(ValidationError) as exc:
        field(name="group_id").validate_unique()
    field(name="group_id", target=RegistryField.Target.HOUSEHOLD).validate_unique()
    assert exc.value.message_dict["name"] == ["'groupId' is already a field here: files could not tell 'group_id' "
                                              "from it (names are matched ignoring case and underscores)."]


@pytest.mark.django_db
def test_the_same_name_again_is_refused_once_by_the_unique_constraint():
    RegistryFieldFactory(name="groupId")

    with pytest.raises(ValidationError) as exc:
        field(name="groupId").full_clean()
    assert len(exc.value.message_dict["__all__"]) == 1 and "name" not in exc.value.message_dict


@pytest.mark.parametrize("pattern", [r"([0-9]+)+X", r"(a|ab)*", r"(?:x*)*", r"((ab)+c)+", r"(\d{3}-?)+", r"(a+)+",
                                     r"(a|aa)*", r"(\w+\s?)+", r"((\d+)?)+", r"((a|aa)?)*", r"(a+){2,5}"])
def test_clean_refuses_a_repetition_of_something_that_varies(pattern):
    # ([0-9]+)+X took 5 s on a 22-digit value, 10 s on 23: in every form and on every import row.
    with pytest.raises(ValidationError) as exc:
        field(pattern=pattern).clean()
    assert exc.value.message_dict["pattern"][0].startswith("A repetition of something that varies")


@pytest.mark.parametrize("pattern", [r"[0-9]{12}", r"[A-Z]{2}[0-9]{7}", r"\d{8}-\d{5}-\d{5}-\d{2}", r"(\d+-){3}",
                                     r"(TZ|KE)[0-9]+", r"\+\d{2,3}\d+", r"(ab)+", r"[^@]+@[^@]+\.[a-z]{2,}"])
def test_formats_as_administrators_write_them_are_accepted(pattern):
    assert pattern_problem(pattern) == ""


@pytest.mark.parametrize("pattern", [r"-?\d+(\.\d+)?", r"\d+(\.\d{1,2})?", r"[A-Z]+( [A-Z]+)?", r"[0-9]+(-[0-9]+)?",
                                     r"(\+\d+){0,1}[0-9]+", r"(\d+){1}-\d+", r"(a+)?(b+)?"])
def test_an_optional_part_is_not_a_repetition(pattern):
    """A part taken at most once ((...)?, {0,1}, {1}) is not repeated, whatever it holds: openIMIS's
    number validation, -?\\d+(\\.\\d+)?, is one."""
    field(pattern=pattern).clean()
    assert pattern_problem(pattern) == ""


@pytest.mark.parametrize("pattern", ["(", "[a-", "*x", "(?P<n>a)(?P<n>b)"])
def test_clean_rejects_bad_regex(pattern):
    with pytest.raises(ValidationError) as exc:
        field(pattern=pattern).clean()
    assert exc.value.message_dict["pattern"][0].startswith("Not a valid regular expression:")


@pytest.mark.parametrize("choices", [[], ["", "a"], ["  "], [1, 2], "a,b", None])
def test_clean_rejects_empty_or_bad_choices(choices):
    with pytest.raises(ValidationError) as exc:
        field(FieldType.CHOICE, choices=choices).clean()
    assert exc.value.message_dict["choices"] == [
        "A choice field needs a list of non-empty text values."
    ]


def test_choices_are_only_checked_for_choice_fields():
    field(FieldType.TEXT, choices=[]).clean()
    field(FieldType.CHOICE, choices=["a", "b"]).clean()


def test_clean_rejects_min_above_max():
    with pytest.raises(ValidationError) as exc:
        field(FieldType.INTEGER, min_value=Decimal("5"), max_value=Decimal("4")).clean()
    assert exc.value.message_dict["max_value"] == ["The maximum is smaller than the minimum."]


@pytest.mark.parametrize("field_type", [kind for kind in FieldType.values if kind != FieldType.DECIMAL])
def test_clean_refuses_places_on_anything_but_a_decimal(field_type):
    with pytest.raises(ValidationError) as exc:
        field(field_type, choices=["a"], decimal_places=2).clean()
    assert exc.value.message_dict == {
        "decimal_places": ["Only decimal numbers have decimals: leave this empty for this type."]}


def test_clean_refuses_bounds_with_more_decimals_than_the_places():
    with pytest.raises(ValidationError) as exc:
        field(FieldType.DECIMAL, decimal_places=2, min_value=Decimal("0.1250"), max_value=Decimal("99.9990")).clean()
    assert exc.value.message_dict == {"min_value": ["The field takes at most 2 decimals: 0.125 has 3."],
                                      "max_value": ["The field takes at most 2 decimals: 99.999 has 3."]}


def test_clean_accepts_bounds_within_the_places_as_stored_with_four_decimals():
    field(FieldType.DECIMAL, decimal_places=2, min_value=Decimal("0.5000"), max_value=Decimal("1000.0000")).clean()
    field(FieldType.DECIMAL, decimal_places=0, min_value=Decimal("10.0000")).clean()


def test_places_above_what_the_rules_read_are_refused():
    with pytest.raises(ValidationError) as exc:
        field(FieldType.DECIMAL, decimal_places=11).full_clean()
    assert exc.value.message_dict["decimal_places"] == ["At most 10: the rules read numbers to 10 decimals."]


def test_clean_reports_every_problem_at_once():
    with pytest.raises(ValidationError) as exc:
        field(FieldType.CHOICE, name="status", pattern="(", choices=[]).clean()
    assert set(exc.value.message_dict) == {"name", "pattern", "choices"}


# --- AttributeSchema --------------------------------------------------------------------------


def schema():
    return AttributeSchema(
        [
            field(
                FieldType.INTEGER,
                name="children",
                label="Children",
                min_value=Decimal("0"),
                required=True,
            ),
            field(FieldType.DECIMAL, name="income", label="Income", sensitive=True),
            field(FieldType.BOOLEAN, name="disabled", label="Disabled"),
            field(FieldType.CHOICE, name="water", label="Water", choices=["tap", "well"]),
        ]
    )


def test_schema_clean_returns_json_ready_values_and_drops_empties():
    cleaned = schema().clean({"children": "2", "income": "10.50", "disabled": "no", "water": ""})

    assert cleaned == {"children": 2, "income": "10.5", "disabled": False}
    json.dumps(cleaned)  # JSON-ready


def test_schema_clean_names_every_bad_field_and_unknown_names():
    with pytest.raises(ValidationError) as exc:
        schema().clean({"children": "-1", "income": "1,5", "water": "river", "colour": "red"})

    assert exc.value.message_dict == {
        "children": ["Must be at least 0."],
        "income": ["'1,5' is not a number (use digits and a dot, like 1234.50)."],
        "water": ["'river' is not one of: tap, well."],
        "colour": ["'colour' is not a defined attribute."],
    }


def test_schema_clean_names_an_amount_with_too_many_decimals():
    """As a form shows it: under the attribute's own field."""
    amounts = AttributeSchema([field(FieldType.DECIMAL, name="income", label="Income", decimal_places=2)])

    with pytest.raises(ValidationError) as exc:
        amounts.clean({"income": Decimal("1234.567")})
    assert exc.value.message_dict == {"income": ["At most 2 decimals ('1234.567' has 3)."]}


def test_schema_clean_prefix_and_missing_required():
    with pytest.raises(ValidationError) as exc:
        schema().clean({}, prefix="attributes.")
    assert exc.value.message_dict == {"attributes.children": ["This field is required."]}


def test_display_masks_sensitive_values_and_spells_booleans():
    attributes = {"children": 0, "income": "12345.67", "disabled": True}

    hidden = dict(schema().display(attributes, show_sensitive=False))
    shown = dict(schema().display(attributes, show_sensitive=True))

    # Zero is a value (shown as 0); a missing value is None, which the page shows as a dash.
    assert hidden == {"Children": 0, "Income": "•••••.67", "Disabled": "Yes", "Water": None}
    assert shown["Income"] == "12345.67"
    assert "12345" not in str(hidden)


@pytest.mark.parametrize("definition, stored, shown", [
    ({"decimal_places": 2}, "1200.5", "1200.50"),  # stored canonically (to_json), shown to its places
    ({"decimal_places": 2}, "1200", "1200.00"),
    ({"decimal_places": 0}, "1200", "1200"),
    ({"decimal_places": 2}, "1234.567", "1234.567"),  # held since the places were lowered: not rounded
    ({}, "1200.5", "1200.5"),  # any places: as stored
    ({"decimal_places": 2}, "twelve", "twelve"),  # held since the type changed
])
def test_display_text_shows_a_decimal_to_its_fields_places(definition, stored, shown):
    assert field(FieldType.DECIMAL, **definition).display_text(stored) == shown


@pytest.mark.parametrize("field_type, stored, shown", [
    (FieldType.BOOLEAN, False, "No"), (FieldType.INTEGER, 12, 12), (FieldType.TEXT, "1200.5", "1200.5"),
    (FieldType.DATE, "2024-03-01", "2024-03-01"), (FieldType.TEXT, None, None),
])
def test_display_text_shows_other_values_as_stored(field_type, stored, shown):
    assert field(field_type).display_text(stored) == shown


def test_display_shows_an_amount_to_its_places():
    amounts = AttributeSchema([field(FieldType.DECIMAL, name="income", label="Income", decimal_places=2)])

    assert amounts.display({"income": amounts.clean({"income": "1200.50"})["income"]}, show_sensitive=True) == [
        ("Income", "1200.50")]


# --- form fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field_type, form_class",
    [
        (FieldType.TEXT, forms.CharField),
        (FieldType.INTEGER, forms.IntegerField),
        (FieldType.DECIMAL, forms.DecimalField),
        (FieldType.DATE, forms.DateField),
        (FieldType.CHOICE, forms.ChoiceField),
        (FieldType.BOOLEAN, forms.TypedChoiceField),
    ],
)
def test_form_field_types(field_type, form_class):
    form_field = field(field_type, choices=["a"], help_text="Help").form_field()
    assert isinstance(form_field, form_class)
    assert form_field.label == "Value"
    assert form_field.help_text == "Help"


def test_choice_form_field_offers_a_blank_then_the_choices():
    form_field = field(FieldType.CHOICE, choices=["tap", "well"]).form_field()
    assert [value for value, _ in form_field.choices] == ["", "tap", "well"]


def test_required_boolean_form_field_accepts_no():
    # A required yes/no attribute must let the clerk answer "No". Django's
    # BooleanField(required=True) means "must be ticked", which makes "No" impossible to record.
    form_field = field(FieldType.BOOLEAN, required=True).form_field()

    assert form_field.clean("false") is False
    assert form_field.clean("true") is True
    with pytest.raises(ValidationError):
        form_field.clean("")


def test_the_decimal_form_field_takes_any_step_the_engine_checks_the_places():
    """A browser step of 1 refused to send a stored 1200.5 once the places were lowered to 0: no other
    change to the record could be saved."""
    assert field(FieldType.DECIMAL, decimal_places=0).form_field().widget.attrs["step"] == "any"
    with pytest.raises(ValidationError, match="No decimals"):
        field(FieldType.DECIMAL, decimal_places=0).to_python("1200.5")


def test_a_stored_value_its_field_now_refuses_is_kept_when_sent_back_unchanged():
    """Places lowered to 0 after people were given 1200.5: editing their phone must not be refused for
    a value nobody touched; a new value is still checked."""
    schema = AttributeSchema([field(FieldType.DECIMAL, name="income", decimal_places=0),
                              field(FieldType.CHOICE, name="tier", choices=["A"])])
    stored = {"income": "1200.5", "tier": "B"}

    assert schema.clean({"income": Decimal("1200.50"), "tier": "B"}, stored=stored) == stored
    with pytest.raises(ValidationError) as refused:
        schema.clean({"income": "1200.7", "tier": "B"}, stored=stored)
    assert set(refused.value.message_dict) == {"income"}


def test_decimal_with_more_digits_than_the_database_holds_is_refused():
    with pytest.raises(ValidationError, match="more than 18 digits"):
        field(FieldType.DECIMAL).to_python("12345678901234567890123456789012")


@pytest.mark.django_db
def test_registry_field_factory_builds_valid_definitions():
    definition = RegistryFieldFactory(field_type=FieldType.CHOICE, choices=["a", "b"])
    definition.full_clean()
    assert RegistryField.schema_for(RegistryField.Target.INDIVIDUAL).by_name == {
        definition.name: definition
    }


@pytest.mark.parametrize("pattern, bare", [(r"^\+\d+$", r"\+\d+"), (r"\+\d+", r"\+\d+"), (r"^[0-9]+\$", r"[0-9]+\$"),
                                           (r"[0-9]+\\$", r"[0-9]+\\"), ("^$", "")])
def test_a_pattern_without_its_anchors_keeps_a_literal_dollar(pattern, bare):
    assert without_anchors(pattern) == bare
