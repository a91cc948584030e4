"""The builder's JavaScript (static/rules/rule_builder.js) writes rule text exactly as
schemes/rules/text.py does: the same quoting, numbers, dates and brackets, so that the text in the
field is the canonical text of the rule it means. Run under Node (skipped when `node` is absent);
the page itself is driven in tests/browser/test_rule_builder.py."""

import json
import random
import shutil
import subprocess
import unicodedata
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemes.rules.nodes import to_json
from schemes.rules.parser import parse
from schemes.rules.text import literal_text, to_text

SCRIPT = Path(__file__).resolve().parents[3] / "static" / "rules" / "rule_builder.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

FIELDS = [{"name": "age", "label": "Age", "type": "number", "choices": []},
          {"name": "first_name", "label": "First name", "type": "text", "choices": []},
          {"name": "dob", "label": "Date of birth", "type": "date", "choices": []},
          {"name": "disabled", "label": "Disabled", "type": "boolean", "choices": []},
          {"name": "level", "label": "Level", "type": "text", "choices": ["primary", "secondary, lower", "none"]}]
HARNESS = """
const builder = require(process.argv[1]);
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const fields = new Map(input.fields.map((field) => [field.name, field]));
const textOf = (model) => builder.modelText(model, fields);
process.stdout.write(JSON.stringify({
  quotes: input.quotes.map(builder.quote),
  numbers: input.numbers.map(builder.numberText),
  texts: input.models.map(textOf),
  fromAst: input.asts.map((ast) => { const model = builder.modelFromAst(ast, fields); return model && textOf(model); }),
  incomplete: input.models.map((model) => builder.incompleteRows(model, fields)),
}));
"""


def run_js(*, quotes=(), numbers=(), models=(), asts=()):
    payload = json.dumps({"fields": FIELDS, "quotes": list(quotes), "numbers": list(numbers), "models": list(models),
                          "asts": list(asts)})
    done = subprocess.run([NODE, "-e", HARNESS, str(SCRIPT)], input=payload, capture_output=True, text=True,
                          encoding="utf-8", errors="surrogatepass", check=True, timeout=30)
    return json.loads(done.stdout)


def test_the_script_is_valid_javascript():
    subprocess.run([NODE, "--check", str(SCRIPT)], check=True, timeout=30)


def random_text(rng):
    """Characters from every plane that Python's Unicode database knows (a character new in Node's
    newer database would be printable there and escaped here: not a disagreement of the code)."""
    def character():
        while True:
            ch = chr(rng.choice([rng.randint(0, 0x2FF), rng.randint(0, 0xFFFF), rng.randint(0, 0x10FFFF)]))
            if unicodedata.category(ch) != "Cn":
                return ch
    return "".join(character() for _ in range(rng.randint(0, 8)))


def test_text_is_quoted_as_python_quotes_it():
    rng = random.Random(20250301)
    texts = ["", "plain", 'say "hi"', "back\\slash", "it's", "two\nlines\r\ttab", "مزاني", "é ñandú", "\x00\x1f\x7f",
             "\x85\xa0\u00ad", "\u200b\u200e\u202e\u2028\u2029\u3000", "\ud800", "\U0001f600\U000e0001", "\u0378",
             "\ue000"] + [random_text(rng) for _ in range(400)]
    assert run_js(quotes=texts)["quotes"] == [literal_text(text) for text in texts]


def test_numbers_are_written_as_the_parser_reads_them():
    typed = ["18", "0", "-2", "2.50", ".5", "5.", "007.50", "-0", "-0.00", " 12 ", "123456789012345678",
             "0.000000000000000001"]
    written = run_js(numbers=typed + ["", "-", ".", "1e3", "1.2.3", "abc", "+1", "1,5", "٣"])["numbers"]
    assert written[:len(typed)] == [to_text(parse(raw.strip())) for raw in typed]
    assert written[len(typed):] == [None] * 9


def row(field, operator, value):
    return {"kind": "row", "field": field, "operator": operator, "value": value}


def group(conjunction, *items):
    return {"kind": "group", "conjunction": conjunction, "items": list(items)}


MODELS = [
    (group("and", row("age", ">=", "18")), "age >= 18"),
    (group("and", row("age", ">=", "18"), row("first_name", "==", 'O"Brien')),
     'age >= 18 and first_name == "O\\"Brien"'),
    (group("or", row("dob", "<", "2000-01-31"), row("disabled", "is", "false")),
     'dob < date("2000-01-31") or disabled == false'),
    (group("and", row("first_name", "not in", ["Amina", "Baraka"]), row("age", "in", ["1", "2.50"])),
     'first_name not in ["Amina", "Baraka"] and age in [1, 2.50]'),
    (group("or", row("level", "in", ["secondary, lower", "none"]), row("level", "==", "primary")),
     'level in ["secondary, lower", "none"] or level == "primary"'),
    (group("and", row("age", ">", "1"), group("or", row("age", "<", "5"), row("disabled", "is", "true"))),
     "age > 1 and (age < 5 or disabled == true)"),
    (group("or", group("and", row("age", ">", "1"), row("age", "<", "5")), row("disabled", "is", "true")),
     "age > 1 and age < 5 or disabled == true"),
    (group("and", group("and", row("age", ">", "1"), row("age", "<", "5")), row("disabled", "is", "true")),
     "(age > 1 and age < 5) and disabled == true"),
    # incomplete rows and empty groups are left out; a group of one is just that condition
    (group("and", row("age", ">", ""), row("", "", ""), group("or"), group("or", row("age", "!=", "3"))), "age != 3"),
    (group("and", row("age", ">", "1e3"), row("dob", "==", "20000131"), row("age", "in", ["1", "x"]),
           row("age", "in", [])), ""),
    (group("or"), ""),
]


@pytest.mark.parametrize("model, expected", MODELS, ids=[text or "empty" for _, text in MODELS])
def test_a_model_is_written_as_the_canonical_text_of_its_rule(model, expected):
    written = run_js(models=[model])["texts"][0]
    assert written == expected
    if expected:
        assert to_text(parse(written)) == written


def test_the_conditions_left_out_of_the_text_are_named_for_the_server_to_refuse():
    """QA: clearing the value of age >= 65 saved the plan's rule as none (everyone qualifies); the
    builder now names the incomplete conditions, which the form submits and RuleField refuses."""
    model = group("and", row("age", ">=", ""), row("", "", ""), row("first_name", "==", "Amina"),
                  group("or", row("dob", "<", "2000-02-30x"), row("level", "in", [])), row("age", "in", ["1", "x"]),
                  row("disabled", "is", "true"))

    done = run_js(models=[model, group("and", row("age", ">=", "65")), group("and", row("", "", ""))])

    assert done["texts"][0] == 'first_name == "Amina" and disabled == true'
    assert done["incomplete"] == [["Age ≥ (no value)", "Date of birth < 2000-02-30x (not a valid value)",
                                   "Level is one of (no value)", "Age is one of 1, x (not a valid value)"], [], []]


# Builder models of any shape: the text the script writes is the canonical text of the rule it reads
# back to, and the builder, given that rule's AST, shows it again and writes the same text.
# Characters unassigned in Python's Unicode database (Cn) are left out: Node's newer database may know
# them as printable, and the two would then rightly disagree about escaping them.
ROW_VALUES = {
    "age": st.one_of(st.integers(-999, 999).map(str), st.decimals("-99.99", "99.99", places=2).map(str)),
    "level": st.sampled_from(FIELDS[-1]["choices"]),
    # Values of a typed list are split at commas and trimmed (JavaScript's trim also drops U+FEFF).
    "first_name": st.text(st.characters(blacklist_categories=["Cs", "Cc", "Cn"], blacklist_characters=",\ufeff"),
                          min_size=1, max_size=6).filter(lambda text: text == text.strip()),
    "dob": st.dates().map(lambda day: day.isoformat()),
    "disabled": st.sampled_from(["true", "false"]),
}
ROW_OPERATORS = {"age": ["==", "!=", "<", "<=", ">", ">=", "in", "not in"], "first_name": ["==", "!=", "in", "not in"],
                 "dob": ["==", "!=", "<", "<=", ">", ">="], "disabled": ["is"], "level": ["==", "!=", "in", "not in"]}


@st.composite
def rows(draw):
    field = draw(st.sampled_from(sorted(ROW_VALUES)))
    operator = draw(st.sampled_from(ROW_OPERATORS[field]))
    if operator in ("in", "not in"):
        return row(field, operator, draw(st.lists(ROW_VALUES[field], min_size=1, max_size=3)))
    return row(field, operator, draw(ROW_VALUES[field]))


MODEL_TREES = st.recursive(rows(), lambda children: st.builds(
    lambda conjunction, items: group(conjunction, *items), st.sampled_from(["and", "or"]),
    st.lists(children, min_size=1, max_size=3)), max_leaves=8)


@settings(max_examples=15, deadline=None)
@given(st.lists(MODEL_TREES, min_size=20, max_size=20))
def test_builder_text_is_canonical_and_survives_the_round_trip(models):
    texts = run_js(models=models)["texts"]
    asts = [to_json(parse(text)) for text in texts]
    assert [to_text(parse(text)) for text in texts] == texts
    assert run_js(asts=asts)["fromAst"] == texts


@pytest.mark.parametrize("text", [
    "age + 1 > 2", "min(age, 3) > 1", "18 <= age", "age > age", "age == null", "first_name in ['a,b']",
    "first_name == 'two\\nlines'", "first_name == ''", "lower(first_name) == 'a'", "disabled != true", "first_name < 'b'",
    "dob in [date('2000-01-01')]", "age if disabled else 1", "age >= 18 and (1 if disabled else 2) > 1",
    "unknown_field == 1", "first_name == 1", "true", "level == 'tertiary'", "level in ['none', 'tertiary']",
])
def test_a_rule_the_builder_cannot_show_is_refused_whole(text):
    assert run_js(asts=[to_json(parse(text))])["fromAst"] == [None]


@pytest.mark.parametrize("text, shown", [
    ("disabled", "disabled == true"),
    ("not disabled", "disabled == false"),
    ("first_name == 'x'", 'first_name == "x"'),
    ("age >= 18.50 and dob > date('1990-01-01')", 'age >= 18.50 and dob > date("1990-01-01")'),
])
def test_equivalent_spellings_are_shown_in_the_builders_words(text, shown):
    assert run_js(asts=[to_json(parse(text))])["fromAst"] == [shown]


def test_decimal_text_of_the_json_form_is_what_the_builder_shows():
    ast = to_json(parse("age > 0.0000001"))
    assert ast["right"] == {"literal": "0.0000001", "type": "number"}
    assert run_js(asts=[ast])["fromAst"] == ["age > 0.0000001"]
    assert Decimal(ast["right"]["literal"]) == Decimal("1E-7")


# --- the builder on a page: labels are read whole -------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
STATIC = Path(__file__).resolve().parents[3] / "static"


@pytest.mark.django_db
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found")
@pytest.mark.parametrize("subject", ["individual", "household"])
def test_the_field_selector_shows_the_whole_label_of_the_longest_field(tmp_path, subject):
    """The field chosen in a condition row reads whole ("People aged 60 or more in the household",
    not "People aged (") in a form as wide as the admin's (640 px), with the admin's own styles. The
    page links the static files themselves; the server's answers (the live count) are not needed."""
    from playwright.sync_api import sync_playwright

    from schemes.rules.forms import RuleBuilderWidget

    widget = RuleBuilderWidget(subject=subject).render("rule", "", attrs={"id": "id_rule"})
    admin_css = Path(__import__("wagtail").__file__).parent / "admin" / "static" / "wagtailadmin" / "css" / "core.css"
    page_file = tmp_path / "builder.html"
    page_file.write_text(
        f'<!doctype html><html><head><link rel="stylesheet" href="{admin_css.as_uri()}">'
        f'<link rel="stylesheet" href="{(STATIC / "rules" / "rule_builder.css").as_uri()}"></head>'
        f'<body><form style="width: 640px">{widget}</form>'
        f'<script src="{(STATIC / "rules" / "rule_builder.js").as_uri()}"></script></body></html>', encoding="utf-8")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(page_file.as_uri())
            page.click("[data-mode=builder]")
            field = page.wait_for_selector("[data-part=field] select")
            labels = field.eval_on_selector_all("option", "options => options.map((option) => option.text)")
            longest = max(labels, key=len)
            field.select_option(label=longest)
            field = page.wait_for_selector("[data-part=field] select")
            shown, needed = field.evaluate("""(select) => {
                const context = document.createElement("canvas").getContext("2d");
                context.font = getComputedStyle(select).font;
                const style = getComputedStyle(select);
                const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
                return [select.clientWidth - padding, context.measureText(select.options[select.selectedIndex].text).width];
            }""")
        finally:
            browser.close()

    assert longest == "People aged 60 or more in the household"
    assert shown >= needed, f"the field selector shows {shown:.0f} px of a {needed:.0f} px label"
